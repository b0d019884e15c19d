//! The yiwang catalog: domain model, commands, the deterministic state machine,
//! validation, the record filter language, the tantivy search index, and the CKAN and
//! DCAT-AP mappings of the catalog.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod ckan;
pub mod clock;
pub mod command;
pub mod dcat;
pub mod demo;
pub mod error;
pub mod filter;
pub mod identity;
pub mod model;
pub mod search;
pub mod state;
pub mod store;
pub mod validate;

pub use command::{ApplyResult, Command, Outcome};
pub use error::{CatalogError, Result};
pub use state::{CatalogState, Change};
pub use store::{CatalogHandles, CatalogStore, SharedState, ViewEvent};
