//! The `yiwang` binary's library: the mTLS gateway, the HTTP API, the audit trail, the
//! node configuration, the demo and the CLI.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod audit;
pub mod backup;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod indexer;
pub mod metrics;
pub mod node;
pub mod pki;
pub mod query;
pub mod serve;
pub mod server;
pub mod telemetry;
pub mod tls;
