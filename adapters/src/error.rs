//! The one error type of the adapters crate.

/// Why reading from a department source failed. Messages are lowercase, without a
/// trailing period; they may reach API clients, so they name the source id but never a
/// file path or connection string (those are logged instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The catalog names a source id that this node has not configured.
    #[error("source '{0}' is not configured on this node")]
    UnknownSource(String),
    /// The source cannot be reached right now: database file missing, unreadable,
    /// not a database, or locked for longer than the busy timeout.
    #[error("source '{source_id}' is unavailable: {message}")]
    Unavailable { source_id: String, message: String },
    /// The query ran past the source's time limit and was interrupted.
    #[error("source '{source_id}' did not answer within {ms} ms")]
    Timeout { source_id: String, ms: u64 },
    /// The paging cursor was not issued for this query, or was altered.
    #[error("bad cursor: {0}")]
    BadCursor(String),
    /// The request cannot be run as asked (bad table or column name, bad limit).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The source has no such table (asked for by name, e.g. to import its columns).
    #[error("source '{source_id}' has no table '{table}'")]
    NoSuchTable { source_id: String, table: String },
    /// The source answered with an error (missing table or column, SQL error).
    #[error("source '{source_id}' failed: {message}")]
    Source { source_id: String, message: String },
    /// The node configuration of the sources is invalid; raised at startup only.
    #[error("invalid source configuration: {0}")]
    Config(String),
}

impl AdapterError {
    /// HTTP status this error maps to.
    ///
    /// - `UnknownSource` → 503: the dataset exists in the catalog, but this node has
    ///   no source configured for it. It is a deployment problem, not the client's,
    ///   and another node may serve it; 404 would wrongly say the dataset is missing.
    /// - `Unavailable` → 503, `Timeout` → 504, `Source` → 502: the department source
    ///   is the upstream of the gateway.
    /// - `BadCursor`, `InvalidRequest` → 400; `NoSuchTable` → 404.
    /// - `Config` → 500 (never expected on a request path).
    pub fn http_status(&self) -> u16 {
        match self {
            AdapterError::UnknownSource(_) | AdapterError::Unavailable { .. } => 503,
            AdapterError::Timeout { .. } => 504,
            AdapterError::BadCursor(_) | AdapterError::InvalidRequest(_) => 400,
            AdapterError::NoSuchTable { .. } => 404,
            AdapterError::Source { .. } => 502,
            AdapterError::Config(_) => 500,
        }
    }

    /// Stable snake_case code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            AdapterError::UnknownSource(_) => "unknown_source",
            AdapterError::Unavailable { .. } => "source_unavailable",
            AdapterError::Timeout { .. } => "source_timeout",
            AdapterError::BadCursor(_) => "bad_cursor",
            AdapterError::InvalidRequest(_) => "invalid_request",
            AdapterError::NoSuchTable { .. } => "no_such_table",
            AdapterError::Source { .. } => "source_error",
            AdapterError::Config(_) => "invalid_config",
        }
    }
}
