//! The adapter interface, the node configuration of sources, and the registry of
//! configured sources.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use yiwang_catalog::filter::Expr;
use yiwang_catalog::model::{Field, FieldType};

use crate::error::AdapterError;
use crate::sqlite::{DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT_MS, SqliteSource};

/// One `[sources.<id>]` entry of the node configuration.
///
/// ```toml
/// [sources.yjj-db]
/// kind = "sqlite"
/// path = "data/yjj.sqlite"   # relative to the configuration file's directory
/// pool_size = 4              # optional, default 4
/// timeout_ms = 5000          # optional, default 5000
/// ```
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// A SQLite database file, opened read-only.
    Sqlite {
        path: PathBuf,
        /// Most connections (and so concurrent queries) to this database; default 4.
        #[serde(default)]
        pool_size: Option<usize>,
        /// Time limit of one query, waiting for a connection included; default 5000.
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
}

/// What to read from one table of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    /// Table name, `[A-Za-z_][A-Za-z0-9_]*` (the dataset's `source.table`).
    pub table: String,
    /// The columns to return, in this order. Their types decide how values are
    /// converted (a boolean field stored as 0/1 comes back as `true`/`false`).
    pub columns: Vec<Field>,
    /// Rows to keep. The caller has checked it against the dataset's fields
    /// ([`yiwang_catalog::filter::validate`]) and added any grant row filter.
    pub filter: Option<Expr>,
    /// Most rows to return, 1 to [`crate::sqlite::MAX_LIMIT`].
    pub limit: usize,
    /// `next_cursor` of the previous page of the same table and filter.
    pub cursor: Option<String>,
}

/// One page of rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadResult {
    /// Column names, in the order requested.
    pub columns: Vec<String>,
    /// Rows, each with one JSON value per column: numbers, strings, booleans, null;
    /// binary values as base64 strings.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Pass this back to read the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A department data source. Implementations are cheap to share (`Arc<dyn Source>`)
/// and their futures own what they need (`'static`), so a caller can spawn them.
pub trait Source: Send + Sync {
    /// The configuration kind, e.g. `"sqlite"`.
    fn kind(&self) -> &'static str;

    /// Reads one page of `req.table`. Filters and column selection are applied by
    /// the source itself, so only the requested rows and columns leave it.
    fn read(&self, req: ReadRequest) -> BoxFuture<'static, Result<ReadResult, AdapterError>>;

    /// The columns of `table` with the types the source declares for them, in table
    /// order; stewards use it to check a dataset's fields against its source.
    fn list_columns(
        &self,
        table: &str,
    ) -> BoxFuture<'static, Result<Vec<(String, FieldType)>, AdapterError>>;
}

/// All sources configured on this node, by id.
#[derive(Clone, Default)]
pub struct Sources {
    by_id: BTreeMap<String, Arc<dyn Source>>,
}

impl Sources {
    /// Builds every configured source. Relative paths resolve against `base_dir` (the
    /// directory of the configuration file). Nothing is opened here: a missing or
    /// unreadable database is reported as [`AdapterError::Unavailable`] when it is
    /// read, so one department's outage does not stop the node from starting.
    pub fn from_config(
        cfg: &BTreeMap<String, SourceConfig>,
        base_dir: &Path,
    ) -> Result<Sources, AdapterError> {
        let mut sources = Sources::default();
        for (id, source_cfg) in cfg {
            if !is_source_id(id) {
                return Err(AdapterError::Config(format!(
                    "source id '{id}' must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '-' or '.'"
                )));
            }
            let source: Arc<dyn Source> = match source_cfg {
                SourceConfig::Sqlite {
                    path,
                    pool_size,
                    timeout_ms,
                } => {
                    let pool_size = pool_size.unwrap_or(DEFAULT_POOL_SIZE);
                    let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
                    if pool_size == 0 || timeout_ms == 0 {
                        return Err(AdapterError::Config(format!(
                            "source '{id}': pool_size and timeout_ms must be at least 1"
                        )));
                    }
                    Arc::new(SqliteSource::new(
                        id.clone(),
                        base_dir.join(path),
                        pool_size,
                        timeout_ms,
                    ))
                }
            };
            sources.insert(id.clone(), source);
        }
        Ok(sources)
    }

    /// Adds or replaces a source; for source kinds built outside the configuration
    /// and for tests.
    pub fn insert(&mut self, id: impl Into<String>, source: Arc<dyn Source>) {
        self.by_id.insert(id.into(), source);
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn Source>> {
        self.by_id.get(id).cloned()
    }

    /// Like [`Sources::get`], with the error to return when the id is not configured.
    pub fn require(&self, id: &str) -> Result<Arc<dyn Source>, AdapterError> {
        self.get(id)
            .ok_or_else(|| AdapterError::UnknownSource(id.to_string()))
    }

    /// Configured source ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.by_id.keys().cloned().collect()
    }
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.by_id.iter().map(|(id, s)| (id, s.kind())))
            .finish()
    }
}

fn is_source_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
