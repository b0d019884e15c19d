//! Department data sources behind one adapter interface.
//!
//! yiwang never copies department data: each records request and each
//! cross-department query reads the department's own source at request time. A node's
//! configuration lists its sources (`[sources.<id>]`, see [`SourceConfig`]); the
//! catalog names the source id and table of each dataset; [`Sources`] maps ids to live
//! [`Source`]s. Credentials live in the node configuration (or files it names), never
//! in the catalog, and never in an error message or a log line.
//!
//! Source kinds: SQLite ([`sqlite::SqliteSource`], the embedded default), PostgreSQL
//! ([`postgres::PostgresSource`]), MySQL and MariaDB ([`mysql::MysqlSource`]), CSV and
//! Parquet files ([`files::FileSource`]) and paged JSON APIs over HTTPS
//! ([`http_json::HttpJsonSource`]).
//!
//! Every source is a DataFusion table ([`Source::table_provider`]) whose schema is
//! the dataset's fields ([`arrow_schema`]), with projection, filter and limit pushdown
//! where the source can do them exactly. A records request ([`Source::read`]) is
//! structured, not SQL: columns, a filter as a parsed
//! [`yiwang_catalog::filter::Expr`], a limit and an opaque cursor. SQLite answers it
//! with its own keyset paging on rowid; the other kinds run it through their
//! DataFusion table ([`filter_to_expr`]). No text from a request is ever spliced into
//! a query: identifiers come from validated field lists, values are bound parameters.
//!
//! # Why our own providers, not `datafusion-table-providers`
//!
//! The SQL sources share one table provider of our own (`provider.rs`, with the
//! filter translation in `pushdown.rs`) on pure-Rust drivers — rusqlite,
//! tokio-postgres with deadpool-postgres, mysql_async with rustls and ring — instead
//! of the datafusion-table-providers crate. Its PostgreSQL and MySQL providers need
//! native-tls, so OpenSSL headers and a second TLS stack next to rustls, and the
//! project's first command (`cargo run --release -- demo`) must build on a fresh
//! machine with nothing but a Rust toolchain. Owning the provider also lets us decide
//! pushdown per dialect for correctness: a filter is pushed only in a form whose
//! result equals DataFusion's own (binary collations, case-sensitive LIKE, SQLite type
//! affinity, the same casts as the SELECT list), otherwise DataFusion applies it.
//!
//! A `GROUP BY` over one SQL source table is computed by the source when it can be done
//! exactly: [`AggregatePushdown`], a DataFusion optimizer rule the gateway adds to each
//! query's session. A source's `aggregate_pushdown = false` keeps its aggregates in
//! DataFusion.
//!
//! Errors raised while DataFusion executes a scan travel inside
//! `DataFusionError::External`; [`adapter_error`] finds them again, so the gateway can
//! answer "source 'jtj-pg' is unavailable: …" with the right status.
//!
//! [`demo`] creates the SQLite databases of the demo scenario.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod aggregate;
mod arrow;
mod cursor;
pub mod demo;
mod error;
mod exec;
pub mod files;
mod filter;
pub mod http_json;
pub mod mysql;
pub mod postgres;
mod provider;
mod pushdown;
mod records;
mod source;
mod sql;
pub mod sqlite;
mod tls;

pub use aggregate::AggregatePushdown;
pub use arrow::{
    arrow_schema, arrow_type, writable_date, writable_datetime, write_date, write_datetime,
};
pub use error::AdapterError;
pub use exec::rows_read_by_source;
pub use filter::{filter_to_expr, filter_to_expr_typed};
pub use records::adapter_error;
pub use source::{ReadRequest, ReadResult, Source, SourceConfig, Sources};
