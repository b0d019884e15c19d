//! The casbin enforcer and its upkeep from catalog state.

use std::collections::{BTreeSet, HashMap};

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
///
/// Decisions are made by [`Rule`]s compiled from the same model and policy rows that
/// casbin loads, evaluated directly against the catalog state and an index of grants
/// by (consumer department, dataset): a decision costs a few map lookups, where
/// casbin's uncached `enforce` interprets the matcher and walks the role graph (tens of
/// µs with 100,000 grants; see ops/bench/README.md). The casbin enforcer is kept in step
/// too; in debug builds — every test — each decision is checked against casbin's.
pub struct PolicyEngine {
    enforcer: RwLock<Enforcer>,
    state: SharedState,
    /// Bootstrap admins from the node configuration: admins whatever the catalog says.
    admins: Vec<String>,
    rules: Vec<Rule>,
    /// The grouping rules as the compiled rules read them, changed together with the
    /// enforcer's (under its write lock).
    views: std::sync::RwLock<Views>,
}

#[derive(Default)]
struct Views {
    /// `g`: the roles of each principal (bootstrap admins included).
    roles: HashMap<String, Vec<String>>,
    /// Per (consumer department, dataset): the ids of every grant (revoked and expired
    /// ones too; grants are never deleted) and whether one is unrevoked (`g2`).
    pairs: HashMap<(String, String), Pair>,
}

#[derive(Default)]
struct Pair {
    ids: Vec<String>,
    live: bool,
}

/// One `p` row of policy.csv, compiled: the model's matcher is
/// `(p.role == "member" || g(r.sub, p.role)) && r.act == p.act
///  && (p.share == "*" || p.share == r.share)
///  && (p.scope == "any" || (p.scope == "own" && r.dept == r.owner)
///      || (p.scope == "grant" && g2(r.dept, r.obj)))`.
#[derive(Debug, Clone)]
struct Rule {
    role: String,
    act: String,
    share: String,
    scope: Scope,
    /// `p, role, act, share, scope`, as explanations quote it.
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Any,
    Own,
    Grant,
}

fn compile(rows: &[Vec<String>]) -> Result<Vec<Rule>, PolicyError> {
    rows.iter()
        .map(|r| {
            let [role, act, share, scope] = &r[..] else {
                return Err(engine_err(format!(
                    "policy row {r:?} does not have 4 fields"
                )));
            };
            Ok(Rule {
                role: role.clone(),
                act: act.clone(),
                share: share.clone(),
                scope: match scope.as_str() {
                    "any" => Scope::Any,
                    "own" => Scope::Own,
                    "grant" => Scope::Grant,
                    other => return Err(engine_err(format!("unknown scope '{other}' in {r:?}"))),
                },
                text: format!("p, {}", r.join(", ")),
            })
        })
        .collect()
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
        let rows = static_rows();
        let rules = compile(&rows)?;
        enforcer.add_policies(rows).await.map_err(engine_err)?;
        let engine = PolicyEngine {
            enforcer: RwLock::new(enforcer),
            state,
            admins,
            rules,
            views: Default::default(),
        };
        engine.reload().await?;
        Ok(engine)
    }

    /// Replaces all grouping rules with those of the current state.
    pub async fn reload(&self) -> Result<(), PolicyError> {
        let (mut roles, grants, pairs) = {
            let s = self.state.read();
            let mut pairs: HashMap<(String, String), Pair> = HashMap::new();
            for g in s.grants.values() {
                let p = pairs
                    .entry((g.consumer_dept.clone(), g.dataset.clone()))
                    .or_default();
                p.ids.push(g.id.clone());
                p.live |= g.revoked_at.is_none();
            }
            (role_rows(&s), grant_rows(&s), pairs)
        };
        for a in &self.admins {
            let row = vec![a.clone(), Role::Admin.as_str().to_string()];
            if !roles.contains(&row) {
                roles.push(row);
            }
        }
        let mut e = self.enforcer.write().await;
        let mut role_view: HashMap<String, Vec<String>> = HashMap::new();
        for r in &roles {
            role_view
                .entry(r[0].clone())
                .or_default()
                .push(r[1].clone());
        }
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
        // The views change after casbin has, so that they never say more than it does.
        let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
        views.roles = role_view;
        views.pairs = pairs;
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
                    let names: Vec<String> = want.iter().map(|r| r[1].clone()).collect();
                    e.remove_filtered_named_grouping_policy("g", 0, vec![principal.clone()])
                        .await
                        .map_err(engine_err)?;
                    if !want.is_empty() {
                        e.add_named_grouping_policies("g", want)
                            .await
                            .map_err(engine_err)?;
                    }
                    // The views change after casbin has, so that they never say more
                    // than casbin does.
                    self.views
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .roles
                        .insert(principal.clone(), names);
                }
                Change::Grant(id) => {
                    let Some((dept, dataset)) = self
                        .state
                        .read()
                        .grants
                        .get(id)
                        .map(|g| (g.consumer_dept.clone(), g.dataset.clone()))
                    else {
                        continue;
                    };
                    let mut e = self.enforcer.write().await;
                    let key = (dept.clone(), dataset.clone());
                    let mut ids = self
                        .views
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .pairs
                        .get(&key)
                        .map(|p| p.ids.clone())
                        .unwrap_or_default();
                    if !ids.contains(id) {
                        ids.push(id.clone());
                    }
                    let live = {
                        let s = self.state.read();
                        ids.iter()
                            .any(|g| s.grants.get(g).is_some_and(|g| g.revoked_at.is_none()))
                    };
                    let row = vec![dept, dataset];
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
                    self.views
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .pairs
                        .insert(key, Pair { ids, live });
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
    #[tracing::instrument(
        name = "policy.decide",
        level = "debug",
        skip_all,
        fields(principal = %who.id, action = ?act, dataset = dataset.map(|d| d.id.as_str()))
    )]
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
        // In debug builds the enforcer's lock is held across both decisions, so that
        // they see the same rules.
        #[cfg(debug_assertions)]
        let enforcer = self.enforcer.read().await;
        let rule = self.matching_rule(who, act.as_str(), obj, owner, share);
        #[cfg(debug_assertions)]
        {
            let (allowed, rows) = enforcer
                .enforce_ex((
                    who.id.as_str(),
                    who.dept.as_str(),
                    act.as_str(),
                    obj,
                    owner,
                    share,
                ))
                .map_err(engine_err)?;
            drop(enforcer);
            let casbin_rule = rows.first().map(|r| format!("p, {}", r.join(", ")));
            assert_eq!(
                (allowed, casbin_rule.as_deref()),
                (rule.is_some(), rule.as_ref().map(|r| r.text.as_str())),
                "compiled rules and casbin disagree on {who:?} {} {obj} (owner {owner}, share {share})",
                act.as_str()
            );
        }
        let allowed = rule.is_some();
        let rule = rule.map(|r| r.text.clone());
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

    /// The first policy row whose matcher holds, as casbin evaluates the model.
    fn matching_rule(
        &self,
        who: &Principal,
        act: &str,
        obj: &str,
        owner: &str,
        share: &str,
    ) -> Option<&Rule> {
        let views = self.views.read().unwrap_or_else(|e| e.into_inner());
        let roles = views.roles.get(&who.id);
        let has_role = |role: &str| roles.is_some_and(|rs| rs.iter().any(|r| r == role));
        self.rules.iter().find(|r| {
            r.act == act
                && (r.share == "*" || r.share == share)
                && (r.role == "member" || has_role(&r.role))
                && match r.scope {
                    Scope::Any => true,
                    Scope::Own => who.dept == owner,
                    Scope::Grant => views
                        .pairs
                        .get(&(who.dept.clone(), obj.to_string()))
                        .is_some_and(|p| p.live),
                }
        })
    }

    /// Ids of the grants (any state) of `dept` on `dataset`.
    pub(crate) fn grant_ids(&self, dept: &str, dataset: &str) -> Vec<String> {
        self.views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .pairs
            .get(&(dept.to_string(), dataset.to_string()))
            .map(|p| p.ids.clone())
            .unwrap_or_default()
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
