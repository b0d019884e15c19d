//! The casbin enforcer and its upkeep from catalog state.

use std::collections::BTreeSet;

use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use tokio::sync::RwLock;
use yiwang_catalog::model::{Dataset, Role};
use yiwang_catalog::{CatalogState, Change, SharedState};

use crate::{MODEL, POLICY, PolicyError};

/// Who is asking: the SPIFFE ID from the client certificate and its department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub dept: String,
}

/// What the principal wants to do (the `act` of the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read records of a dataset.
    Read,
    /// Register, update or retire a dataset.
    Write,
    /// Approve or reject an access request, revoke a grant.
    Decide,
    /// Ask for access to a dataset.
    Request,
    /// Read the audit trail (obj `*`, owner = the department whose records are read).
    Audit,
    /// Manage departments and roles.
    Manage,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Decide => "decide",
            Action::Request => "request",
            Action::Audit => "audit",
            Action::Manage => "manage",
        }
    }
}

/// The outcome of one decision, with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The policy row that allowed it (`p, system, read, unconditional, any`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Human explanation.
    pub reason: String,
    /// The grant a grant-scoped rule relied on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

/// The enforcer, kept in step with the catalog by [`PolicyEngine::apply`].
pub struct PolicyEngine {
    enforcer: RwLock<Enforcer>,
    state: SharedState,
    /// Bootstrap admins from the node configuration: admins whatever the catalog says.
    admins: Vec<String>,
}

fn engine_err(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Engine(e.to_string())
}

/// Parses `policy.csv` into rows (comments and blank lines skipped).
fn static_rows() -> Vec<Vec<String>> {
    POLICY
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|row| row.first().is_some_and(|p| p == "p"))
        .map(|row| row[1..].to_vec())
        .collect()
}

fn role_rows(s: &CatalogState) -> Vec<Vec<String>> {
    s.roles
        .iter()
        .flat_map(|(p, roles)| {
            roles
                .iter()
                .map(move |r| vec![p.clone(), r.as_str().to_string()])
        })
        .collect()
}

/// One `g2` row per (consumer department, dataset) with an unrevoked grant. Expiry is
/// checked at decision time, against the grant itself.
fn grant_rows(s: &CatalogState) -> BTreeSet<(String, String)> {
    s.grants
        .values()
        .filter(|g| g.revoked_at.is_none())
        .map(|g| (g.consumer_dept.clone(), g.dataset.clone()))
        .collect()
}

impl PolicyEngine {
    /// Builds the enforcer from the model, the static rows, the bootstrap admins and the
    /// current state.
    pub async fn new(state: SharedState, admins: Vec<String>) -> Result<PolicyEngine, PolicyError> {
        let model = DefaultModel::from_str(MODEL).await.map_err(engine_err)?;
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
            .await
            .map_err(engine_err)?;
        enforcer.enable_log(false);
        enforcer
            .add_policies(static_rows())
            .await
            .map_err(engine_err)?;
        let engine = PolicyEngine {
            enforcer: RwLock::new(enforcer),
            state,
            admins,
        };
        engine.reload().await?;
        Ok(engine)
    }

    /// Replaces all grouping rules with those of the current state.
    pub async fn reload(&self) -> Result<(), PolicyError> {
        let (mut roles, grants) = {
            let s = self.state.read();
            (role_rows(&s), grant_rows(&s))
        };
        for a in &self.admins {
            let row = vec![a.clone(), Role::Admin.as_str().to_string()];
            if !roles.contains(&row) {
                roles.push(row);
            }
        }
        let mut e = self.enforcer.write().await;
        for ptype in ["g", "g2"] {
            let existing = e.get_named_grouping_policy(ptype);
            if !existing.is_empty() {
                e.remove_named_grouping_policies(ptype, existing)
                    .await
                    .map_err(engine_err)?;
            }
        }
        if !roles.is_empty() {
            e.add_named_grouping_policies("g", roles)
                .await
                .map_err(engine_err)?;
        }
        let grants: Vec<Vec<String>> = grants.into_iter().map(|(a, b)| vec![a, b]).collect();
        if !grants.is_empty() {
            e.add_named_grouping_policies("g2", grants)
                .await
                .map_err(engine_err)?;
        }
        Ok(())
    }

    /// Brings the enforcer up to date with changed catalog rows.
    pub async fn apply(&self, changes: &[Change]) -> Result<(), PolicyError> {
        for change in changes {
            match change {
                Change::Roles(principal) => {
                    let mut want: Vec<Vec<String>> = {
                        let s = self.state.read();
                        s.roles_of(principal)
                            .map(|r| vec![principal.clone(), r.as_str().to_string()])
                            .collect()
                    };
                    let admin = vec![principal.clone(), Role::Admin.as_str().to_string()];
                    if self.admins.contains(principal) && !want.contains(&admin) {
                        want.push(admin);
                    }
                    let mut e = self.enforcer.write().await;
                    e.remove_filtered_named_grouping_policy("g", 0, vec![principal.clone()])
                        .await
                        .map_err(engine_err)?;
                    if !want.is_empty() {
                        e.add_named_grouping_policies("g", want)
                            .await
                            .map_err(engine_err)?;
                    }
                }
                Change::Grant(id) => {
                    let pair = {
                        let s = self.state.read();
                        s.grants.get(id).map(|g| {
                            let live = s.grants.values().any(|o| {
                                o.consumer_dept == g.consumer_dept
                                    && o.dataset == g.dataset
                                    && o.revoked_at.is_none()
                            });
                            (g.consumer_dept.clone(), g.dataset.clone(), live)
                        })
                    };
                    let Some((dept, dataset, live)) = pair else {
                        continue;
                    };
                    let row = vec![dept, dataset];
                    let mut e = self.enforcer.write().await;
                    let present = e.has_grouping_named_policy("g2", row.clone());
                    if live && !present {
                        e.add_named_grouping_policy("g2", row)
                            .await
                            .map_err(engine_err)?;
                    } else if !live && present {
                        e.remove_named_grouping_policy("g2", row)
                            .await
                            .map_err(engine_err)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The catalog state the engine decides against.
    pub fn state(&self) -> &SharedState {
        &self.state
    }

    /// Decides `act` by `who` on a dataset (or, with `None`, on a department-level
    /// object owned by `owner`).
    pub async fn decide(
        &self,
        who: &Principal,
        act: Action,
        dataset: Option<&Dataset>,
        owner: &str,
    ) -> Result<Decision, PolicyError> {
        let (obj, share) = match dataset {
            Some(d) => (d.id.as_str(), d.share_type.as_str()),
            None => ("*", "*"),
        };
        let owner = dataset.map_or(owner, |d| d.dept.as_str());
        let (allowed, rules) = {
            let e = self.enforcer.read().await;
            e.enforce_ex((
                who.id.as_str(),
                who.dept.as_str(),
                act.as_str(),
                obj,
                owner,
                share,
            ))
            .map_err(engine_err)?
        };
        let rule = rules.first().map(|r| format!("p, {}", r.join(", ")));
        if allowed {
            let reason = match &rule {
                Some(r) => format!("allowed by rule '{r}'"),
                None => "allowed".to_string(),
            };
            return Ok(Decision {
                allowed,
                rule,
                reason,
                grant: None,
            });
        }
        Ok(Decision {
            allowed: false,
            rule: None,
            reason: self.denial_reason(who, act, dataset, owner),
            grant: None,
        })
    }

    /// Decides and turns a denial into an error.
    pub async fn require(
        &self,
        who: &Principal,
        act: Action,
        dataset: Option<&Dataset>,
        owner: &str,
    ) -> Result<Decision, PolicyError> {
        let d = self.decide(who, act, dataset, owner).await?;
        if d.allowed {
            Ok(d)
        } else {
            Err(PolicyError::Denied(d.reason))
        }
    }

    /// Explains a denial in terms a user can act on.
    fn denial_reason(
        &self,
        who: &Principal,
        act: Action,
        dataset: Option<&Dataset>,
        owner: &str,
    ) -> String {
        let s = self.state.read();
        let is_system = s.has_role(&who.id, Role::System);
        let roles: Vec<&str> = s.roles_of(&who.id).map(Role::as_str).collect();
        let roles = if roles.is_empty() {
            "no roles".to_string()
        } else {
            format!("roles {}", roles.join(", "))
        };
        match (act, dataset) {
            (Action::Read, Some(d)) => match d.share_type {
                yiwang_catalog::model::ShareType::None => format!(
                    "dataset '{}' is not shared outside {} (share_type none)",
                    d.id, d.dept
                ),
                yiwang_catalog::model::ShareType::Conditional if is_system => format!(
                    "dataset '{}' is conditional: department {} holds no grant for it; request access with POST /v1/access-requests",
                    d.id, who.dept
                ),
                _ => format!(
                    "{} ({roles}) may not read dataset '{}' ({}): only department systems read other departments' data",
                    who.id, d.id, d.share_type
                ),
            },
            (Action::Write | Action::Decide, Some(d)) => format!(
                "{} ({roles}) may not {} for dataset '{}': only stewards of {} may",
                who.id,
                if act == Action::Write {
                    "change the catalog entry"
                } else {
                    "decide access"
                },
                d.id,
                d.dept
            ),
            (Action::Request, Some(d)) => format!(
                "{} ({roles}) may not request access to dataset '{}' ({})",
                who.id, d.id, d.share_type
            ),
            (Action::Audit, _) => format!(
                "{} ({roles}) may not read the audit trail of {owner}: auditors only",
                who.id
            ),
            (Action::Manage, _) => format!("{} ({roles}) is not an admin", who.id),
            (_, None) => format!("{} ({roles}) may not {} in {owner}", who.id, act.as_str()),
        }
    }
}
