//! Roles, identity, decision explanations, cluster status and the API description.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use yiwang_catalog::identity::SpiffeId;
use yiwang_catalog::model::{Role, RoleBinding};
use yiwang_catalog::{Command, validate};
use yiwang_policies::{Action, Principal};

use super::{ApiError, Audited, Caller, JsonBody, Query};
use crate::node::Node;

pub async fn whoami(State(node): State<Arc<Node>>, caller: Caller) -> Json<serde_json::Value> {
    let s = node.state.read();
    let mut roles: Vec<&str> = s.roles_of(caller.id()).map(Role::as_str).collect();
    if node.config.admins.iter().any(|a| a == caller.id()) && !roles.contains(&"admin") {
        roles.push("admin");
    }
    let dept_name = s.departments.get(caller.dept()).map(|d| d.name.clone());
    Json(serde_json::json!({
        "principal": caller.id(),
        "dept": caller.dept(),
        "dept_name": dept_name,
        "roles": roles,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesParams {
    pub dept: Option<String>,
    pub role: Option<Role>,
}

pub async fn list_roles(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Query(p): Query<RolesParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = node.state.read();
    let bindings: Vec<RoleBinding> = s
        .roles
        .iter()
        .flat_map(|(principal, roles)| {
            roles.iter().map(move |r| RoleBinding {
                principal: principal.clone(),
                role: *r,
            })
        })
        .filter(|b| p.role.is_none_or(|r| b.role == r))
        .filter(|b| {
            p.dept.as_deref().is_none_or(|d| {
                SpiffeId::parse(&b.principal)
                    .and_then(|id| id.dept().map(|x| x == d))
                    .unwrap_or(false)
            })
        })
        .collect();
    Ok(Json(
        serde_json::json!({"total": bindings.len(), "bindings": bindings}),
    ))
}

async fn change_role(
    node: &Node,
    caller: &Caller,
    body: Result<JsonBody<RoleBinding>, ApiError>,
    bind: bool,
) -> Result<RoleBinding, ApiError> {
    let mut audit = Audited::new(caller, if bind { "role.bind" } else { "role.unbind" });
    let result = async {
        node.policy
            .require(&caller.principal, Action::Manage, None, "*")
            .await?;
        let JsonBody(b) = body?;
        validate::principal("principal", &b.principal)?;
        audit.event.reason = format!(
            "{} {} {}",
            if bind { "bind" } else { "unbind" },
            b.role,
            b.principal
        );
        let cmd = if bind {
            Command::BindRoles {
                bindings: vec![b.clone()],
            }
        } else {
            Command::UnbindRole { binding: b.clone() }
        };
        node.propose(cmd).await?;
        if bind {
            audit.event.status = 201;
        }
        Ok(b)
    }
    .await;
    audit.finish(node, result).await
}

pub async fn bind_role(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: Result<JsonBody<RoleBinding>, ApiError>,
) -> Result<(StatusCode, Json<RoleBinding>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(change_role(&node, &caller, body, true).await?),
    ))
}

pub async fn unbind_role(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: Result<JsonBody<RoleBinding>, ApiError>,
) -> Result<Json<RoleBinding>, ApiError> {
    Ok(Json(change_role(&node, &caller, body, false).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainParams {
    /// Whose access to explain; default: the caller.
    pub principal: Option<String>,
    pub dataset: String,
    /// `read` (default), `write`, `decide` or `request`.
    pub action: Option<String>,
}

/// Why a principal may or may not act on a dataset: the rule, the grant, the masked
/// fields. Admins and auditors may ask about anyone; others about themselves.
pub async fn explain(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Query(p): Query<ExplainParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let subject = p.principal.unwrap_or_else(|| caller.id().to_string());
    if subject != caller.id() {
        let s = node.state.read();
        if !(s.has_role(caller.id(), Role::Admin) || s.has_role(caller.id(), Role::Auditor)) {
            return Err(ApiError::forbidden(
                "only admins and auditors may ask about other principals",
            ));
        }
    }
    let id = SpiffeId::parse(&subject).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            format!("'{subject}' is not a department SPIFFE ID"),
        )
    })?;
    let dept = id
        .dept()
        .ok_or_else(|| {
            ApiError::bad_request("invalid_query", "node identities have no data access")
        })?
        .to_string();
    if !node.state.read().departments.contains_key(&dept) {
        return Err(ApiError::not_found(format!(
            "principal '{subject}' is unknown: no department '{dept}' is registered"
        )));
    }
    let who = Principal {
        id: subject.clone(),
        dept,
    };
    let action = match p.action.as_deref().unwrap_or("read") {
        "read" => Action::Read,
        "write" => Action::Write,
        "decide" => Action::Decide,
        "request" => Action::Request,
        other => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("action must be read, write, decide or request, not '{other}'"),
            ));
        }
    };
    let dataset = super::datasets::find(&node, &p.dataset)?;
    let roles: Vec<String> = node
        .state
        .read()
        .roles_of(&subject)
        .map(|r| r.to_string())
        .collect();
    let mut out = serde_json::json!({
        "principal": subject,
        "dept": who.dept,
        "roles": roles,
        "dataset": dataset.id,
        "provider_dept": dataset.dept,
        "share_type": dataset.share_type,
        "action": action.as_str(),
    });
    if action == Action::Read {
        match node
            .policy
            .plan_read(&who, &dataset, None, &yiwang_catalog::clock::now())
            .await
        {
            Ok(plan) => {
                out["allowed"] = true.into();
                out["rule"] = plan.decision.rule.clone().into();
                out["reason"] = plan.decision.reason.clone().into();
                out["grant"] = plan.decision.grant.clone().into();
                out["fields"] = plan
                    .columns
                    .iter()
                    .map(|c| c.field.name.clone())
                    .collect::<Vec<_>>()
                    .into();
                out["masked_fields"] = plan.masked_fields().into();
                out["row_filter"] = plan.row_filter.map(|f| f.to_string()).into();
            }
            Err(e) => {
                out["allowed"] = false.into();
                out["reason"] = e.to_string().into();
            }
        }
    } else {
        let d = node
            .policy
            .decide(&who, action, Some(&dataset), &dataset.dept)
            .await?;
        out["allowed"] = d.allowed.into();
        out["rule"] = d.rule.into();
        out["reason"] = d.reason.into();
    }
    Ok(Json(out))
}

pub async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
