//! The access workflow: requests, decisions by the providing steward, grants.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use yiwang_catalog::model::{AccessRequest, Grant, RequestState, ShareType};
use yiwang_catalog::{Command, Outcome, filter, validate};
use yiwang_policies::Action;

use super::context::OptionalJsonBody;
use super::{ApiError, Audited, Caller, JsonBody, Paging, Query};
use crate::node::Node;

fn new_id(prefix: &str) -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &u[..16])
}

/// Admins (catalog or bootstrap) and city-wide auditors see every request and grant;
/// others see those where their department is the consumer or the provider.
pub async fn sees_all(node: &Node, caller: &Caller) -> bool {
    let p = &caller.principal;
    let admin = node.policy.decide(p, Action::Manage, None, "*").await;
    // `*` is nobody's department, so only the city-wide auditor rule matches it.
    let auditor = node.policy.decide(p, Action::Audit, None, "*").await;
    admin.is_ok_and(|d| d.allowed) || auditor.is_ok_and(|d| d.allowed)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    pub dataset: String,
    #[serde(default)]
    pub fields: Vec<String>,
    pub purpose: String,
    /// Requested duration in days (default 30).
    pub days: Option<u32>,
}

pub async fn create_request(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: Result<JsonBody<RequestInput>, ApiError>,
) -> Result<(StatusCode, Json<AccessRequest>), ApiError> {
    let mut audit = Audited::new(&caller, "access.request");
    let result = async {
        let JsonBody(input) = body?;
        audit.dataset_id(&input.dataset);
        audit.event.purpose = input.purpose.clone();
        audit.event.fields = input.fields.clone();
        let dataset = super::datasets::find(&node, &input.dataset)?;
        audit.dataset(&dataset);
        let days = input.days.unwrap_or(30);
        validate::purpose(&input.purpose)?;
        validate::days("days", days)?;
        let decision = node
            .policy
            .decide(
                &caller.principal,
                Action::Request,
                Some(&dataset),
                &dataset.dept,
            )
            .await?;
        if !decision.allowed {
            // Explain the common cases precisely: own data, unshared data.
            let msg = if dataset.dept == caller.dept() {
                format!(
                    "dataset '{}' belongs to your own department; no request is needed",
                    dataset.id
                )
            } else if dataset.share_type == ShareType::None {
                format!(
                    "dataset '{}' is not shared outside {} (share_type none)",
                    dataset.id, dataset.dept
                )
            } else {
                decision.reason
            };
            return Err(ApiError::forbidden(msg));
        }
        // One pending request per department and dataset. Checked here, by the node
        // that proposes, rather than in the state machine, so that nodes of different
        // versions apply the same log identically during a rolling upgrade.
        // (A retired dataset is refused as such by the state machine.)
        if dataset.status == yiwang_catalog::model::DatasetStatus::Active
            && let Some(open) = node.state.read().requests.values().find(|o| {
            o.state == RequestState::Pending
                && o.dataset == dataset.id
                && o.consumer_dept == caller.dept()
        }) {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "conflict",
                format!(
                    "{} already has a pending request for dataset '{}' ({}, by {}); withdraw it or wait for the decision",
                    caller.dept(),
                    dataset.id,
                    open.id,
                    open.consumer
                ),
            ));
        }
        let now = yiwang_catalog::clock::now();
        let request = AccessRequest {
            id: new_id("ar"),
            consumer: caller.id().to_string(),
            consumer_dept: caller.dept().to_string(),
            dataset: dataset.id.clone(),
            provider_dept: dataset.dept.clone(),
            fields: input.fields,
            purpose: input.purpose,
            days,
            state: RequestState::Pending,
            created_at: now.clone(),
            decide_by: Some(yiwang_catalog::clock::plus_working_days(
                &now,
                yiwang_catalog::clock::DECISION_WORKING_DAYS,
            )),
            decided_by: None,
            decided_at: None,
            reason: None,
            grant_id: None,
        };
        match node.propose(Command::CreateRequest { request }).await? {
            Outcome::Request { request } => Ok(request),
            other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
        }
    }
    .await;
    if let Ok(r) = &result {
        audit.event.reason = format!("created access request {}", r.id);
        audit.event.fields = r.fields.clone();
        audit.event.status = 201;
    }
    let r = audit.finish(&node, result).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRequestsParams {
    pub state: Option<RequestState>,
    pub dataset: Option<String>,
    /// Only requests to (`provider`) or from (`consumer`) the caller's department.
    pub side: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

pub async fn list_requests(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Query(p): Query<ListRequestsParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let paging = Paging::new(p.limit, p.offset, 100)?;
    if let Some(side) = p.side.as_deref()
        && side != "provider"
        && side != "consumer"
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "side must be provider or consumer",
        ));
    }
    let all = sees_all(&node, &caller).await;
    let dept = caller.dept();
    let s = node.state.read();
    let matching: Vec<&AccessRequest> = s
        .requests
        .values()
        .filter(|r| all || r.consumer_dept == dept || r.provider_dept == dept)
        .filter(|r| match p.side.as_deref() {
            Some("provider") => r.provider_dept == dept,
            Some("consumer") => r.consumer_dept == dept,
            _ => true,
        })
        .filter(|r| p.state.is_none_or(|st| r.state == st))
        .filter(|r| p.dataset.as_deref().is_none_or(|d| r.dataset == d))
        .collect();
    let total = matching.len();
    let items: Vec<_> = matching
        .into_iter()
        .rev()
        .skip(paging.offset)
        .take(paging.limit)
        .cloned()
        .collect();
    Ok(Json(serde_json::json!({"total": total, "requests": items})))
}

async fn find_request(node: &Node, caller: &Caller, id: &str) -> Result<AccessRequest, ApiError> {
    let r = node
        .state
        .read()
        .requests
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("access request '{id}' not found")))?;
    if r.consumer_dept != caller.dept()
        && r.provider_dept != caller.dept()
        && !sees_all(node, caller).await
    {
        return Err(ApiError::not_found(format!(
            "access request '{id}' not found"
        )));
    }
    Ok(r)
}

pub async fn show_request(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AccessRequest>, ApiError> {
    Ok(Json(find_request(&node, &caller, &id).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveInput {
    /// Narrow the granted fields (a subset of the requested ones).
    pub fields: Option<Vec<String>>,
    /// Rows the consumer may see, in the record filter language.
    pub row_filter: Option<String>,
    /// Duration in days; default: the requested duration.
    pub days: Option<u32>,
}

/// Checks that the caller may decide on `request` (steward of the providing department).
async fn authorize_decision(
    node: &Node,
    caller: &Caller,
    request: &AccessRequest,
) -> Result<(), ApiError> {
    let dataset = super::datasets::find(node, &request.dataset)?;
    node.policy
        .require(
            &caller.principal,
            Action::Decide,
            Some(&dataset),
            &dataset.dept,
        )
        .await?;
    Ok(())
}

pub async fn approve(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<OptionalJsonBody<ApproveInput>, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut audit = Audited::new(&caller, "access.approve");
    let result = async {
        let request = find_request(&node, &caller, &id).await?;
        audit.dataset_id(&request.dataset);
        audit.event.provider_dept = Some(request.provider_dept.clone());
        audit.event.purpose = request.purpose.clone();
        authorize_decision(&node, &caller, &request).await?;
        let input = body?.0.unwrap_or_default();
        let dataset = super::datasets::find(&node, &request.dataset)?;
        let row_filter = match input.row_filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
            None => None,
            Some(_) if dataset.share_type == ShareType::Unconditional => {
                return Err(ApiError::bad_request(
                    "invalid_input",
                    "invalid row_filter: grants on unconditional datasets only unmask fields; row filters apply to conditional datasets",
                ));
            }
            Some(text) => {
                let expr = filter::parse(text)
                    .map_err(|e| ApiError::bad_request("invalid_input", format!("invalid row_filter: {e}")))?;
                filter::validate(&expr, &dataset.fields).map_err(|e| match e {
                    yiwang_catalog::CatalogError::Invalid { message, .. } => {
                        ApiError::bad_request("invalid_input", format!("invalid row_filter: {message}"))
                    }
                    other => other.into(),
                })?;
                Some(expr.to_string())
            }
        };
        if let Some(days) = input.days {
            validate::days("days", days)?;
            if days > request.days {
                return Err(ApiError::bad_request(
                    "invalid_input",
                    format!(
                        "invalid days: an approval may shorten the requested {} days, not extend them to {days}",
                        request.days
                    ),
                ));
            }
        }
        let out = node
            .propose(Command::ApproveRequest {
                id: id.clone(),
                by: caller.id().to_string(),
                at: yiwang_catalog::clock::now(),
                grant_id: new_id("grant"),
                fields: input.fields,
                row_filter,
                days: input.days,
            })
            .await?;
        match out {
            Outcome::Approved { request, grant } => Ok((request, grant)),
            other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
        }
    }
    .await;
    if let Ok((_, g)) = &result {
        audit.event.grant = Some(g.id.clone());
        audit.event.fields = g.fields.clone();
        audit.event.reason = format!(
            "approved request {id}: grant {} until {}",
            g.id, g.expires_at
        );
    }
    let (request, grant) = audit.finish(&node, result).await?;
    Ok(Json(
        serde_json::json!({"request": request, "grant": grant}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectInput {
    pub reason: String,
}

pub async fn reject(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<JsonBody<RejectInput>, ApiError>,
) -> Result<Json<AccessRequest>, ApiError> {
    let mut audit = Audited::new(&caller, "access.reject");
    let result = async {
        let request = find_request(&node, &caller, &id).await?;
        audit.dataset_id(&request.dataset);
        audit.event.provider_dept = Some(request.provider_dept.clone());
        authorize_decision(&node, &caller, &request).await?;
        let JsonBody(input) = body?;
        validate::text_required("reason", &input.reason)?;
        let out = node
            .propose(Command::RejectRequest {
                id: id.clone(),
                by: caller.id().to_string(),
                at: yiwang_catalog::clock::now(),
                reason: input.reason,
            })
            .await?;
        match out {
            Outcome::Request { request } => Ok(request),
            other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
        }
    }
    .await;
    Ok(Json(audit.finish(&node, result).await?))
}

pub async fn withdraw(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AccessRequest>, ApiError> {
    let mut audit = Audited::new(&caller, "access.withdraw");
    let result = async {
        let request = find_request(&node, &caller, &id).await?;
        audit.dataset_id(&request.dataset);
        audit.event.provider_dept = Some(request.provider_dept.clone());
        if request.consumer != caller.id() {
            return Err(ApiError::forbidden(format!(
                "only {} who made request '{id}' may withdraw it",
                request.consumer
            )));
        }
        let out = node
            .propose(Command::WithdrawRequest {
                id: id.clone(),
                by: caller.id().to_string(),
                at: yiwang_catalog::clock::now(),
            })
            .await?;
        match out {
            Outcome::Request { request } => Ok(request),
            other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
        }
    }
    .await;
    Ok(Json(audit.finish(&node, result).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListGrantsParams {
    /// Consumer department code.
    pub consumer: Option<String>,
    pub dataset: Option<String>,
    /// Only grants in force now.
    pub active: Option<bool>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

pub async fn list_grants(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Query(p): Query<ListGrantsParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let paging = Paging::new(p.limit, p.offset, 100)?;
    let all = sees_all(&node, &caller).await;
    let dept = caller.dept();
    let now = yiwang_catalog::clock::now();
    let s = node.state.read();
    let matching: Vec<&Grant> = s
        .grants
        .values()
        .filter(|g| all || g.consumer_dept == dept || g.provider_dept == dept)
        .filter(|g| p.consumer.as_deref().is_none_or(|c| g.consumer_dept == c))
        .filter(|g| p.dataset.as_deref().is_none_or(|d| g.dataset == d))
        .filter(|g| p.active.is_none_or(|a| g.is_active_at(&now) == a))
        .collect();
    let mut matching = matching;
    matching.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    let total = matching.len();
    let items: Vec<serde_json::Value> = matching
        .into_iter()
        .skip(paging.offset)
        .take(paging.limit)
        .map(|g| {
            let mut v = serde_json::to_value(g).unwrap_or_default();
            v["active"] = g.is_active_at(&now).into();
            v
        })
        .collect();
    Ok(Json(serde_json::json!({"total": total, "grants": items})))
}

pub async fn show_grant(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Grant>, ApiError> {
    let all = sees_all(&node, &caller).await;
    let s = node.state.read();
    s.grants
        .get(&id)
        .filter(|g| all || g.consumer_dept == caller.dept() || g.provider_dept == caller.dept())
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("grant '{id}' not found")))
}

pub async fn revoke(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Grant>, ApiError> {
    let mut audit = Audited::new(&caller, "grant.revoke");
    let result = async {
        let all = sees_all(&node, &caller).await;
        let grant = node
            .state
            .read()
            .grants
            .get(&id)
            .filter(|g| all || g.consumer_dept == caller.dept() || g.provider_dept == caller.dept())
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("grant '{id}' not found")))?;
        audit.dataset_id(&grant.dataset);
        audit.event.provider_dept = Some(grant.provider_dept.clone());
        audit.event.grant = Some(id.clone());
        let dataset = super::datasets::find(&node, &grant.dataset)?;
        node.policy
            .require(
                &caller.principal,
                Action::Decide,
                Some(&dataset),
                &dataset.dept,
            )
            .await?;
        let out = node
            .propose(Command::RevokeGrant {
                id: id.clone(),
                by: caller.id().to_string(),
                at: yiwang_catalog::clock::now(),
            })
            .await?;
        match out {
            Outcome::Grant { grant } => Ok(grant),
            other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
        }
    }
    .await;
    Ok(Json(audit.finish(&node, result).await?))
}
