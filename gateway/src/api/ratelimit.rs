//! Request-rate limits per principal and per department (token buckets), so that one
//! department system in a loop cannot starve the others. Exceeding a limit is a
//! `429 rate_limited` naming the limit, with `Retry-After` (whole seconds until a
//! request would be admitted). Configured in `[limits]` (`principal_rps`,
//! `principal_burst`, `dept_rps`, `dept_burst`; 0 = no limit); node-to-node Raft
//! traffic is never limited.
//!
//! Buckets live in memory on each node: a principal spreading requests over N nodes
//! gets up to N times its rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use yiwang_catalog::identity::SpiffeId;

use super::{ApiError, PeerIdentity};
use crate::node::Node;

/// Buckets not touched for this long are dropped (a full bucket is the same as none).
const IDLE_EVICT: Duration = Duration::from_secs(300);

/// Evict idle buckets when the map grows past this many entries.
const EVICT_ABOVE: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One kind of limit (per principal or per department): a token bucket per key.
#[derive(Debug)]
struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    fn new(rate: f64, burst: u32) -> Option<Limiter> {
        (rate > 0.0).then(|| Limiter {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a token for `key`, or says how long until one is available.
    fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > EVICT_ABOVE {
            buckets.retain(|_, b| now.duration_since(b.at) < IDLE_EVICT);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Gives back a token taken for a request that another limit then refused.
    fn give_back(&self, key: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = buckets.get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(self.burst);
        }
    }
}

/// The node's rate limits.
#[derive(Debug, Clone)]
pub struct RateLimits(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    principal: Option<Limiter>,
    dept: Option<Limiter>,
}

impl RateLimits {
    pub fn new(limits: &crate::config::Limits) -> RateLimits {
        RateLimits(Arc::new(Inner {
            principal: Limiter::new(limits.principal_rps, limits.principal_burst),
            dept: Limiter::new(limits.dept_rps, limits.dept_burst),
        }))
    }

    /// Admits a request of `principal` (of department `dept`), or refuses it with the
    /// limit that was hit and the wait.
    fn admit(&self, principal: &str, dept: &str, now: Instant) -> Result<(), (String, Duration)> {
        if let Some(p) = &self.0.principal {
            p.take(principal, now).map_err(|wait| {
                (
                    format!(
                        "{principal} exceeded its request rate ({} a second, bursts of {})",
                        p.rate, p.burst
                    ),
                    wait,
                )
            })?;
        }
        if let Some(d) = &self.0.dept
            && let Err(wait) = d.take(dept, now)
        {
            if let Some(p) = &self.0.principal {
                p.give_back(principal);
            }
            return Err((
                format!(
                    "department {dept} exceeded its request rate ({} a second, bursts of {})",
                    d.rate, d.burst
                ),
                wait,
            ));
        }
        Ok(())
    }
}

/// Middleware on client routes: refuses a request over its principal's or department's
/// rate with 429. Requests without a usable principal identity pass through, to be
/// refused by authentication.
pub async fn limit(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    let principal = req
        .extensions()
        .get::<PeerIdentity>()
        .and_then(|p| p.0.as_ref().as_ref().ok().cloned());
    if let Some(id @ SpiffeId::Principal { .. }) = principal {
        let dept = id.dept().unwrap_or_default().to_string();
        if let Err((why, wait)) = node
            .rate_limits
            .admit(&id.to_string(), &dept, Instant::now())
        {
            node.metrics.rate_limited.inc();
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("{why}; retry after {secs} s"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    fn limits(principal_rps: f64, principal_burst: u32, dept_rps: f64, dept_burst: u32) -> Limits {
        Limits {
            principal_rps,
            principal_burst,
            dept_rps,
            dept_burst,
            ..Limits::default()
        }
    }

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let l = RateLimits::new(&limits(2.0, 3, 0.0, 0));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.admit("a", "D", t0).is_ok());
        }
        let (why, wait) = l.admit("a", "D", t0).unwrap_err();
        assert!(why.contains("a exceeded its request rate"), "{why}");
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        // Another principal has its own bucket.
        assert!(l.admit("b", "D", t0).is_ok());
        // Half a second later one token (2 a second) is back, not two.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.admit("a", "D", t1).is_ok());
        assert!(l.admit("a", "D", t1).is_err());
    }

    #[test]
    fn department_limit_covers_all_its_principals_and_gives_tokens_back() {
        let l = RateLimits::new(&limits(10.0, 2, 1.0, 3));
        let t0 = Instant::now();
        assert!(l.admit("a", "D", t0).is_ok());
        assert!(l.admit("a", "D", t0).is_ok());
        assert!(l.admit("b", "D", t0).is_ok());
        let (why, _) = l.admit("b", "D", t0).unwrap_err();
        assert!(why.contains("department D"), "{why}");
        // b's own token was given back: once the department refills, b has 1 left.
        assert!(
            l.admit("c", "E", t0).is_ok(),
            "other departments are not affected"
        );
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.admit("b", "D", t1).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let l = RateLimits::new(&Limits::default());
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert!(l.admit("a", "D", t0).is_ok());
        }
    }
}

#[cfg(test)]
mod config_tests {
    use crate::config::Limits;

    #[test]
    fn rates_may_be_written_as_integers() {
        let l: Limits = toml::from_str("principal_rps = 2\ndept_rps = 0.5").unwrap();
        assert_eq!(l.principal_rps, 2.0);
        assert_eq!(l.dept_rps, 0.5);
        assert_eq!(l.principal_burst, 100);
    }
}
