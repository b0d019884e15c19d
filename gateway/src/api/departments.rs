//! `/v1/departments`: list, show, register (admin), bulk register (admin).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use yiwang_catalog::model::Department;
use yiwang_catalog::{Command, Outcome, validate};
use yiwang_policies::Action;

use super::{ApiError, Audited, Caller, JsonBody, bulk};
use crate::node::Node;

/// What an admin submits for a department.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentInput {
    pub code: String,
    pub name: String,
    pub region: String,
}

impl DepartmentInput {
    fn into_department(self) -> Department {
        Department {
            code: self.code,
            name: self.name,
            region: self.region,
            created_at: String::new(),
        }
    }
}

pub async fn list(
    State(node): State<Arc<Node>>,
    _caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = node.state.read();
    let items: Vec<serde_json::Value> = s
        .departments
        .values()
        .map(|d| {
            let datasets = s.datasets.values().filter(|x| x.dept == d.code).count();
            let mut v = serde_json::to_value(d).unwrap_or_default();
            v["datasets"] = datasets.into();
            v
        })
        .collect();
    Ok(Json(
        serde_json::json!({"total": items.len(), "departments": items}),
    ))
}

pub async fn show(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<Department>, ApiError> {
    let s = node.state.read();
    s.departments
        .get(&code)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("department '{code}' not found")))
}

pub async fn register(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: Result<JsonBody<DepartmentInput>, ApiError>,
) -> Result<(StatusCode, Json<Department>), ApiError> {
    let mut audit = Audited::new(&caller, "department.register");
    let result = async {
        node.policy
            .require(&caller.principal, Action::Manage, None, "*")
            .await?;
        let JsonBody(input) = body?;
        let d = input.into_department();
        validate::department(&d)?;
        let out = node
            .propose(Command::RegisterDepartments {
                at: yiwang_catalog::clock::now(),
                departments: vec![d],
            })
            .await?;
        match out {
            Outcome::Departments { mut results } if results.len() == 1 => Ok(results.remove(0)?),
            other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
        }
    }
    .await;
    if let Ok(d) = &result {
        audit.event.reason = format!("registered department {}", d.code);
        audit.event.status = 201;
    }
    let d = audit.finish(&node, result).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

pub async fn bulk(
    State(node): State<Arc<Node>>,
    caller: Caller,
    req: Request,
) -> Result<Json<bulk::BulkReport>, ApiError> {
    let audit = Audited::new(&caller, "department.bulk_register");
    let result = async {
        node.policy
            .require(&caller.principal, Action::Manage, None, "*")
            .await?;
        let body = super::context::body_bytes(req, &node).await?;
        let batch = node.config.limits.bulk_batch;
        bulk::import(
            &body,
            batch,
            |d: &DepartmentInput| {
                let dep = Department {
                    code: d.code.clone(),
                    name: d.name.clone(),
                    region: d.region.clone(),
                    created_at: String::new(),
                };
                validate::department(&dep)?;
                Ok(d.code.clone())
            },
            |items: Vec<DepartmentInput>| {
                let node = node.clone();
                async move {
                    let out = node
                        .propose(Command::RegisterDepartments {
                            at: yiwang_catalog::clock::now(),
                            departments: items
                                .into_iter()
                                .map(DepartmentInput::into_department)
                                .collect(),
                        })
                        .await?;
                    match out {
                        Outcome::Departments { results } => Ok(results
                            .into_iter()
                            .map(|r| r.map(|d| d.code).map_err(ApiError::from))
                            .collect()),
                        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
                    }
                }
            },
        )
        .await
    }
    .await;
    let mut audit = audit;
    if let Ok(r) = &result {
        audit.event.reason = format!("{} created, {} failed", r.created, r.failed);
        audit.event.rows = r.created as u64;
    }
    Ok(Json(audit.finish(&node, result).await?))
}
