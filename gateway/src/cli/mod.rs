//! The `yiwang` command line. Exit codes: 0 ok, 1 error (message on stderr), 2 usage.

mod client;
mod commands;

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use client::{Client, ClientError};

#[derive(Parser, Debug)]
#[command(
    name = "yiwang",
    version,
    about = "yiwang (一网): one data-exchange network for a city's departments",
    long_about = "yiwang (一网): departments register datasets in one Raft-replicated catalog and read \
each other's data through one mutual-TLS gateway, under casbin policies, with a tamper-evident audit trail.\n\n\
Start with `yiwang demo`; client commands talk to a node with --server/--cert/--key/--ca \
(or YIWANG_SERVER, YIWANG_CERT, YIWANG_KEY, YIWANG_CA)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where and as whom client commands connect.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Node URL, e.g. https://127.0.0.1:8443
    #[arg(long, env = "YIWANG_SERVER", default_value = "https://127.0.0.1:8443")]
    pub server: String,
    /// Client certificate (PEM) carrying your SPIFFE ID
    #[arg(long, env = "YIWANG_CERT")]
    pub cert: Option<PathBuf>,
    /// Private key of the client certificate (PEM)
    #[arg(long, env = "YIWANG_KEY")]
    pub key: Option<PathBuf>,
    /// CA certificate that signed the node's certificate (PEM)
    #[arg(long, env = "YIWANG_CA")]
    pub ca: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the embedded demo: a one-node cluster with a city's catalog and the Nantong scenario
    Demo {
        /// Directory for certificates, data and config (reused when it exists)
        #[arg(long, default_value = "./yiwang-demo")]
        dir: PathBuf,
        /// HTTPS API port on 127.0.0.1
        #[arg(long, default_value_t = 8443)]
        port: u16,
        /// Admin port (/healthz, /readyz, /metrics); default: PORT+1
        #[arg(long)]
        admin_port: Option<u16>,
        /// Do not print the walk-through
        #[arg(long)]
        quiet: bool,
    },
    /// Run a node from a configuration file
    Serve {
        /// Path to node.toml. Any key can be overridden by an environment variable
        /// `YIWANG__<TABLE>__<KEY>` (e.g. `YIWANG__LIMITS__PRINCIPAL_RPS=50`)
        #[arg(long, env = "YIWANG_CONFIG")]
        config: PathBuf,
    },
    /// Manage yiwang's certificate authority
    #[command(subcommand)]
    Cert(CertCommand),
    /// Cluster status
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Who the server thinks you are (principal, department, roles)
    Whoami {
        #[command(flatten)]
        conn: Connection,
    },
    /// Access decisions explained
    #[command(subcommand)]
    Authz(AuthzCommand),
    /// Departments
    #[command(subcommand)]
    Department(DepartmentCommand),
    /// Datasets of the catalog
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Full-text search of the catalog
    Search {
        /// Search text (Chinese or other)
        #[arg(default_value = "")]
        query: String,
        #[arg(long)]
        dept: Option<String>,
        /// unconditional | conditional | none
        #[arg(long)]
        share_type: Option<String>,
        #[arg(long)]
        theme: Option<String>,
        /// realtime | daily | weekly | monthly | quarterly | yearly | irregular
        #[arg(long)]
        update_cycle: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// relevance | newest | oldest | id
        #[arg(long, default_value = "relevance")]
        sort: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// The search index: rebuild it, and the synonyms searches use
    #[command(subcommand)]
    Index(IndexCommand),
    /// Read records of a dataset
    Records {
        /// Dataset id
        dataset: String,
        /// Why you read the data (required; audited)
        #[arg(long)]
        purpose: String,
        /// Comma-separated fields (default: all you may see)
        #[arg(long)]
        fields: Option<String>,
        /// Filter expression, e.g. "status = '责令关停' and capacity >= 10"
        #[arg(long)]
        filter: Option<String>,
        /// Rows per page
        #[arg(long)]
        limit: Option<usize>,
        /// Cursor from a previous page
        #[arg(long)]
        cursor: Option<String>,
        /// json | ndjson | csv
        #[arg(long, default_value = "json")]
        format: String,
        /// Follow cursors and print every page (ndjson/csv)
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Cross-department SQL over catalog datasets ("<dept-code>"."<dataset-id>")
    Query {
        /// The SQL text (or use --file)
        #[arg(required_unless_present = "file")]
        sql: Option<String>,
        /// Read the SQL from this file
        #[arg(long, conflicts_with = "sql")]
        file: Option<PathBuf>,
        /// Why you read the data (required; audited)
        #[arg(long)]
        purpose: String,
        /// json | ndjson | csv | arrow
        #[arg(long, default_value = "json")]
        format: String,
        /// Write the result to this file instead of stdout (needed for arrow)
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Access requests: ask, list, decide
    #[command(subcommand)]
    Access(AccessCommand),
    /// Grants: list, revoke
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Role bindings (admins)
    #[command(subcommand)]
    Role(RoleCommand),
    /// The audit trail (auditors)
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Save a consistent copy of the catalog from a running cluster (admin)
    Backup {
        /// Output file
        #[arg(long)]
        out: PathBuf,
        /// Copy the node's own state without asking a quorum: for disaster recovery
        /// when the cluster has lost its majority. It holds every write this node has
        /// applied, which may miss the last ones the lost nodes acknowledged
        #[arg(long)]
        stale: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Restore a backup into the empty data directory of a new node (offline); start it
    /// with bootstrap = true to found a new cluster holding the restored catalog
    Restore {
        /// Backup file written by `yiwang backup`
        #[arg(long)]
        from: PathBuf,
        /// The new node's data_dir
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Create a new CA (ca.pem, ca.key) in DIR
    InitCa {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "yiwang.local")]
        trust_domain: String,
    },
    /// Issue a certificate signed by the CA in --ca
    Issue {
        /// Directory holding ca.pem and ca.key
        #[arg(long)]
        ca: PathBuf,
        /// Department code (for people and systems)
        #[arg(long, required_unless_present = "node")]
        dept: Option<String>,
        /// Name: the last part of the SPIFFE ID and the file stem
        #[arg(long)]
        name: String,
        /// Issue a node certificate for this node id instead
        #[arg(long, conflicts_with = "dept")]
        node: Option<u64>,
        /// IP addresses the node serves on (repeatable)
        #[arg(long)]
        ip: Vec<IpAddr>,
        /// DNS names the node serves on (repeatable)
        #[arg(long)]
        dns: Vec<String>,
        /// Output directory (default: the CA directory)
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "yiwang.local")]
        trust_domain: String,
        /// Validity in days
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
    /// Revoke a certificate: add it to the CA's revocation list (ca.crl.pem beside
    /// ca.pem, created on first use) and sign the list again. Nodes whose `tls.crl`
    /// names that file refuse the certificate once they reload it (within
    /// `tls.reload_interval_s`, or at once on SIGHUP); copy the file to every node.
    Revoke {
        /// Directory holding ca.pem and ca.key
        #[arg(long)]
        ca: PathBuf,
        /// The certificate to revoke (PEM)
        #[arg(long)]
        cert: PathBuf,
        /// Why (recorded in the list)
        #[arg(long, default_value = "unspecified", value_parser = ["unspecified", "key-compromise", "affiliation-changed", "superseded", "cessation-of-operation", "privilege-withdrawn"])]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Members, leader, term, log and applied indexes, per-node lag
    Status {
        #[command(flatten)]
        conn: Connection,
    },
    /// Initialise a new cluster with the node at --server as its only voter (admin)
    Init {
        #[command(flatten)]
        conn: Connection,
    },
    /// Add a node as a learner; returns once it has caught up (admin)
    AddLearner {
        /// The new node's id (node_id in its node.toml)
        #[arg(long)]
        id: u64,
        /// host:port where other nodes reach its API listener
        #[arg(long)]
        addr: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Promote learners to voters, through joint consensus (admin)
    Promote {
        /// Comma-separated node ids
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<u64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Remove a node from the cluster (admin)
    Remove {
        #[arg(long)]
        id: u64,
        #[command(flatten)]
        conn: Connection,
    },
    /// Write certificates and node.toml files for an N-node cluster on this machine
    /// (used by ops/cluster-local.sh)
    LocalSetup {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        nodes: u64,
        /// Node k listens on <IP_PREFIX>.k
        #[arg(long, default_value = "127.0.0")]
        ip_prefix: String,
        #[arg(long, default_value_t = 8443)]
        port: u16,
        #[arg(long, default_value_t = 9090)]
        admin_port: u16,
        /// Advertise this port to other nodes (a proxy in front of each node)
        #[arg(long)]
        advertise_port: Option<u16>,
        /// Seed the demo catalog and department databases
        #[arg(long)]
        demo: bool,
        /// Election timeout minimum in ms (maximum = 2×, heartbeat = ¼)
        #[arg(long)]
        election_ms: Option<u64>,
        /// Snapshot (and compact the log) every N entries
        #[arg(long)]
        snapshot_logs: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DepartmentCommand {
    /// List departments
    List {
        #[command(flatten)]
        conn: Connection,
    },
    /// Show one department
    Show {
        code: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Register a department (admin)
    Register {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        region: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Bulk-register departments from NDJSON (admin); progress on stderr
    Import {
        file: PathBuf,
        /// Lines sent per request
        #[arg(long, default_value_t = 1000)]
        chunk: usize,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Register a dataset from a JSON file (steward)
    Register {
        file: PathBuf,
        #[command(flatten)]
        conn: Connection,
    },
    /// Replace a dataset's description from a JSON file (steward)
    Update {
        file: PathBuf,
        /// Fail unless the stored version is this one
        #[arg(long)]
        version: Option<u64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Show one dataset
    Show {
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// List datasets
    List {
        #[arg(long)]
        dept: Option<String>,
        #[arg(long)]
        share_type: Option<String>,
        /// active | retired | all
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[command(flatten)]
        conn: Connection,
    },
    /// Retire a dataset (steward)
    Retire {
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Print a dataset skeleton whose fields are read from a source table, for a
    /// steward to complete and register (steward or admin)
    ImportSchema {
        /// Source id from the node configuration
        #[arg(long)]
        source: String,
        /// Table (or file stem / API path) in the source
        #[arg(long)]
        table: String,
        /// Dataset id to put in the skeleton
        #[arg(long)]
        id: Option<String>,
        /// Department code to put in the skeleton (default: yours)
        #[arg(long)]
        dept: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Bulk-register datasets from NDJSON (steward, own department); progress on stderr
    Import {
        file: PathBuf,
        /// Lines sent per request
        #[arg(long, default_value_t = 1000)]
        chunk: usize,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// Ask for access to a dataset
    Request {
        dataset: String,
        #[arg(long)]
        purpose: String,
        /// Comma-separated fields (default: all)
        #[arg(long)]
        fields: Option<String>,
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[command(flatten)]
        conn: Connection,
    },
    /// List requests of your department (as consumer or provider)
    List {
        /// pending | approved | rejected | withdrawn
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        dataset: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Approve a request (steward of the providing department)
    Approve {
        id: String,
        /// Narrow to these comma-separated fields
        #[arg(long)]
        fields: Option<String>,
        /// Rows the consumer may see (filter expression)
        #[arg(long)]
        row_filter: Option<String>,
        #[arg(long)]
        days: Option<u32>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Reject a request with a reason
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Withdraw your own pending request
    Withdraw {
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Subcommand, Debug)]
pub enum GrantCommand {
    /// List grants of your department
    List {
        #[arg(long)]
        consumer: Option<String>,
        #[arg(long)]
        dataset: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Revoke a grant (steward of the providing department)
    Revoke {
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// List role bindings
    List {
        #[arg(long)]
        dept: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Bind a role to a principal (admin)
    Bind {
        /// SPIFFE ID, e.g. spiffe://yiwang.local/dept/320600-GAJ/system
        principal: String,
        /// admin | auditor | dept_auditor | steward | system
        role: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Remove a role binding (admin)
    Unbind {
        principal: String,
        role: String,
        #[command(flatten)]
        conn: Connection,
    },
}

/// Which audit records: the filters of `GET /v1/audit`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AuditFilter {
    /// From this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long)]
    pub from: Option<String>,
    /// Before this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long)]
    pub to: Option<String>,
    /// SPIFFE ID of the caller
    #[arg(long)]
    pub principal: Option<String>,
    /// Department as consumer or provider
    #[arg(long)]
    pub dept: Option<String>,
    /// Department as consumer (the caller's department)
    #[arg(long)]
    pub consumer: Option<String>,
    /// Department as provider of a dataset read
    #[arg(long)]
    pub provider: Option<String>,
    /// Dataset id
    #[arg(long)]
    pub dataset: Option<String>,
    /// Field name (for queries: <dataset-id>.<field>)
    #[arg(long)]
    pub field: Option<String>,
    /// allow | deny | error
    #[arg(long)]
    pub decision: Option<String>,
    /// Text the purpose contains
    #[arg(long)]
    pub purpose: Option<String>,
    /// Action, e.g. records.read, query.run
    #[arg(long)]
    pub action: Option<String>,
    /// The records of one request (its x-request-id)
    #[arg(long)]
    pub request_id: Option<String>,
    /// Records written by this node
    #[arg(long)]
    pub node: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum IndexCommand {
    /// Rebuild the search index of the node --server points at, from its catalog
    /// state, while it keeps answering searches (admin). Prints datasets indexed and
    /// the time taken
    Rebuild {
        #[command(flatten)]
        conn: Connection,
    },
    /// Show the admin-defined synonym groups (the built-in abbreviations, such as
    /// 危化品 = 危险化学品, always apply as well)
    Synonyms {
        #[command(flatten)]
        conn: Connection,
    },
    /// Replace the admin-defined synonym groups with those in FILE (admin): one group
    /// a line, terms separated by commas or spaces, `#` starts a comment. Takes effect
    /// on every node without a restart or re-indexing
    SetSynonyms {
        /// The groups file ("-" for stdin)
        file: PathBuf,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuthzCommand {
    /// Why a principal may or may not act on a dataset: the decision, the rule that
    /// matched, the grant, the masked fields — or why nothing matched
    Explain {
        /// Dataset id
        dataset: String,
        /// Whose access (SPIFFE ID); default: you. Admins and auditors may ask about
        /// anyone
        #[arg(long)]
        principal: Option<String>,
        /// read | write | decide | request
        #[arg(long, default_value = "read")]
        action: String,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Search audit records of all nodes, oldest first (one page; see `export` for all)
    Search {
        #[command(flatten)]
        filter: AuditFilter,
        /// Page size (1-1000)
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// next_cursor of the previous page
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Verify the hash chains: every node's, on the cluster (default), or a node's audit
    /// folder or one segment file offline (--path)
    Verify {
        /// Verify this audit folder (DATA/audit/node-N) or segment file offline instead
        /// of asking the cluster; offline, anchors are not checked
        #[arg(long, alias = "file")]
        path: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Export all matching records of all nodes, oldest first, as NDJSON or CSV
    Export {
        #[command(flatten)]
        filter: AuditFilter,
        /// ndjson (one record per line, as stored) or csv (one row per record)
        #[arg(long, default_value = "ndjson", value_parser = ["ndjson", "csv"])]
        format: String,
        /// Output file (default: stdout)
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Measure how many durable audit records/s this disk takes (offline: writes a
    /// throwaway log in --dir, like pg_test_fsync for PostgreSQL)
    Bench {
        /// Folder for the throwaway log (on the disk the audit trail will use); its
        /// `node-0` subfolder is deleted afterwards
        #[arg(long)]
        dir: PathBuf,
        /// group (the default commit mode), each (one fsync per record) or none
        #[arg(long, default_value = "group", value_parser = ["group", "each", "none"])]
        sync: String,
        /// Concurrent writers (requests waiting for their record)
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Measured seconds
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Who read whom: requests, denials, rows and bytes per consumer and provider
    /// department for a period
    Summary {
        #[command(flatten)]
        filter: AuditFilter,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
}

/// Parses arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    // A serving node sets up its logs (and traces) from its config, inside the runtime.
    if !matches!(cli.command, Command::Serve { .. } | Command::Demo { .. }) {
        crate::telemetry::init_cli_logging();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Requests whose audit record became durable are woken by the audit writer
        // thread, from outside the runtime, into its global queue: under load, check it
        // more often than the default so that they resume promptly. (Measured: no
        // effect distinguishable from run-to-run spread at 64 clients on 2 cores; see
        // ops/bench/README.md.)
        .global_queue_interval(8)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(commands::run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
