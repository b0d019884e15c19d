//! `GET /v1/search`: full-text discovery over the catalog (tantivy + jieba).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use yiwang_catalog::model::{ShareType, UpdateCycle};
use yiwang_catalog::search::{SearchQuery, SearchResult};

use super::context::empty_as_none;
use super::{ApiError, Caller, Query};
use crate::node::Node;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
const MAX_QUERY_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    #[serde(default)]
    pub q: String,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub dept: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub share_type: Option<ShareType>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub theme: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub update_cycle: Option<UpdateCycle>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

pub async fn search(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Query(p): Query<SearchParams>,
) -> Result<Json<SearchResult>, ApiError> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if p.q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("q is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let offset = p.offset.unwrap_or(0);
    if offset > 10_000 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "offset must be at most 10000; narrow the query instead",
        ));
    }
    let query = SearchQuery {
        q: p.q,
        dept: p.dept,
        share_type: p.share_type,
        theme: p.theme,
        update_cycle: p.update_cycle,
        limit,
        offset,
    };
    let index = node.search.clone();
    let result = tokio::task::spawn_blocking(move || index.search(&query))
        .await
        .map_err(|e| ApiError::internal(format!("search task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("search failed: {e}")))?;
    Ok(Json(result))
}
