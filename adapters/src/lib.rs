//! Department data sources behind one adapter interface.
//!
//! yiwang never copies department data: each records request is answered by reading
//! the department's own source at request time. A node's configuration lists its
//! sources (`[sources.<id>]`, see [`SourceConfig`]); the catalog names the source id
//! and table of each dataset; [`Sources`] maps ids to live [`Source`]s.
//!
//! A read is structured, not SQL: the columns to return, a filter as a parsed
//! [`yiwang_catalog::filter::Expr`], a limit and an opaque cursor. Each source kind
//! translates that into its own query language with bound parameters, so no text from
//! a request is ever spliced into a query. SQLite ([`sqlite::SqliteSource`]) is the
//! embedded default; further kinds (PostgreSQL, MySQL, CSV/Parquet files, HTTP APIs)
//! are added as new [`SourceConfig`] variants implementing the same trait.
//!
//! [`demo`] creates the SQLite databases of the demo scenario.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod cursor;
pub mod demo;
mod error;
mod source;
mod sql;
pub mod sqlite;

pub use error::AdapterError;
pub use source::{ReadRequest, ReadResult, Source, SourceConfig, Sources};
