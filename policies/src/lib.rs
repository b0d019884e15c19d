//! Access decisions for yiwang: one casbin enforcer, fed from catalog state, decides
//! every request; this crate adds what a boolean cannot say — which rule allowed it,
//! which grant it used, which fields come back masked and which rows are filtered.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod engine;
pub mod masking;
mod read;

pub use engine::{Action, Decision, PolicyEngine, Principal};
pub use read::{Column, ReadPlan};

/// The casbin model (also shipped as `policies/model.conf`).
pub const MODEL: &str = include_str!("../model.conf");
/// The static policy rows (also shipped as `policies/policy.csv`).
pub const POLICY: &str = include_str!("../policy.csv");

/// Why a request was refused, or why it could not be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The principal may not do this; the message names the rule or the missing grant.
    #[error("{0}")]
    Denied(String),
    /// The request itself is wrong (e.g. an unknown field); maps to 400.
    #[error("{0}")]
    Invalid(String),
    /// The enforcer failed (bad model); maps to 500.
    #[error("policy engine error: {0}")]
    Engine(String),
}

impl PolicyError {
    pub fn http_status(&self) -> u16 {
        match self {
            PolicyError::Denied(_) => 403,
            PolicyError::Invalid(_) => 400,
            PolicyError::Engine(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Denied(_) => "forbidden",
            PolicyError::Invalid(_) => "invalid_input",
            PolicyError::Engine(_) => "internal",
        }
    }
}

#[cfg(test)]
mod tests;
