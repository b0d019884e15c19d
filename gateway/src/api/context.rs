//! Per-request context: the request id, the caller's identity, and extractors that turn
//! every malformed input into an [`ApiError`] naming the problem.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;
use yiwang_catalog::identity::SpiffeId;
use yiwang_policies::Principal;

use super::ApiError;
use crate::node::Node;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served (empty outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(|id| id.clone()).unwrap_or_default()
}

/// The identity the TLS layer established for a connection: the SPIFFE ID of the
/// client certificate, or why it could not be read.
#[derive(Clone, Debug)]
pub struct PeerIdentity(pub Arc<Result<SpiffeId, String>>);

fn acceptable_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| s.to_string())
}

/// Outermost middleware: assigns the request id (keeping a sane one the client sent),
/// makes it available to error bodies, sets `x-request-id` on every response and
/// records metrics under the route template.
pub async fn request_context(
    node: axum::extract::State<Arc<Node>>,
    req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(acceptable_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let dept = match req.extensions().get::<PeerIdentity>().map(|p| p.0.as_ref()) {
        Some(Ok(id)) => id
            .dept()
            .map_or_else(|| "_node".to_string(), str::to_string),
        _ => "_none".to_string(),
    };
    let span = tracing::info_span!(
        "http.request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        request_id = %id,
        dept = %dept,
        trace_id = tracing::field::Empty,
    );
    let (trace_id, caller_trace) = crate::telemetry::adopt_parent(&span, req.headers());
    span.record("trace_id", trace_id.as_str());
    let started = Instant::now();
    let mut resp = REQUEST_ID
        .scope(
            id.clone(),
            crate::telemetry::with_caller_trace(caller_trace, next.run(req)),
        )
        .instrument(span.clone())
        .await;
    let status = resp.status().as_u16();
    span.record("http.response.status_code", status);
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            span.record("otel.status_code", "ERROR");
            tracing::warn!(status, took_ms, "request failed");
        } else {
            // The access log: off unless `YIWANG_LOG` asks for debug.
            tracing::debug!(status, took_ms, "request");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        resp.headers_mut().insert("x-trace-id", v);
    }
    let labels = crate::metrics::RequestLabels {
        method,
        route,
        status,
        dept,
    };
    node.metrics.requests.get_or_create(&labels).inc();
    let latency = crate::metrics::LatencyLabels {
        method: labels.method,
        route: labels.route,
        status,
    };
    node.metrics
        .request_seconds
        .get_or_create(&latency)
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// An authenticated department principal. Extracting it fails with 401 when the
/// certificate carries no usable SPIFFE ID, and 403 for node identities.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
}

impl Caller {
    pub fn id(&self) -> &str {
        &self.principal.id
    }

    pub fn dept(&self) -> &str {
        &self.principal.dept
    }
}

fn peer_identity(parts: &Parts, node: &Node) -> Result<SpiffeId, ApiError> {
    let peer = parts.extensions.get::<PeerIdentity>().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "no client certificate",
        )
    })?;
    let id = match peer.0.as_ref() {
        Ok(id) => id.clone(),
        Err(why) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_identity",
                why.clone(),
            ));
        }
    };
    if id.trust_domain() != node.config.trust_domain {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_identity",
            format!(
                "certificate is for trust domain '{}', this node serves '{}'",
                id.trust_domain(),
                node.config.trust_domain
            ),
        ));
    }
    Ok(id)
}

impl FromRequestParts<Arc<Node>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        node: &Arc<Node>,
    ) -> Result<Self, Self::Rejection> {
        match peer_identity(parts, node)? {
            id @ SpiffeId::Principal { .. } => Ok(Caller {
                principal: Principal {
                    id: id.to_string(),
                    dept: id.dept().unwrap_or_default().to_string(),
                },
            }),
            SpiffeId::Node { .. } => Err(ApiError::forbidden(
                "node identities cannot call the client API",
            )),
        }
    }
}

/// A cluster node calling the Raft endpoints.
pub struct PeerNode(pub u64);

impl FromRequestParts<Arc<Node>> for PeerNode {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        node: &Arc<Node>,
    ) -> Result<Self, Self::Rejection> {
        match peer_identity(parts, node)? {
            SpiffeId::Node { node_id, .. } => Ok(PeerNode(node_id)),
            other => Err(ApiError::forbidden(format!(
                "{other} is not a node: /raft/* accepts node certificates only"
            ))),
        }
    }
}

/// A JSON body whose errors name the offending field (`fields[0].type: unknown variant`),
/// and whose size is bounded by the route's body limit (413 beyond it).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Node>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, node: &Arc<Node>) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, node).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads a whole body, mapping the size limit to 413 and a body that does not arrive
/// within `limits.body_timeout_s` to 408.
pub async fn body_bytes(req: Request, node: &Arc<Node>) -> Result<Bytes, ApiError> {
    let secs = node.config.limits.body_timeout_s;
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(secs),
        Bytes::from_request(req, node),
    );
    let Ok(read) = read.await else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {secs} s (limits.body_timeout_s); nothing was done"
            ),
        ));
    };
    read.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is larger than this endpoint accepts",
            )
        } else {
            ApiError::bad_request("bad_body", r.body_text())
        }
    })
}

/// Parses JSON, naming the path of the first problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "request body is empty; expected a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path.is_empty() || path == "." {
            format!("invalid JSON body: {inner}")
        } else {
            format!("invalid JSON body at '{path}': {inner}")
        };
        ApiError::bad_request("invalid_json", message)
    })
}

/// Query parameters with errors as JSON.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("invalid query parameter '{}': {}", e.path(), e.inner()),
                )
            })
    }
}

/// A JSON body that may be absent (an empty body means `None`).
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<Arc<Node>> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, node: &Arc<Node>) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, node).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        parse_json(&bytes).map(|v| OptionalJsonBody(Some(v)))
    }
}

/// Deserialises an empty query value (`?share_type=`) as absent, as HTML forms send it.
pub fn empty_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => T::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(v)).map(Some),
    }
}

/// Splits `consistency` out of a query string: whether the read may be stale, and the
/// query without it.
fn take_consistency(query: &str) -> Result<(bool, String), ApiError> {
    let mut stale = false;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "consistency" {
            stale = match v.as_ref() {
                "stale" => true,
                "linearizable" => false,
                other => {
                    return Err(ApiError::bad_request(
                        "invalid_query",
                        format!(
                            "invalid query parameter 'consistency': must be linearizable or stale, not '{other}'"
                        ),
                    ));
                }
            };
        } else {
            rest.append_pair(&k, &v);
        }
    }
    Ok((stale, rest.finish()))
}

/// Read barrier middleware for the client API: unless the request says
/// `?consistency=stale`, it waits until this node's catalog state (and the policy view
/// derived from it) includes every write committed anywhere before the request arrived
/// — so decisions and answers are linearizable on every node, and a revoked grant is
/// refused by a follower as soon as the revocation is acknowledged. Stale requests are
/// answered from local state at once. The parameter is removed before routing, so
/// every endpoint accepts it.
pub async fn consistency(
    node: axum::extract::State<Arc<Node>>,
    mut req: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse;
    // Cluster status and initialisation must work without a leader: they are how an
    // operator finds and fixes that state.
    let path = req.uri().path();
    if path == "/v1/cluster" || path == "/v1/cluster/init" {
        return next.run(req).await;
    }
    let (stale, rest) = match take_consistency(req.uri().query().unwrap_or("")) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if req.uri().query().is_some_and(|q| q.contains("consistency")) {
        let path = req.uri().path().to_string();
        let pq = if rest.is_empty() {
            path
        } else {
            format!("{path}?{rest}")
        };
        if let Ok(pq) = pq.parse::<axum::http::uri::PathAndQuery>() {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(pq);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    if let Err(e) = node.read_barrier(stale).await {
        return e.into_response();
    }
    req.extensions_mut().insert(ReadConsistency { stale });
    next.run(req).await
}

/// Bounds how long a client request may take until its answer starts
/// (`limits.request_timeout_s`); the answer's body is not counted.
pub async fn deadline(node: axum::extract::State<Arc<Node>>, req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let secs = node.config.limits.request_timeout_s;
    match tokio::time::timeout(std::time::Duration::from_secs(secs), next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            format!(
                "not answered within {secs} s (limits.request_timeout_s); if the request changed something, whether the change was made is unknown: check before retrying"
            ),
        )
        .into_response(),
    }
}

/// How the request's read barrier was passed (`?consistency=`), for handlers that
/// record it.
#[derive(Clone, Copy, Debug)]
pub struct ReadConsistency {
    pub stale: bool,
}
