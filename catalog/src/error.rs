//! The one error type of the catalog crate.
//!
//! Errors cross the Raft boundary (a rejected command is a committed entry whose
//! response is an error), so they are serializable. Messages are lowercase, without a
//! trailing period, and name the offending field or object.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CatalogError {
    /// Input that fails validation; `field` is a path such as `fields[2].name`.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// The object does not exist.
    #[error("{what} '{id}' not found")]
    NotFound { what: String, id: String },
    /// The change conflicts with current state (duplicate id, wrong state, stale version).
    #[error("{message}")]
    Conflict { message: String },
}

impl CatalogError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CatalogError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>, id: impl Into<String>) -> Self {
        CatalogError::NotFound {
            what: what.into(),
            id: id.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        CatalogError::Conflict {
            message: message.into(),
        }
    }

    /// HTTP status this error maps to.
    pub fn http_status(&self) -> u16 {
        match self {
            CatalogError::Invalid { .. } => 400,
            CatalogError::NotFound { .. } => 404,
            CatalogError::Conflict { .. } => 409,
        }
    }

    /// Stable snake_case code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            CatalogError::Invalid { .. } => "invalid_input",
            CatalogError::NotFound { .. } => "not_found",
            CatalogError::Conflict { .. } => "conflict",
        }
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
