//! The catalog state and its deterministic transitions.
//!
//! `apply` is a pure function of (state, command): no clock, no randomness, no I/O.
//! It returns the outcome and the keys it changed, so the storage layer can persist
//! exactly those rows and derived views (search, policy) can follow.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::command::{ApplyResult, Command, Outcome};
use crate::error::{CatalogError, Result};
use crate::model::*;
use crate::validate;

/// A row of the catalog that a command changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Change {
    Department(String),
    Dataset(String),
    Roles(String),
    Request(String),
    Grant(String),
    Anchor(u64),
    /// The admin-defined search synonyms.
    Synonyms,
}

/// The whole replicated catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogState {
    pub departments: BTreeMap<String, Department>,
    pub datasets: BTreeMap<String, Dataset>,
    /// Roles by principal (SPIFFE ID).
    pub roles: BTreeMap<String, BTreeSet<Role>>,
    pub requests: BTreeMap<String, AccessRequest>,
    pub grants: BTreeMap<String, Grant>,
    pub anchors: BTreeMap<u64, AuditAnchor>,
    /// Search synonym groups defined by admins (in addition to the built-in ones).
    #[serde(default)]
    pub synonyms: Vec<Vec<String>>,
}

impl CatalogState {
    pub fn roles_of(&self, principal: &str) -> impl Iterator<Item = Role> + '_ {
        self.roles.get(principal).into_iter().flatten().copied()
    }

    pub fn has_role(&self, principal: &str, role: Role) -> bool {
        self.roles.get(principal).is_some_and(|r| r.contains(&role))
    }

    /// Active (unrevoked, unexpired at `now`) grants of a consumer department on a dataset.
    pub fn active_grants<'a>(
        &'a self,
        consumer_dept: &'a str,
        dataset: &'a str,
        now: &'a str,
    ) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants.values().filter(move |g| {
            g.consumer_dept == consumer_dept && g.dataset == dataset && g.is_active_at(now)
        })
    }

    /// Applies one command. On error nothing changed.
    pub fn apply(&mut self, cmd: Command) -> (ApplyResult, Vec<Change>) {
        let mut changes = Vec::new();
        let result = self.apply_inner(cmd, &mut changes);
        if result.is_err() {
            debug_assert!(changes.is_empty(), "a failed command must not change state");
        }
        (result, changes)
    }

    fn apply_inner(&mut self, cmd: Command, changes: &mut Vec<Change>) -> ApplyResult {
        match cmd {
            Command::RegisterDepartments { at, departments } => {
                let results = departments
                    .into_iter()
                    .map(|d| self.register_department(&at, d, changes))
                    .collect();
                Ok(Outcome::Departments { results })
            }
            Command::RegisterDatasets { at, datasets } => {
                let results = datasets
                    .into_iter()
                    .map(|d| self.register_dataset(&at, d, changes))
                    .collect();
                Ok(Outcome::Datasets { results })
            }
            Command::UpdateDataset {
                at,
                dataset,
                expected_version,
            } => self.update_dataset(&at, dataset, expected_version, changes),
            Command::RetireDataset { at, id } => {
                let d = self.active_dataset_mut(&id)?;
                d.status = DatasetStatus::Retired;
                d.updated_at = at;
                d.version += 1;
                let dataset = d.clone();
                changes.push(Change::Dataset(id));
                Ok(Outcome::Dataset { dataset })
            }
            Command::BindRoles { bindings } => {
                for (i, b) in bindings.iter().enumerate() {
                    self.check_binding(i, b)?;
                }
                for b in bindings {
                    if self
                        .roles
                        .entry(b.principal.clone())
                        .or_default()
                        .insert(b.role)
                    {
                        changes.push(Change::Roles(b.principal));
                    }
                }
                Ok(Outcome::Done)
            }
            Command::UnbindRole { binding } => {
                let removed = self
                    .roles
                    .get_mut(&binding.principal)
                    .is_some_and(|r| r.remove(&binding.role));
                if !removed {
                    return Err(CatalogError::not_found(
                        "role binding",
                        format!("{} {}", binding.principal, binding.role),
                    ));
                }
                if self
                    .roles
                    .get(&binding.principal)
                    .is_some_and(|r| r.is_empty())
                {
                    self.roles.remove(&binding.principal);
                }
                changes.push(Change::Roles(binding.principal));
                Ok(Outcome::Done)
            }
            Command::CreateRequest { request } => self.create_request(request, changes),
            Command::ApproveRequest {
                id,
                by,
                at,
                grant_id,
                fields,
                row_filter,
                days,
            } => self.approve(id, by, at, grant_id, fields, row_filter, days, changes),
            Command::RejectRequest { id, by, at, reason } => {
                validate::text_required("reason", &reason)?;
                let r = self.pending_request_mut(&id)?;
                r.state = RequestState::Rejected;
                r.decided_by = Some(by);
                r.decided_at = Some(at);
                r.reason = Some(reason);
                let request = r.clone();
                changes.push(Change::Request(id));
                Ok(Outcome::Request { request })
            }
            Command::WithdrawRequest { id, by, at } => {
                let r = self.pending_request_mut(&id)?;
                r.state = RequestState::Withdrawn;
                r.decided_by = Some(by);
                r.decided_at = Some(at);
                let request = r.clone();
                changes.push(Change::Request(id));
                Ok(Outcome::Request { request })
            }
            Command::RevokeGrant { id, by, at } => {
                let g = self
                    .grants
                    .get_mut(&id)
                    .ok_or_else(|| CatalogError::not_found("grant", &id))?;
                if g.revoked_at.is_some() {
                    return Err(CatalogError::conflict(format!(
                        "grant '{id}' is already revoked"
                    )));
                }
                g.revoked_at = Some(at);
                g.revoked_by = Some(by);
                let grant = g.clone();
                changes.push(Change::Grant(id));
                Ok(Outcome::Grant { grant })
            }
            Command::SetSynonyms { groups } => {
                crate::validate::synonyms(&groups)?;
                self.synonyms = groups;
                changes.push(Change::Synonyms);
                Ok(Outcome::Done)
            }
            Command::PublishAnchor { mut anchor } => {
                let node = anchor.node_id;
                if let Some(prev) = self.anchors.get(&node) {
                    if prev.seq > anchor.seq {
                        return Err(CatalogError::conflict(format!(
                            "anchor of node {node} would move back from {} to {}",
                            prev.seq, anchor.seq
                        )));
                    }
                    // The retained start only moves forward; an anchor without a cut
                    // keeps the one already published.
                    match (&prev.cut, &anchor.cut) {
                        (Some(p), Some(c)) if c.seq < p.seq => {
                            return Err(CatalogError::conflict(format!(
                                "audit retention cut of node {node} would move back from {} to {}",
                                p.seq, c.seq
                            )));
                        }
                        (Some(p), None) => anchor.cut = Some(p.clone()),
                        _ => {}
                    }
                }
                if let Some(c) = &anchor.cut
                    && c.seq > anchor.seq + 1
                {
                    return Err(CatalogError::invalid(
                        "anchor.cut.seq",
                        format!(
                            "audit retention cut of node {node} at seq {} is past its head {}",
                            c.seq, anchor.seq
                        ),
                    ));
                }
                self.anchors.insert(node, anchor);
                changes.push(Change::Anchor(node));
                Ok(Outcome::Done)
            }
        }
    }

    fn register_department(
        &mut self,
        at: &str,
        mut d: Department,
        changes: &mut Vec<Change>,
    ) -> Result<Department> {
        validate::department(&d)?;
        // Department codes and dataset ids share the casbin `g2` namespace: one equal to
        // the other would let casbin link them.
        if self.datasets.contains_key(&d.code) {
            return Err(CatalogError::conflict(format!(
                "'{}' is already a dataset id",
                d.code
            )));
        }
        if self.departments.contains_key(&d.code) {
            return Err(CatalogError::conflict(format!(
                "department '{}' already exists",
                d.code
            )));
        }
        d.created_at = at.to_string();
        self.departments.insert(d.code.clone(), d.clone());
        changes.push(Change::Department(d.code.clone()));
        Ok(d)
    }

    fn check_dept(&self, code: &str) -> Result<()> {
        if !self.departments.contains_key(code) {
            return Err(CatalogError::invalid(
                "dept",
                format!("unknown department '{code}'"),
            ));
        }
        Ok(())
    }

    fn register_dataset(
        &mut self,
        at: &str,
        input: DatasetInput,
        changes: &mut Vec<Change>,
    ) -> Result<Dataset> {
        validate::dataset(&input)?;
        self.check_dept(&input.dept)?;
        if self.departments.contains_key(&input.id) {
            return Err(CatalogError::invalid(
                "id",
                format!("'{}' is a department code, not a dataset id", input.id),
            ));
        }
        if self.datasets.contains_key(&input.id) {
            return Err(CatalogError::conflict(format!(
                "dataset '{}' already exists",
                input.id
            )));
        }
        let d = from_input(input, at, at, 1);
        self.datasets.insert(d.id.clone(), d.clone());
        changes.push(Change::Dataset(d.id.clone()));
        Ok(d)
    }

    fn update_dataset(
        &mut self,
        at: &str,
        input: DatasetInput,
        expected_version: Option<u64>,
        changes: &mut Vec<Change>,
    ) -> ApplyResult {
        validate::dataset(&input)?;
        let current = self.active_dataset_mut(&input.id)?;
        if current.dept != input.dept {
            return Err(CatalogError::invalid(
                "dept",
                format!(
                    "a dataset cannot move to another department (it belongs to '{}')",
                    current.dept
                ),
            ));
        }
        if let Some(v) = expected_version
            && v != current.version
        {
            return Err(CatalogError::conflict(format!(
                "dataset '{}' is at version {}, not {v}",
                current.id, current.version
            )));
        }
        let updated = from_input(input, &current.published_at, at, current.version + 1);
        *current = updated.clone();
        changes.push(Change::Dataset(updated.id.clone()));
        Ok(Outcome::Dataset { dataset: updated })
    }

    fn active_dataset_mut(&mut self, id: &str) -> Result<&mut Dataset> {
        let d = self
            .datasets
            .get_mut(id)
            .ok_or_else(|| CatalogError::not_found("dataset", id))?;
        if d.status == DatasetStatus::Retired {
            return Err(CatalogError::conflict(format!("dataset '{id}' is retired")));
        }
        Ok(d)
    }

    fn check_binding(&self, i: usize, b: &RoleBinding) -> Result<()> {
        let field = format!("bindings[{i}].principal");
        let id = crate::identity::SpiffeId::parse(&b.principal).ok_or_else(|| {
            CatalogError::invalid(
                &field,
                format!("'{}' is not a department principal", b.principal),
            )
        })?;
        let Some(dept) = id.dept() else {
            return Err(CatalogError::invalid(
                &field,
                "roles are bound to department principals, not nodes",
            ));
        };
        if !self.departments.contains_key(dept) {
            return Err(CatalogError::invalid(
                &field,
                format!("unknown department '{dept}'"),
            ));
        }
        Ok(())
    }

    fn create_request(&mut self, mut r: AccessRequest, changes: &mut Vec<Change>) -> ApplyResult {
        validate::purpose(&r.purpose)?;
        validate::days("days", r.days)?;
        if self.requests.contains_key(&r.id) {
            return Err(CatalogError::conflict(format!(
                "access request '{}' already exists",
                r.id
            )));
        }
        let d = self
            .datasets
            .get(&r.dataset)
            .ok_or_else(|| CatalogError::not_found("dataset", &r.dataset))?;
        if d.status == DatasetStatus::Retired {
            return Err(CatalogError::conflict(format!(
                "dataset '{}' is retired",
                d.id
            )));
        }
        if d.share_type == ShareType::None {
            return Err(CatalogError::conflict(format!(
                "dataset '{}' is not shared outside {} (share_type none)",
                d.id, d.dept
            )));
        }
        if d.dept == r.consumer_dept {
            return Err(CatalogError::conflict(format!(
                "dataset '{}' belongs to your own department; no request is needed",
                d.id
            )));
        }
        if r.fields.is_empty() {
            r.fields = d.fields.iter().map(|f| f.name.clone()).collect();
        }
        check_fields("fields", &r.fields, d)?;
        r.provider_dept = d.dept.clone();
        r.state = RequestState::Pending;
        self.requests.insert(r.id.clone(), r.clone());
        changes.push(Change::Request(r.id.clone()));
        Ok(Outcome::Request { request: r })
    }

    #[allow(clippy::too_many_arguments)]
    fn approve(
        &mut self,
        id: String,
        by: String,
        at: String,
        grant_id: String,
        fields: Option<Vec<String>>,
        row_filter: Option<String>,
        days: Option<u32>,
        changes: &mut Vec<Change>,
    ) -> ApplyResult {
        if self.grants.contains_key(&grant_id) {
            return Err(CatalogError::conflict(format!(
                "grant '{grant_id}' already exists"
            )));
        }
        let r = self
            .requests
            .get(&id)
            .ok_or_else(|| CatalogError::not_found("access request", &id))?;
        if r.state != RequestState::Pending {
            return Err(CatalogError::conflict(format!(
                "access request '{id}' is {}, not pending",
                r.state.as_str()
            )));
        }
        let d = self
            .datasets
            .get(&r.dataset)
            .filter(|d| d.status == DatasetStatus::Active)
            .ok_or_else(|| {
                CatalogError::conflict(format!("dataset '{}' is no longer active", r.dataset))
            })?;
        let fields = match fields {
            Some(f) if f.is_empty() => {
                return Err(CatalogError::invalid(
                    "fields",
                    "must name at least one field",
                ));
            }
            Some(f) => {
                for (i, name) in f.iter().enumerate() {
                    if !r.fields.contains(name) {
                        return Err(CatalogError::invalid(
                            format!("fields[{i}]"),
                            format!(
                                "'{name}' was not requested; an approval can only narrow the request"
                            ),
                        ));
                    }
                }
                f
            }
            None => r.fields.clone(),
        };
        check_fields("fields", &fields, d)?;
        if let Some(rf) = &row_filter {
            let expr = crate::filter::parse(rf)
                .map_err(|e| CatalogError::invalid("row_filter", e.to_string()))?;
            crate::filter::validate(&expr, &d.fields).map_err(|e| match e {
                CatalogError::Invalid { message, .. } => {
                    CatalogError::invalid("row_filter", message)
                }
                other => other,
            })?;
        }
        let days = days.unwrap_or(r.days);
        validate::days("days", days)?;

        let grant = Grant {
            id: grant_id.clone(),
            request_id: id.clone(),
            consumer_dept: r.consumer_dept.clone(),
            requested_by: r.consumer.clone(),
            dataset: r.dataset.clone(),
            provider_dept: r.provider_dept.clone(),
            fields,
            row_filter,
            purpose: r.purpose.clone(),
            approved_by: by.clone(),
            created_at: at.clone(),
            expires_at: clock::plus_days(&at, days),
            revoked_at: None,
            revoked_by: None,
        };
        let r = self.requests.get_mut(&id).expect("checked above");
        r.state = RequestState::Approved;
        r.decided_by = Some(by);
        r.decided_at = Some(at);
        r.grant_id = Some(grant_id.clone());
        let request = r.clone();
        self.grants.insert(grant_id.clone(), grant.clone());
        changes.push(Change::Request(id));
        changes.push(Change::Grant(grant_id));
        Ok(Outcome::Approved { request, grant })
    }

    fn pending_request_mut(&mut self, id: &str) -> Result<&mut AccessRequest> {
        let r = self
            .requests
            .get_mut(id)
            .ok_or_else(|| CatalogError::not_found("access request", id))?;
        if r.state != RequestState::Pending {
            return Err(CatalogError::conflict(format!(
                "access request '{id}' is {}, not pending",
                r.state.as_str()
            )));
        }
        Ok(r)
    }
}

fn check_fields(path: &str, fields: &[String], d: &Dataset) -> Result<()> {
    let mut seen = BTreeSet::new();
    for (i, name) in fields.iter().enumerate() {
        if d.field(name).is_none() {
            return Err(CatalogError::invalid(
                format!("{path}[{i}]"),
                format!("dataset '{}' has no field '{name}'", d.id),
            ));
        }
        if !seen.insert(name) {
            return Err(CatalogError::invalid(
                format!("{path}[{i}]"),
                format!("duplicate field '{name}'"),
            ));
        }
    }
    Ok(())
}

fn from_input(i: DatasetInput, published_at: &str, at: &str, version: u64) -> Dataset {
    Dataset {
        id: i.id,
        dept: i.dept,
        title: i.title,
        summary: i.summary,
        keywords: i.keywords,
        theme: i.theme,
        format: i.format,
        share_type: i.share_type,
        share_condition: i.share_condition,
        open_type: i.open_type,
        update_cycle: i.update_cycle,
        fields: i.fields,
        source: i.source,
        published_at: published_at.to_string(),
        updated_at: at.to_string(),
        version,
        status: DatasetStatus::Active,
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
