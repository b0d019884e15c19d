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
use crate::files::{FileFormat, FileSource};
use crate::http_json::{HttpJsonOptions, HttpJsonSource};
use crate::mysql::MysqlSource;
use crate::postgres::PostgresSource;
use crate::sqlite::{DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT_MS, SqliteSource};

/// One `[sources.<id>]` entry of the node configuration. Relative paths resolve
/// against the configuration file's directory. Credentials live here (or in files named
/// here), never in the catalog; `Debug` output hides passwords.
///
/// ```toml
/// [sources.yjj-db]
/// kind = "sqlite"
/// path = "data/yjj.sqlite"
/// pool_size = 4              # optional, default 4
/// timeout_ms = 5000          # optional, default 5000
/// aggregate_pushdown = true  # optional, default true (also for postgres and mysql)
///
/// [sources.jtj-pg]
/// kind = "postgres"
/// url = "postgres://gateway@db.jtj.example:5432/transport"   # no password in the url
/// password_file = "secrets/jtj-pg.password"                  # or: password = "…"
/// schema = "public"          # optional: tables without a schema are looked up here
///
/// [sources.gdgs-my]
/// kind = "mysql"             # MySQL and MariaDB
/// url = "mysql://gateway@db.gdgs.example:3306/power"
/// password_file = "secrets/gdgs-my.password"
///
/// [sources.stats-files]
/// kind = "csv"               # <dir>/<table>.csv
/// dir = "data/stats"
/// delimiter = ","            # optional, default ','
/// has_header = true          # optional, default true
///
/// [sources.open-parquet]
/// kind = "parquet"           # <dir>/<table>.parquet
/// dir = "data/open"
///
/// [sources.scjg-api]
/// kind = "http_json"         # GET <base_url>/<table>?limit=<page_size>, then `next`
/// base_url = "https://api.scjg.example/v1"
/// ca_file = "certs/scjg-ca.pem"
/// cert = "certs/gateway.pem" # optional client certificate (mTLS), with key
/// key = "certs/gateway.key"
/// page_size = 100            # optional, default 100
/// items_field = "items"      # optional, default "items"
/// next_field = "next"        # optional, default "next"
/// ```
#[derive(Deserialize, Serialize, Clone, PartialEq, Eq)]
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
        /// Whether `GROUP BY` and aggregates may run at the source; default true.
        #[serde(default)]
        aggregate_pushdown: Option<bool>,
    },
    /// A PostgreSQL database (read-only sessions; no TLS yet).
    Postgres {
        /// `postgres://user@host:port/db`, without a password.
        url: String,
        #[serde(default)]
        password: Option<String>,
        /// A file whose first line (trimmed) is the password.
        #[serde(default)]
        password_file: Option<PathBuf>,
        /// Most connections; default 4.
        #[serde(default)]
        pool_size: Option<usize>,
        /// Time limit of one query, enforced at the server too; default 5000.
        #[serde(default)]
        timeout_ms: Option<u64>,
        /// Schema of tables named without one; default the server's search path.
        #[serde(default)]
        schema: Option<String>,
        /// Whether `GROUP BY` and aggregates may run at the source; default true.
        #[serde(default)]
        aggregate_pushdown: Option<bool>,
    },
    /// A MySQL or MariaDB database (read-only sessions).
    Mysql {
        /// `mysql://user@host:port/db`, without a password.
        url: String,
        #[serde(default)]
        password: Option<String>,
        /// A file whose first line (trimmed) is the password.
        #[serde(default)]
        password_file: Option<PathBuf>,
        /// Most connections; default 4.
        #[serde(default)]
        pool_size: Option<usize>,
        /// Time limit of one query, enforced at the server too; default 5000.
        #[serde(default)]
        timeout_ms: Option<u64>,
        /// Whether `GROUP BY` and aggregates may run at the source; default true.
        #[serde(default)]
        aggregate_pushdown: Option<bool>,
    },
    /// A directory of CSV files, one per table.
    Csv {
        dir: PathBuf,
        /// One ASCII character; default ','.
        #[serde(default)]
        delimiter: Option<char>,
        /// Whether the first line names the columns; default true.
        #[serde(default)]
        has_header: Option<bool>,
    },
    /// A directory of Parquet files, one per table.
    Parquet { dir: PathBuf },
    /// A paged JSON API over HTTPS.
    HttpJson {
        /// `https://host[:port][/path]`.
        base_url: String,
        /// PEM CA certificate(s) the API's certificate must chain to; required.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// Client certificate and key (PEM) for mutual TLS.
        #[serde(default)]
        cert: Option<PathBuf>,
        #[serde(default)]
        key: Option<PathBuf>,
        /// Rows asked for per page; default 100.
        #[serde(default)]
        page_size: Option<usize>,
        /// Time limit of one page; default 5000.
        #[serde(default)]
        timeout_ms: Option<u64>,
        /// Member of a page holding its rows; default "items".
        #[serde(default)]
        items_field: Option<String>,
        /// Member of a page holding the next page's URL or cursor; default "next".
        #[serde(default)]
        next_field: Option<String>,
    },
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |p: &Option<String>| p.as_ref().map(|_| "<hidden>");
        match self {
            SourceConfig::Sqlite {
                path,
                pool_size,
                timeout_ms,
                aggregate_pushdown,
            } => f
                .debug_struct("Sqlite")
                .field("path", path)
                .field("pool_size", pool_size)
                .field("timeout_ms", timeout_ms)
                .field("aggregate_pushdown", aggregate_pushdown)
                .finish(),
            SourceConfig::Postgres {
                url,
                password,
                password_file,
                pool_size,
                timeout_ms,
                schema,
                aggregate_pushdown,
            } => f
                .debug_struct("Postgres")
                .field("url", url)
                .field("password", &hidden(password))
                .field("password_file", password_file)
                .field("pool_size", pool_size)
                .field("timeout_ms", timeout_ms)
                .field("schema", schema)
                .field("aggregate_pushdown", aggregate_pushdown)
                .finish(),
            SourceConfig::Mysql {
                url,
                password,
                password_file,
                pool_size,
                timeout_ms,
                aggregate_pushdown,
            } => f
                .debug_struct("Mysql")
                .field("url", url)
                .field("password", &hidden(password))
                .field("password_file", password_file)
                .field("pool_size", pool_size)
                .field("timeout_ms", timeout_ms)
                .field("aggregate_pushdown", aggregate_pushdown)
                .finish(),
            SourceConfig::Csv {
                dir,
                delimiter,
                has_header,
            } => f
                .debug_struct("Csv")
                .field("dir", dir)
                .field("delimiter", delimiter)
                .field("has_header", has_header)
                .finish(),
            SourceConfig::Parquet { dir } => f.debug_struct("Parquet").field("dir", dir).finish(),
            SourceConfig::HttpJson {
                base_url,
                ca_file,
                cert,
                key,
                page_size,
                timeout_ms,
                items_field,
                next_field,
            } => f
                .debug_struct("HttpJson")
                .field("base_url", base_url)
                .field("ca_file", ca_file)
                .field("cert", cert)
                .field("key", key)
                .field("page_size", page_size)
                .field("timeout_ms", timeout_ms)
                .field("items_field", items_field)
                .field("next_field", next_field)
                .finish(),
        }
    }
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

    /// `table` as a DataFusion table whose schema is the dataset's `fields` (in catalog
    /// order, typed by [`crate::arrow_type`]), with projection, filter and limit pushdown
    /// where the source can do them. Building it does not contact the source (SQLite
    /// and files read their local column declarations); a source that is down fails
    /// the scan with [`AdapterError::Unavailable`] inside DataFusion's error (see
    /// [`crate::adapter_error`]).
    fn table_provider(
        &self,
        table: &str,
        fields: &[Field],
    ) -> Result<std::sync::Arc<dyn datafusion::catalog::TableProvider>, AdapterError> {
        let _ = fields;
        Err(AdapterError::InvalidRequest(format!(
            "source kind '{}' cannot serve '{table}' to queries yet",
            self.kind()
        )))
    }
}

/// All sources configured on this node, by id.
#[derive(Clone, Default)]
pub struct Sources {
    by_id: BTreeMap<String, Arc<dyn Source>>,
}

impl Sources {
    /// Builds every configured source. Relative paths resolve against `base_dir` (the
    /// directory of the configuration file). No source is contacted here: a missing
    /// database file, a server that is down or a wrong password is reported as
    /// [`AdapterError::Unavailable`] when the source is read, so one department's
    /// outage does not stop the node from starting. Only the node's own files are
    /// read now (password files, an API's CA and client certificate): a mistake there
    /// is [`AdapterError::Config`].
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
            let source = build(id, source_cfg, base_dir)?;
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

/// Rows per page of an HTTP-JSON source when the configuration does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;

fn build(id: &str, cfg: &SourceConfig, base_dir: &Path) -> Result<Arc<dyn Source>, AdapterError> {
    let config_error = |what: &str| AdapterError::Config(format!("source '{id}': {what}"));
    let limits = |pool_size: &Option<usize>, timeout_ms: &Option<u64>| {
        let pool_size = pool_size.unwrap_or(DEFAULT_POOL_SIZE);
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if pool_size == 0 || timeout_ms == 0 {
            return Err(config_error("pool_size and timeout_ms must be at least 1"));
        }
        Ok((pool_size, timeout_ms))
    };
    Ok(match cfg {
        SourceConfig::Sqlite {
            path,
            pool_size,
            timeout_ms,
            aggregate_pushdown,
        } => {
            let (pool_size, timeout_ms) = limits(pool_size, timeout_ms)?;
            Arc::new(
                SqliteSource::new(id, base_dir.join(path), pool_size, timeout_ms)
                    .with_aggregate_pushdown(aggregate_pushdown.unwrap_or(true)),
            )
        }
        SourceConfig::Postgres {
            url,
            password,
            password_file,
            pool_size,
            timeout_ms,
            schema,
            aggregate_pushdown,
        } => {
            let (pool_size, timeout_ms) = limits(pool_size, timeout_ms)?;
            let password = read_password(id, password, password_file, base_dir)?;
            Arc::new(
                PostgresSource::new(id, url, password, pool_size, timeout_ms, schema.clone())?
                    .with_aggregate_pushdown(aggregate_pushdown.unwrap_or(true)),
            )
        }
        SourceConfig::Mysql {
            url,
            password,
            password_file,
            pool_size,
            timeout_ms,
            aggregate_pushdown,
        } => {
            let (pool_size, timeout_ms) = limits(pool_size, timeout_ms)?;
            let password = read_password(id, password, password_file, base_dir)?;
            Arc::new(
                MysqlSource::new(id, url, password, pool_size, timeout_ms)?
                    .with_aggregate_pushdown(aggregate_pushdown.unwrap_or(true)),
            )
        }
        SourceConfig::Csv {
            dir,
            delimiter,
            has_header,
        } => {
            let delimiter = delimiter.unwrap_or(',');
            let delimiter = u8::try_from(delimiter)
                .ok()
                .filter(u8::is_ascii)
                .ok_or_else(|| config_error("delimiter must be one ASCII character"))?;
            Arc::new(FileSource::new(
                id,
                base_dir.join(dir),
                FileFormat::Csv {
                    delimiter,
                    has_header: has_header.unwrap_or(true),
                },
            ))
        }
        SourceConfig::Parquet { dir } => {
            Arc::new(FileSource::new(id, base_dir.join(dir), FileFormat::Parquet))
        }
        SourceConfig::HttpJson {
            base_url,
            ca_file,
            cert,
            key,
            page_size,
            timeout_ms,
            items_field,
            next_field,
        } => Arc::new(HttpJsonSource::new(
            id,
            HttpJsonOptions {
                base_url: base_url.clone(),
                ca_file: ca_file.as_ref().map(|p| base_dir.join(p)),
                cert: cert.as_ref().map(|p| base_dir.join(p)),
                key: key.as_ref().map(|p| base_dir.join(p)),
                page_size: page_size.unwrap_or(DEFAULT_PAGE_SIZE),
                timeout_ms: timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
                items_field: items_field.clone().unwrap_or_else(|| "items".to_string()),
                next_field: next_field.clone().unwrap_or_else(|| "next".to_string()),
            },
        )?),
    })
}

/// The password given inline or as the first line (trimmed) of `password_file`.
/// Messages name the file, never its content.
fn read_password(
    id: &str,
    password: &Option<String>,
    password_file: &Option<PathBuf>,
    base_dir: &Path,
) -> Result<Option<String>, AdapterError> {
    match (password, password_file) {
        (Some(_), Some(_)) => Err(AdapterError::Config(format!(
            "source '{id}': give password or password_file, not both"
        ))),
        (Some(p), None) => Ok(Some(p.clone())),
        (None, Some(file)) => {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                AdapterError::Config(format!(
                    "source '{id}': cannot read password_file {}: {}",
                    path.display(),
                    e.kind()
                ))
            })?;
            Ok(Some(
                text.lines().next().unwrap_or_default().trim().to_string(),
            ))
        }
        (None, None) => Ok(None),
    }
}

fn is_source_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests;
