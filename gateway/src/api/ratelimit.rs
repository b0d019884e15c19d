//! Request-rate limits per principal and per department (token buckets), so that one
//! department system in a loop cannot starve the others. Exceeding a limit is a
//! `429 rate_limited` naming the limit, with `Retry-After` (whole seconds until a
//! request would be admitted). Configured in `[limits]` (`principal_rps`,
//! `principal_burst`, `dept_rps`, `dept_burst`; 0 = no limit); node-to-node Raft
//! traffic is never limited.
//!
//! Concurrency quotas (`principal_concurrency`, `dept_concurrency`) bound the requests
//! in flight, counted until the whole response body is sent (a long export holds its
//! slot): over the quota is a `429 concurrency_limited` with `Retry-After: 1`.
//!
//! Buckets live in memory on each node: a principal spreading requests over N nodes
//! gets up to N times its rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
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
    principal_slots: u32,
    dept_slots: u32,
    /// Requests in flight, by principal and by department.
    in_flight: Mutex<(HashMap<String, u32>, HashMap<String, u32>)>,
}

/// A slot held by a request in flight; given back when dropped (with the response body).
struct Slot {
    limits: Arc<Inner>,
    principal: String,
    dept: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut guard = self
            .limits
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (principals, depts) = &mut *guard;
        for (map, key) in [(principals, &self.principal), (depts, &self.dept)] {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

impl RateLimits {
    pub fn new(limits: &crate::config::Limits) -> RateLimits {
        RateLimits(Arc::new(Inner {
            principal: Limiter::new(limits.principal_rps, limits.principal_burst),
            dept: Limiter::new(limits.dept_rps, limits.dept_burst),
            principal_slots: limits.principal_concurrency,
            dept_slots: limits.dept_concurrency,
            in_flight: Mutex::new((HashMap::new(), HashMap::new())),
        }))
    }

    /// Takes an in-flight slot for a request, or says which quota is full. `None` when
    /// no quota is configured.
    fn slot(&self, principal: &str, dept: &str) -> Result<Option<Slot>, String> {
        let inner = &self.0;
        if inner.principal_slots == 0 && inner.dept_slots == 0 {
            return Ok(None);
        }
        let mut guard = inner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (principals, depts) = &mut *guard;
        let p = principals.get(principal).copied().unwrap_or(0);
        let d = depts.get(dept).copied().unwrap_or(0);
        if inner.principal_slots > 0 && p >= inner.principal_slots {
            return Err(format!(
                "{principal} already has {p} request(s) in flight, its limit"
            ));
        }
        if inner.dept_slots > 0 && d >= inner.dept_slots {
            return Err(format!(
                "department {dept} already has {d} request(s) in flight, its limit"
            ));
        }
        principals.insert(principal.to_string(), p + 1);
        depts.insert(dept.to_string(), d + 1);
        Ok(Some(Slot {
            limits: inner.clone(),
            principal: principal.to_string(),
            dept: dept.to_string(),
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
    let mut held: Option<Slot> = None;
    if let Some(id @ SpiffeId::Principal { .. }) = principal {
        let dept = id.dept().unwrap_or_default().to_string();
        let who = id.to_string();
        match node.rate_limits.slot(&who, &dept) {
            Ok(slot) => held = slot,
            Err(why) => {
                node.metrics.rate_limited.inc();
                return refuse("concurrency_limited", why, 1);
            }
        }
        if let Err((why, wait)) = node.rate_limits.admit(&who, &dept, Instant::now()) {
            node.metrics.rate_limited.inc();
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return refuse("rate_limited", why, secs);
        }
    }
    let resp = next.run(req).await;
    match held {
        // The slot is held until the whole body has been sent (or the client left).
        Some(slot) => resp.map(|body| {
            Body::new(HoldingBody {
                inner: body,
                _slot: slot,
            })
        }),
        None => resp,
    }
}

fn refuse(code: &'static str, why: String, retry_after_s: u64) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        code,
        format!("{why}; retry after {retry_after_s} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// A response body that holds a request's in-flight slot until it is done.
struct HoldingBody {
    inner: Body,
    _slot: Slot,
}

impl http_body::Body for HoldingBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
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
    fn concurrency_slots_are_given_back_when_dropped() {
        let l = RateLimits::new(&Limits {
            principal_concurrency: 2,
            dept_concurrency: 3,
            ..Limits::default()
        });
        let a1 = l.slot("a", "D").unwrap();
        let _a2 = l.slot("a", "D").unwrap();
        let why = l.slot("a", "D").err().unwrap();
        assert!(why.contains("a already has 2"), "{why}");
        let _b1 = l.slot("b", "D").unwrap();
        let why = l.slot("b", "D").err().unwrap();
        assert!(why.contains("department D"), "{why}");
        assert!(l.slot("c", "E").unwrap().is_some());
        drop(a1);
        assert!(l.slot("b", "D").unwrap().is_some(), "a's slot came back");
        assert!(
            RateLimits::new(&Limits::default())
                .slot("a", "D")
                .unwrap()
                .is_none()
        );
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
