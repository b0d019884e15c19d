//! The HTTP API. Each file translates HTTP for one area; the logic lives in the domain
//! crates (catalog: state transitions and validation; policies: decisions).

mod access;
mod admin;
mod audit;
mod audited;
mod bulk;
mod ckan;
mod cluster;
mod context;
mod datasets;
mod dcat;
mod departments;
mod error;
#[cfg(test)]
mod openapi_check;
mod query;
mod raft;
pub mod ratelimit;
mod records;
mod search;
mod sources;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use audited::{Audited, Progress};
pub use context::{Caller, JsonBody, PeerIdentity, Query, current_request_id};
pub use error::ApiError;

use crate::node::Node;

/// The API router. Layers, outermost first: the request context (id, metrics) wraps
/// everything so that even a 404 or a 413 carries `x-request-id`; body limits are per
/// route group, since bulk imports legitimately send far more than other calls.
pub fn router(node: Arc<Node>) -> Router {
    let limits = &node.config.limits;
    let bulk = Router::new()
        .route("/v1/datasets/bulk", post(datasets::bulk))
        .route("/v1/departments/bulk", post(departments::bulk))
        .layer(DefaultBodyLimit::max(limits.max_bulk_bytes));
    let raft = Router::new()
        .route(yiwang_raft_store::network::PATH_APPEND, post(raft::append))
        .route(yiwang_raft_store::network::PATH_VOTE, post(raft::vote))
        .route(
            yiwang_raft_store::network::PATH_SNAPSHOT,
            post(raft::snapshot),
        )
        .route(crate::cluster::PATH_FORWARD, post(raft::forward))
        .route("/raft/status", get(raft::status))
        .route(audit::PATH_PEER_AUDIT, post(audit::peer))
        .layer(DefaultBodyLimit::max(512 << 20));
    let api = Router::new()
        .route(
            "/v1/departments",
            get(departments::list).post(departments::register),
        )
        .route("/v1/departments/{code}", get(departments::show))
        .route("/v1/datasets", get(datasets::list).post(datasets::register))
        .route(
            "/v1/datasets/{id}",
            get(datasets::show)
                .put(datasets::update)
                .delete(datasets::retire),
        )
        .route("/v1/datasets/{id}/records", get(records::read))
        .route("/v1/search", get(search::search))
        .route(
            "/v1/search/synonyms",
            get(search::synonyms).put(search::set_synonyms),
        )
        .route("/v1/search/rebuild", post(search::rebuild))
        .route("/v1/catalog.ttl", get(dcat::turtle))
        .route("/v1/catalog.jsonld", get(dcat::jsonld))
        .route("/v1/query", post(query::query))
        .route(
            "/v1/sources/{source}/tables/{table}/columns",
            get(sources::columns),
        )
        .route(
            "/v1/access-requests",
            get(access::list_requests).post(access::create_request),
        )
        .route("/v1/access-requests/{id}", get(access::show_request))
        .route("/v1/access-requests/{id}/approve", post(access::approve))
        .route("/v1/access-requests/{id}/reject", post(access::reject))
        .route("/v1/access-requests/{id}/withdraw", post(access::withdraw))
        .route("/v1/grants", get(access::list_grants))
        .route(
            "/v1/grants/{id}",
            get(access::show_grant).delete(access::revoke),
        )
        .route(
            "/v1/roles",
            get(admin::list_roles)
                .post(admin::bind_role)
                .delete(admin::unbind_role),
        )
        .route("/v1/whoami", get(admin::whoami))
        .route("/v1/authz/explain", get(admin::explain))
        .route("/v1/audit", get(audit::search))
        .route("/v1/audit/summary", get(audit::summary))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/cluster", get(cluster::status))
        .route("/v1/cluster/init", post(cluster::init))
        .route("/v1/cluster/learners", post(cluster::add_learner))
        .route("/v1/cluster/voters", post(cluster::promote))
        .route("/v1/cluster/remove", post(cluster::remove))
        .route("/v1/cluster/backup", get(cluster::backup))
        .route("/v1/openapi.json", get(admin::openapi))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    let client = client_layers(Router::new().merge(api).merge(bulk), &node);
    // CKAN clients get every error, the middleware's included, in CKAN's envelope.
    let ckan = Router::new()
        .route("/api/3/action/{name}", get(ckan::action).post(ckan::action))
        // CKAN serves the same actions without the version; ckanapi uses this form.
        .route("/api/action/{name}", get(ckan::action).post(ckan::action))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    let ckan = client_layers(ckan, &node).layer(axum::middleware::from_fn_with_state(
        node.clone(),
        ckan::envelope_errors,
    ));
    Router::new()
        .merge(client)
        .merge(ckan)
        .merge(raft)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            context::request_context,
        ))
        .with_state(node)
}

/// The layers of client requests, innermost first: the read barrier (see
/// `context::consistency`; Raft RPC must not pass it, since the barrier itself may need
/// Raft), then rate limits outside it (a refused request costs nothing more), then the
/// deadline.
fn client_layers(router: Router<Arc<Node>>, node: &Arc<Node>) -> Router<Arc<Node>> {
    router
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            context::consistency,
        ))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            ratelimit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            context::deadline,
        ))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Paging parameters shared by list endpoints.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub limit: usize,
    pub offset: usize,
}

impl Paging {
    pub const MAX: usize = 1000;

    pub fn new(
        limit: Option<usize>,
        offset: Option<usize>,
        default: usize,
    ) -> Result<Paging, ApiError> {
        let limit = limit.unwrap_or(default);
        if limit == 0 || limit > Paging::MAX {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {}", Paging::MAX),
            ));
        }
        Ok(Paging {
            limit,
            offset: offset.unwrap_or(0),
        })
    }
}
