//! Commands: the only way the catalog changes. Each is proposed through Raft and
//! applied by [`crate::state::CatalogState::apply`] on every node.
//!
//! A command carries everything `apply` needs that is not already state: the time it
//! was issued, the acting principal and any generated ids. That keeps `apply`
//! deterministic, so every replica reaches the same state.

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;
use crate::model::{
    AccessRequest, AuditAnchor, Dataset, DatasetInput, Department, Grant, RoleBinding,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Registers departments; each item succeeds or fails on its own.
    RegisterDepartments {
        at: String,
        departments: Vec<Department>,
    },
    /// Registers datasets; each item succeeds or fails on its own.
    RegisterDatasets {
        at: String,
        datasets: Vec<DatasetInput>,
    },
    /// Replaces a dataset's description; the department cannot change.
    UpdateDataset {
        at: String,
        dataset: DatasetInput,
        /// Optimistic concurrency: fail with a conflict unless the stored version matches.
        expected_version: Option<u64>,
    },
    /// Retires a dataset: it stays in the catalog (for audit) but is no longer served.
    RetireDataset {
        at: String,
        id: String,
    },
    BindRoles {
        bindings: Vec<RoleBinding>,
    },
    UnbindRole {
        binding: RoleBinding,
    },
    CreateRequest {
        request: AccessRequest,
    },
    ApproveRequest {
        id: String,
        by: String,
        at: String,
        grant_id: String,
        /// Narrows the requested fields; `None` grants all requested fields.
        fields: Option<Vec<String>>,
        /// Row filter (record filter language), normalised by the proposer.
        row_filter: Option<String>,
        /// Overrides the requested duration.
        days: Option<u32>,
    },
    RejectRequest {
        id: String,
        by: String,
        at: String,
        reason: String,
    },
    WithdrawRequest {
        id: String,
        by: String,
        at: String,
    },
    RevokeGrant {
        id: String,
        by: String,
        at: String,
    },
    PublishAnchor {
        anchor: AuditAnchor,
    },
    /// Replaces the admin-defined search synonym groups (the built-in ones stay).
    SetSynonyms {
        groups: Vec<Vec<String>>,
    },
}

/// What an applied command produced.
// One outcome exists per applied command and is moved, never stored in bulk: boxing
// the larger variants would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Departments {
        results: Vec<Result<Department, CatalogError>>,
    },
    Datasets {
        results: Vec<Result<Dataset, CatalogError>>,
    },
    Dataset {
        dataset: Dataset,
    },
    Request {
        request: AccessRequest,
    },
    Approved {
        request: AccessRequest,
        grant: Grant,
    },
    Grant {
        grant: Grant,
    },
    Done,
}

/// The response of one Raft entry.
pub type ApplyResult = Result<Outcome, CatalogError>;
