//! `GET /v1/search`: full-text discovery over the catalog (tantivy + jieba); the
//! admin-defined synonyms (`GET`/`PUT /v1/search/synonyms`) and the online rebuild of a
//! node's index (`POST /v1/search/rebuild`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use yiwang_catalog::model::{ShareType, UpdateCycle};
use yiwang_catalog::search::{SearchQuery, SearchResult, SearchSort};
use yiwang_catalog::{Command, validate};
use yiwang_policies::Action;

use super::context::empty_as_none;
use super::{ApiError, Audited, Caller, JsonBody, Query};
use crate::indexer::RebuildReport;
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
    /// `relevance` (default), `newest`, `oldest` or `id`.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub sort: Option<SearchSort>,
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
        sort: p.sort.unwrap_or_default(),
        synonyms: Vec::new(),
    };
    Ok(Json(run(&node, query).await?))
}

/// Runs a search on this node's index with the catalog's admin-defined synonyms.
pub async fn run(node: &Arc<Node>, mut query: SearchQuery) -> Result<SearchResult, ApiError> {
    query.synonyms = node.state.read().synonyms.clone();
    let index = node.search.clone();
    let result = tokio::task::spawn_blocking(move || index.search(&query))
        .await
        .map_err(|e| ApiError::internal(format!("search task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("search failed: {e}")))?;
    Ok(result)
}

/// The admin-defined synonym groups, each a list of interchangeable terms.
#[derive(Debug, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synonyms {
    pub groups: Vec<Vec<String>>,
}

pub async fn synonyms(
    State(node): State<Arc<Node>>,
    _caller: Caller,
) -> Result<Json<Synonyms>, ApiError> {
    Ok(Json(Synonyms {
        groups: node.state.read().synonyms.clone(),
    }))
}

/// Replaces the admin-defined synonym groups; searches on every node use them as soon as
/// the change is applied there (no restart, no re-indexing).
pub async fn set_synonyms(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: Result<JsonBody<Synonyms>, ApiError>,
) -> Result<Json<Synonyms>, ApiError> {
    let audit = Audited::new(&caller, "search.set_synonyms");
    let result = async {
        node.policy
            .require(&caller.principal, Action::Manage, None, "*")
            .await?;
        let JsonBody(input) = body?;
        validate::synonyms(&input.groups)?;
        node.propose(Command::SetSynonyms {
            groups: input.groups.clone(),
        })
        .await?;
        Ok(Json(input))
    }
    .await;
    audit.finish(&node, result).await
}

/// Rebuilds this node's search index from its catalog state (admin). Searches keep being
/// answered during the rebuild.
pub async fn rebuild(
    State(node): State<Arc<Node>>,
    caller: Caller,
) -> Result<Json<RebuildReport>, ApiError> {
    let audit = Audited::new(&caller, "search.rebuild");
    let result = async {
        node.policy
            .require(&caller.principal, Action::Manage, None, "*")
            .await?;
        Ok(Json(node.rebuild_search().await?))
    }
    .await;
    audit.finish(&node, result).await
}
