//! The node configuration (`node.toml`), one struct with documented defaults.
//!
//! Relative paths are resolved against the directory holding the config file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use yiwang_adapters::SourceConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's Raft id; unique in the cluster, never reused.
    pub node_id: u64,
    /// Address of the HTTPS API (and Raft RPC) listener.
    pub listen: SocketAddr,
    /// Address other nodes and clients use to reach `listen` (`host:port`); defaults to
    /// `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Plain-HTTP admin listener: /healthz, /readyz, /metrics. Keep it on loopback or a
    /// management network.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// Where the node keeps its Raft log, state, search index and audit trail.
    pub data_dir: PathBuf,
    /// SPIFFE trust domain of certificates accepted by this node.
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Initialise a one-node cluster on first start (the demo, or the first node of a
    /// new cluster). Other nodes join with `yiwang cluster add-learner`.
    #[serde(default)]
    pub bootstrap: bool,
    /// Principals (SPIFFE IDs) that are admins whatever the catalog says: the bootstrap
    /// admins who initialise a cluster and bind the first roles. Keep this list short.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Demo only: seed the demo catalog once this node leads, binding the roles listed
    /// in this `principals.json`.
    #[serde(default)]
    pub demo_seed: Option<PathBuf>,
    pub tls: TlsConfig,
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Limits of cross-department queries.
    #[serde(default)]
    pub query: crate::query::QueryLimits,
    /// Logs and OpenTelemetry traces.
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// Department data sources by id; credentials live here (or in files named here),
    /// never in the catalog.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Folder relative source paths resolve against (the config file's folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Start not ready: the process that starts the node has start-up work to do first
    /// (`yiwang demo` seeding its catalog) and clears `Node::starting` when done.
    #[serde(skip)]
    pub start_not_ready: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate(s) that client and peer certificates must chain to.
    pub ca: PathBuf,
    /// This node's certificate (SPIFFE ID `spiffe://<trust-domain>/node/<node_id>`).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Certificate revocation lists (PEM; `yiwang cert revoke` writes the CA's as
    /// `ca.crl.pem`). Client and peer certificates listed there are refused.
    #[serde(default)]
    pub crl: Option<PathBuf>,
    /// Check the TLS files this often (seconds) and reload them when one changed; 0:
    /// only on SIGHUP. A reload applies to new connections; a set of files that does not
    /// work is refused and the one in use stays.
    #[serde(default = "default_tls_reload_s")]
    pub reload_interval_s: u64,
}

fn default_tls_reload_s() -> u64 {
    30
}

impl TlsConfig {
    pub fn files(&self) -> crate::tls::TlsFiles {
        crate::tls::TlsFiles {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            crl: self.crl.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot (and compact the log) after this many entries.
    pub snapshot_logs: u64,
    /// Entries kept in the log after a snapshot, for followers that lag a little.
    pub keep_logs: u64,
    /// Local address for connections to other nodes (default: chosen by the OS).
    pub bind_ip: Option<std::net::IpAddr>,
    /// Most entries in one AppendEntries message. openraft gives each message one
    /// heartbeat interval to arrive, so a message must stay small: with bulk entries of
    /// `limits.bulk_batch` datasets, 16 entries are about 1 MB.
    pub max_payload_entries: u64,
    /// How long one snapshot message may take to arrive and be installed (the last
    /// message installs the whole catalog on the receiver before it answers).
    pub snapshot_timeout_ms: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat_ms: 250,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_logs: 10_000,
            keep_logs: 1_000,
            bind_ip: None,
            max_payload_entries: 16,
            snapshot_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body for ordinary requests (bytes).
    pub max_body_bytes: usize,
    /// Largest NDJSON body for bulk imports (bytes).
    pub max_bulk_bytes: usize,
    /// Rows a records request returns when it gives no `limit`.
    pub default_rows: usize,
    /// Most rows one records request may return.
    pub max_rows: usize,
    /// Datasets per Raft entry in bulk imports.
    pub bulk_batch: usize,
    /// Requests a second one principal may make to this node (token bucket refill);
    /// 0 = no limit. Over the limit: 429 `rate_limited` with `Retry-After`.
    pub principal_rps: f64,
    /// Requests a principal may make at once before `principal_rps` applies.
    pub principal_burst: u32,
    /// Requests a second all principals of one department together may make to this
    /// node; 0 = no limit.
    pub dept_rps: f64,
    /// Burst of the department limit.
    pub dept_burst: u32,
    /// Requests one principal may have in flight on this node at once (until the whole
    /// response is sent); 0 = no limit. Over it: 429 `concurrency_limited`.
    pub principal_concurrency: u32,
    /// Requests all principals of one department may have in flight at once; 0 = no
    /// limit.
    pub dept_concurrency: u32,
    /// On a stop (SIGTERM), how long requests in flight may take to finish (seconds).
    pub shutdown_grace_s: u64,
    /// How long a client may take to send a request's headers (seconds).
    pub header_read_timeout_s: u64,
    /// How long a client may take to send a request's body (seconds); slower: 408
    /// `body_timeout` (slow-client protection).
    pub body_timeout_s: u64,
    /// How long a request may take until its answer starts (seconds); longer: 503
    /// `request_timeout`. Streaming the answer is not counted; queries have their own
    /// `query.timeout_ms`.
    pub request_timeout_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_bulk_bytes: 64 << 20,
            default_rows: 100,
            max_rows: 10_000,
            bulk_batch: 100,
            principal_rps: 0.0,
            principal_burst: 100,
            dept_rps: 0.0,
            dept_burst: 500,
            principal_concurrency: 0,
            dept_concurrency: 0,
            shutdown_grace_s: 30,
            header_read_timeout_s: 30,
            body_timeout_s: 30,
            request_timeout_s: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Publish this node's audit chain head through Raft this often (seconds) while it
    /// has new records.
    pub anchor_interval_s: u64,
    /// Folder of the audit trail (the node's segments are in `node-<id>/` inside it);
    /// default `<data_dir>/audit`. Put it on its own disk to keep a full data disk from
    /// stopping reads, and the reverse.
    pub dir: Option<PathBuf>,
    /// Seal a segment and start the next once it reaches this size (KiB).
    pub segment_kb: u64,
    /// Delete sealed segments whose records are all older than this: a number with a
    /// unit, `s`, `m`, `h` or `d` (`"400d"`); `"0"` keeps everything.
    pub retention: String,
    /// `group` (group commit, the default), `each` (one fsync per record) or `none`
    /// (no fsync: benchmarks only, records can be lost in a power failure).
    pub sync: crate::audit::SyncMode,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            anchor_interval_s: 1,
            dir: None,
            segment_kb: 65536,
            retention: "0".into(),
            sync: crate::audit::SyncMode::Group,
        }
    }
}

impl NodeConfig {
    /// `audit.retention` as a duration; `None` keeps everything.
    pub fn audit_retention(&self) -> Result<Option<std::time::Duration>> {
        let r = self.audit.retention.trim();
        if r == "0" || r.is_empty() {
            return Ok(None);
        }
        let units = [("s", 1u64), ("m", 60), ("h", 3600), ("d", 86400)];
        let Some((n, secs)) = units
            .iter()
            .find_map(|(u, secs)| r.strip_suffix(u).map(|n| (n, *secs)))
        else {
            bail!("audit.retention: '{r}' needs a unit: s, m, h or d (e.g. \"400d\")");
        };
        let total = n
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .and_then(|n| n.checked_mul(secs))
            // A century: anything longer is a typo, and would overflow time arithmetic.
            .filter(|t| *t <= 100 * 366 * 86400)
            .with_context(|| {
                format!(
                    "audit.retention: '{r}' is not a whole number of at most 100 years with a unit"
                )
            })?;
        Ok(Some(std::time::Duration::from_secs(total)))
    }

    /// The audit folder: `audit.dir`, or `<data_dir>/audit`.
    pub fn audit_dir(&self) -> PathBuf {
        self.audit
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit"))
    }
}

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "YIWANG__";

/// Sets `YIWANG__LIMITS__PRINCIPAL_RPS=50` as `limits.principal_rps = 50`: the name after
/// the prefix is the key path, `__` between tables, lower-cased. The value is read as a
/// TOML value (`50`, `true`, `"text"`, `["a", "b"]`) and, if it is not one, as a string;
/// quote a string that looks like a number.
pub fn apply_overrides(table: &mut toml::Table, vars: &[(String, String)]) -> Result<()> {
    for (name, raw) in vars {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_lowercase)
            .collect();
        if path.iter().any(|p| p.is_empty()) {
            bail!(
                "{name}: not a key path (use YIWANG__<TABLE>__<KEY>, e.g. YIWANG__LIMITS__PRINCIPAL_RPS)"
            );
        }
        let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            Ok(mut t) => t
                .remove("v")
                .unwrap_or_else(|| toml::Value::String(raw.clone())),
            Err(_) => toml::Value::String(raw.clone()),
        };
        let (key, tables) = path.split_last().expect("split yields one part at least");
        let mut at = &mut *table;
        for (i, part) in tables.iter().enumerate() {
            let entry = at
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = entry
                .as_table_mut()
                .with_context(|| format!("{name}: '{}' is not a table", path[..=i].join(".")))?;
        }
        at.insert(key.clone(), value);
    }
    Ok(())
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

fn default_trust_domain() -> String {
    yiwang_catalog::identity::DEFAULT_TRUST_DOMAIN.to_string()
}

impl NodeConfig {
    /// Reads and checks a config file, resolving relative paths against its folder.
    /// Environment variables `YIWANG__<TABLE>__<KEY>=<value>` override the file's
    /// keys (see [`apply_overrides`]).
    pub fn load(path: &Path) -> Result<NodeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let overrides: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let mut cfg: NodeConfig = if overrides.is_empty() {
            // Straight from the text: errors point at a line and column.
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?
        } else {
            let mut table: toml::Table = toml::from_str(&text)
                .with_context(|| format!("invalid config {}", path.display()))?;
            apply_overrides(&mut table, &overrides)?;
            let names: Vec<&str> = overrides.iter().map(|(k, _)| k.as_str()).collect();
            toml::Value::Table(table).try_into().with_context(|| {
                format!(
                    "invalid config {} with the environment overrides {}",
                    path.display(),
                    names.join(", ")
                )
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve(base);
        cfg.check()?;
        Ok(cfg)
    }

    /// Makes relative paths absolute against `base`.
    pub fn resolve(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.data_dir);
        abs(&mut self.tls.ca);
        abs(&mut self.tls.cert);
        abs(&mut self.tls.key);
        if let Some(p) = self.tls.crl.as_mut() {
            abs(p);
        }
        if let Some(p) = self.demo_seed.as_mut() {
            abs(p);
        }
        if let Some(p) = self.audit.dir.as_mut() {
            abs(p);
        }
        self.base_dir = base.to_path_buf();
    }

    pub fn check(&self) -> Result<()> {
        let r = &self.raft;
        if r.election_timeout_min_ms <= r.heartbeat_ms
            || r.election_timeout_max_ms <= r.election_timeout_min_ms
        {
            bail!("raft: need heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms");
        }
        if self.limits.max_rows == 0
            || self.limits.default_rows == 0
            || self.limits.default_rows > self.limits.max_rows
        {
            bail!("limits: need 0 < default_rows <= max_rows");
        }
        if self.limits.max_rows > yiwang_adapters::sqlite::MAX_LIMIT {
            bail!(
                "limits: max_rows may be at most {} (one page of records)",
                yiwang_adapters::sqlite::MAX_LIMIT
            );
        }
        // Source definitions are checked here, before any state is created, so a typo
        // cannot leave a half-initialised node behind.
        yiwang_adapters::Sources::from_config(&self.sources, &self.base_dir)
            .map_err(|e| anyhow::anyhow!("sources: {e}"))?;
        for (i, a) in self.admins.iter().enumerate() {
            if yiwang_catalog::identity::SpiffeId::parse(a)
                .and_then(|id| id.dept().map(|_| ()))
                .is_none()
            {
                bail!("admins[{i}]: '{a}' is not a department principal's SPIFFE ID");
            }
        }
        let q = &self.query;
        if q.max_rows == 0 || q.timeout_ms == 0 || q.memory_mb == 0 || q.max_sql_bytes == 0 {
            bail!("query: max_rows, timeout_ms, memory_mb and max_sql_bytes must all be positive");
        }
        if self.raft.max_payload_entries == 0 {
            bail!("raft: max_payload_entries must be positive");
        }
        if self.audit.segment_kb == 0 {
            bail!("audit.segment_kb must be positive");
        }
        self.audit_retention()?;
        for (key, rps) in [
            ("principal_rps", self.limits.principal_rps),
            ("dept_rps", self.limits.dept_rps),
        ] {
            if !rps.is_finite() || rps < 0.0 {
                bail!(
                    "limits.{key} must be a non-negative number of requests a second (0 = no limit), not {rps}"
                );
            }
        }
        for (key, secs) in [
            ("header_read_timeout_s", self.limits.header_read_timeout_s),
            ("body_timeout_s", self.limits.body_timeout_s),
            ("request_timeout_s", self.limits.request_timeout_s),
        ] {
            if secs == 0 {
                bail!("limits.{key} must be at least 1 (seconds)");
            }
        }
        for (key, burst) in [
            ("principal_burst", self.limits.principal_burst),
            ("dept_burst", self.limits.dept_burst),
        ] {
            if burst == 0 {
                bail!("limits.{key} must be at least 1");
            }
        }
        self.telemetry.check()?;
        if self.limits.bulk_batch == 0 {
            bail!("limits: bulk_batch must be positive");
        }
        Ok(())
    }

    pub fn advertise_addr(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ops/config/node.toml, the documented reference, names every key with a default
    /// and gives it its default value.
    #[test]
    fn the_reference_config_lists_every_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/config/node.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let file: toml::Table = toml::from_str(&text).unwrap();
        let parsed: NodeConfig = toml::from_str(&text).expect("the reference config parses");
        parsed.telemetry.check().unwrap();
        let defaults = [
            (
                "raft",
                toml::Value::try_from(RaftConfig::default()).unwrap(),
            ),
            ("limits", toml::Value::try_from(Limits::default()).unwrap()),
            (
                "audit",
                toml::Value::try_from(AuditConfig::default()).unwrap(),
            ),
            (
                "query",
                toml::Value::try_from(crate::query::QueryLimits::default()).unwrap(),
            ),
            (
                "telemetry",
                toml::Value::try_from(crate::telemetry::TelemetryConfig::default()).unwrap(),
            ),
        ];
        for (table, default) in defaults {
            for (key, value) in default.as_table().unwrap() {
                assert_eq!(
                    file[table].get(key),
                    Some(value),
                    "ops/config/node.toml: {table}.{key} should be {value}"
                );
            }
        }
        assert_eq!(
            file["tls"]["reload_interval_s"].as_integer(),
            Some(default_tls_reload_s() as i64)
        );
        assert_eq!(
            file["admin_listen"].as_str(),
            Some(default_admin_listen().to_string().as_str())
        );
        assert_eq!(
            file["trust_domain"].as_str(),
            Some(default_trust_domain().as_str())
        );
    }

    #[test]
    fn overrides_set_nested_keys_with_typed_values() {
        let mut t: toml::Table = toml::from_str("node_id = 1\n[limits]\nmax_rows = 5\n").unwrap();
        let vars = [
            ("YIWANG__LIMITS__MAX_ROWS", "7"),
            ("YIWANG__TELEMETRY__LOG_FORMAT", "json"),
            ("YIWANG__ADMINS", r#"["spiffe://yiwang.local/dept/X/a"]"#),
            ("YIWANG__TELEMETRY__SERVICE_NAME", r#""2026""#),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        apply_overrides(&mut t, &vars).unwrap();
        assert_eq!(t["limits"]["max_rows"].as_integer(), Some(7));
        assert_eq!(t["telemetry"]["log_format"].as_str(), Some("json"));
        assert_eq!(t["admins"].as_array().unwrap().len(), 1);
        assert_eq!(t["telemetry"]["service_name"].as_str(), Some("2026"));
    }
}
