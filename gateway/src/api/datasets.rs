//! `/v1/datasets`: the catalog entries. Stewards change their own department's; anyone
//! authenticated reads them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use yiwang_catalog::model::{Dataset, DatasetInput, DatasetStatus, ShareType};
use yiwang_catalog::{Command, Outcome, validate};
use yiwang_policies::Action;

use super::{ApiError, Audited, Caller, JsonBody, Paging, Query, bulk};
use crate::node::Node;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub dept: Option<String>,
    pub share_type: Option<ShareType>,
    /// `active` (default), `retired` or `all`.
    pub status: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

pub async fn list(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Query(p): Query<ListParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let paging = Paging::new(p.limit, p.offset, 50)?;
    let status = match p.status.as_deref() {
        None | Some("active") => Some(DatasetStatus::Active),
        Some("retired") => Some(DatasetStatus::Retired),
        Some("all") => None,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("status must be active, retired or all, not '{other}'"),
            ));
        }
    };
    let s = node.state.read();
    let matching = s.datasets.values().filter(|d| {
        p.dept.as_deref().is_none_or(|x| d.dept == x)
            && p.share_type.is_none_or(|t| d.share_type == t)
            && status.is_none_or(|st| d.status == st)
    });
    let mut total = 0usize;
    let mut items = Vec::new();
    for d in matching {
        if total >= paging.offset && items.len() < paging.limit {
            items.push(d.clone());
        }
        total += 1;
    }
    Ok(Json(serde_json::json!({"total": total, "datasets": items})))
}

/// Looks up a dataset (active or retired).
pub fn find(node: &Node, id: &str) -> Result<Dataset, ApiError> {
    node.state
        .read()
        .datasets
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("dataset '{id}' not found")))
}

pub async fn show(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Dataset>, ApiError> {
    Ok(Json(find(&node, &id)?))
}

/// A steward may only describe datasets of their own department.
async fn authorize_write(
    node: &Node,
    caller: &Caller,
    input: &DatasetInput,
) -> Result<(), ApiError> {
    let existing = node.state.read().datasets.get(&input.id).cloned();
    match existing {
        Some(d) => {
            node.policy
                .require(&caller.principal, Action::Write, Some(&d), &d.dept)
                .await?
        }
        None => {
            node.policy
                .require(&caller.principal, Action::Write, None, &input.dept)
                .await?
        }
    };
    if input.dept != caller.dept() {
        return Err(ApiError::forbidden(format!(
            "{} may only describe datasets of {}, not {}",
            caller.id(),
            caller.dept(),
            input.dept
        )));
    }
    Ok(())
}

fn one_dataset(out: Outcome) -> Result<Dataset, ApiError> {
    match out {
        Outcome::Datasets { mut results } if results.len() == 1 => Ok(results.remove(0)?),
        Outcome::Dataset { dataset } => Ok(dataset),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

pub async fn register(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: Result<JsonBody<DatasetInput>, ApiError>,
) -> Result<(StatusCode, Json<Dataset>), ApiError> {
    let mut audit = Audited::new(&caller, "dataset.register");
    let result = async {
        let JsonBody(input) = body?;
        audit.dataset_id(&input.id);
        audit.event.provider_dept = Some(input.dept.clone());
        validate::dataset(&input)?;
        authorize_write(&node, &caller, &input).await?;
        let out = node
            .propose(Command::RegisterDatasets {
                at: yiwang_catalog::clock::now(),
                datasets: vec![input],
            })
            .await?;
        audit.event.status = 201;
        one_dataset(out)
    }
    .await;
    let d = audit.finish(&node, result).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateParams {
    /// Optimistic concurrency: the version the change was based on.
    pub version: Option<u64>,
}

pub async fn update(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<UpdateParams>,
    body: Result<JsonBody<DatasetInput>, ApiError>,
) -> Result<Json<Dataset>, ApiError> {
    let mut audit = Audited::new(&caller, "dataset.update");
    audit.dataset_id(&id);
    let result = async {
        let JsonBody(input) = body?;
        if input.id != id {
            return Err(ApiError::bad_request(
                "invalid_input",
                format!(
                    "invalid id: body says '{}' but the path says '{id}'",
                    input.id
                ),
            ));
        }
        let existing = find(&node, &id)?;
        audit.dataset(&existing);
        validate::dataset(&input)?;
        authorize_write(&node, &caller, &input).await?;
        let out = node
            .propose(Command::UpdateDataset {
                at: yiwang_catalog::clock::now(),
                dataset: input,
                expected_version: p.version,
            })
            .await?;
        one_dataset(out)
    }
    .await;
    Ok(Json(audit.finish(&node, result).await?))
}

pub async fn retire(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Dataset>, ApiError> {
    let mut audit = Audited::new(&caller, "dataset.retire");
    audit.dataset_id(&id);
    let result = async {
        let existing = find(&node, &id)?;
        audit.dataset(&existing);
        node.policy
            .require(
                &caller.principal,
                Action::Write,
                Some(&existing),
                &existing.dept,
            )
            .await?;
        let out = node
            .propose(Command::RetireDataset {
                at: yiwang_catalog::clock::now(),
                id: id.clone(),
            })
            .await?;
        one_dataset(out)
    }
    .await;
    Ok(Json(audit.finish(&node, result).await?))
}

pub async fn bulk(
    State(node): State<Arc<Node>>,
    caller: Caller,
    req: Request,
) -> Result<Json<bulk::BulkReport>, ApiError> {
    let mut audit = Audited::new(&caller, "dataset.bulk_register");
    audit.event.provider_dept = Some(caller.dept().to_string());
    let result = async {
        // An admin may import the datasets of every department (migrating a whole
        // catalog, e.g. from an open-data portal); a steward those of its own.
        let admin = node
            .policy
            .require(&caller.principal, Action::Manage, None, "*")
            .await
            .is_ok();
        if !admin {
            node.policy
                .require(&caller.principal, Action::Write, None, caller.dept())
                .await?;
        }
        let body = super::context::body_bytes(req, &node).await?;
        let batch = node.config.limits.bulk_batch;
        let dept = caller.dept().to_string();
        bulk::import(
            &body,
            batch,
            |d: &DatasetInput| {
                validate::dataset(d)?;
                if !admin && d.dept != dept {
                    return Err(ApiError::forbidden(format!(
                        "{} may only register datasets of {dept}, not {}",
                        caller.id(),
                        d.dept
                    )));
                }
                Ok(d.id.clone())
            },
            |items: Vec<DatasetInput>| {
                let node = node.clone();
                async move {
                    let out = node
                        .propose(Command::RegisterDatasets {
                            at: yiwang_catalog::clock::now(),
                            datasets: items,
                        })
                        .await?;
                    match out {
                        Outcome::Datasets { results } => Ok(results
                            .into_iter()
                            .map(|r| r.map(|d| d.id).map_err(ApiError::from))
                            .collect()),
                        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
                    }
                }
            },
        )
        .await
    }
    .await;
    if let Ok(r) = &result {
        audit.event.reason = format!("{} created, {} failed", r.created, r.failed);
        audit.event.rows = r.created as u64;
    }
    Ok(Json(audit.finish(&node, result).await?))
}
