//! `yiwang-bench`: a closed-loop load generator for the catalog benchmark (issue 3).
//!
//! It drives either yiwang's HTTPS API (mutual TLS, client certificates) or etcd's v3
//! JSON gateway (same CA, client-certificate auth) with C tokio tasks, each doing
//! requests back to back on its own HTTP/1.1 keep-alive connection, spread round-robin
//! over the given nodes. Every latency inside the measured window is kept; the run
//! prints one JSON line (throughput, p50/p99/p99.9/max, errors, CPU used by the
//! servers, the generator and the whole machine) and can append it to a JSONL file and
//! a row to a markdown file. `yiwang-bench report FILE.jsonl` turns the JSONL of a
//! whole benchmark into the side-by-side table with yiwang/etcd ratios.
//!
//! `yiwang-bench query` measures cross-department SQL through the gateway against the
//! same SQL run directly on PostgreSQL or MariaDB (issue 4; see `query.rs`).
//! `yiwang-bench policy` and `yiwang-bench search` measure the decision engine and the
//! search index in process against casbin and SQLite FTS5 (`policy.rs`, `search.rs`).

mod policy;
mod query;
mod report;
mod search;
mod workload;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use workload::Workload;

#[derive(Parser, Debug)]
#[command(
    name = "yiwang-bench",
    about = "Closed-loop load generator: yiwang catalog vs etcd, queries vs direct SQL"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one measurement (one system, one operation, one concurrency)
    Run(Box<RunArgs>),
    /// Cross-department SQL through the gateway vs directly on the databases
    Query(Box<query::QueryArgs>),
    /// Access-decision latency: yiwang's engine vs casbin's uncached enforce
    Policy(policy::PolicyArgs),
    /// Search indexing and query latency: yiwang's index vs SQLite FTS5 (trigram)
    Search(search::SearchArgs),
    /// Print the side-by-side markdown table of a JSONL results file
    Report {
        /// JSONL written by `run --jsonl`
        jsonl: PathBuf,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum System {
    Yiwang,
    Etcd,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Op {
    /// yiwang: `POST /v1/datasets`, one new dataset per request (201)
    Register,
    /// yiwang: `POST /v1/datasets/bulk`, --bulk-size new datasets per NDJSON request
    Bulk,
    /// yiwang: `GET /v1/datasets/{id}` of a random pre-created dataset
    Read,
    /// yiwang: a records read (`--records-path`, with `X-Purpose`): policy, source,
    /// masking and a durable audit record per request
    Records,
    /// etcd: `POST /v3/kv/put` of a new key
    Put,
    /// etcd: `POST /v3/kv/range` of a random pre-created key
    Get,
    /// etcd: `POST /v3/kv/txn` with --bulk-size puts of new keys (etcd's bulk)
    Txn,
}

impl Op {
    fn system(self) -> System {
        match self {
            Op::Register | Op::Bulk | Op::Read | Op::Records => System::Yiwang,
            Op::Put | Op::Get | Op::Txn => System::Etcd,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Bulk => "bulk",
            Op::Read => "read",
            Op::Records => "records",
            Op::Put => "put",
            Op::Get => "get",
            Op::Txn => "txn",
        }
    }
}

/// The CA and client certificate of the measured requests (mutual TLS).
#[derive(Args, Debug, Clone)]
pub struct ClientTls {
    /// CA certificate (PEM) the servers' certificates chain to
    #[arg(long)]
    ca: PathBuf,
    /// Client certificate (PEM) for the measured requests
    #[arg(long)]
    cert: PathBuf,
    /// Client key (PEM)
    #[arg(long)]
    key: PathBuf,
}

impl ClientTls {
    pub(crate) fn config(&self) -> Result<ClientConfig> {
        tls_config(&self.ca, &self.cert, &self.key)
    }
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Target system (must match --op)
    #[arg(long, value_enum)]
    system: System,
    #[arg(long, value_enum)]
    op: Op,
    /// Concurrent clients (tasks, one connection each)
    #[arg(short = 'c', long, default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Seconds of load before the measured window (connections are opened then)
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Node base URLs, comma-separated; client i talks to node i mod N
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    #[command(flatten)]
    tls: ClientTls,
    /// Certificate for setup (pre-creating datasets to read); default --cert
    #[arg(long)]
    setup_cert: Option<PathBuf>,
    /// Key for setup; default --key
    #[arg(long)]
    setup_key: Option<PathBuf>,
    /// Size of one dataset JSON / etcd value in bytes
    #[arg(long, default_value_t = 600)]
    value_size: usize,
    /// Datasets per bulk request / puts per etcd txn
    #[arg(long, default_value_t = 100)]
    bulk_size: usize,
    /// Datasets / keys pre-created for read and get
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Path (and query) of the `records` operation
    #[arg(long, default_value = "/v1/datasets/320600-YJJ-00001/records?limit=2")]
    pub records_path: String,
    /// Department of the registered datasets (the steward's)
    #[arg(long, default_value = "320600-GAJ")]
    dept: String,
    /// Local reads instead of linearizable ones (yiwang `?consistency=stale`, etcd
    /// `serializable`); a diagnostic, not part of the comparison
    #[arg(long)]
    stale: bool,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Open loop: send this many requests per second in total, spread evenly over the
    /// clients, whatever the answers' speed (like wrk2). Latency is measured from each
    /// request's scheduled time, so a server that falls behind shows it in full. Without
    /// it, each client sends its next request when the last is answered (closed loop),
    /// which at saturation measures throughput more than latency.
    #[arg(long)]
    rate: Option<f64>,
    /// Server process ids whose CPU time is measured over the window
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Free-text note stored with the result
    #[arg(long, default_value = "")]
    note: String,
    /// Append the JSON line to this file
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Append a markdown table row to this file (the header is written when new)
    #[arg(long)]
    md: Option<PathBuf>,
}

/// Reads the CA, certificate and key into a rustls client config speaking HTTP/1.1.
pub(crate) fn tls_config(ca: &Path, cert: &Path, key: &Path) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("cannot read {}", ca.display()))?
    {
        roots.add(c.with_context(|| format!("bad PEM in {}", ca.display()))?)?;
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad PEM in {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read key {}", key.display()))?;
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .context("certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// One HTTP/1.1 client with at most one idle connection: a closed-loop task reuses
/// the same keep-alive connection for all its requests.
pub fn http_client(tls: &ClientConfig, timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls.clone())
        .http1_only()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()
        .context("cannot build HTTP client")
}

/// What one task measured.
#[derive(Default)]
struct TaskResult {
    latencies_us: Vec<u32>,
    items: u64,
    errors: u64,
    messages: BTreeMap<String, u64>,
}

/// CPU clock ticks (USER_HZ) per second; 100 on every Linux we run on.
const TICKS: f64 = 100.0;

/// utime + stime of a process, in ticks.
fn proc_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (busy, total) ticks of the whole machine.
fn machine_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

struct CpuSample {
    servers: u64,
    me: u64,
    machine: (u64, u64),
}

fn cpu_sample(pids: &[u32]) -> CpuSample {
    CpuSample {
        servers: pids.iter().filter_map(|p| proc_ticks(&p.to_string())).sum(),
        me: proc_ticks("self").unwrap_or(0),
        machine: machine_ticks().unwrap_or((0, 0)),
    }
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

async fn run(args: RunArgs) -> Result<serde_json::Value> {
    if args.op.system() != args.system {
        bail!(
            "--op {} is not an operation of --system {:?}",
            args.op.name(),
            args.system
        );
    }
    if args.concurrency == 0 || args.duration <= 0.0 || args.bulk_size == 0 {
        bail!("concurrency, duration and bulk-size must be positive");
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of requests per second");
    }
    let nodes: Vec<String> = args
        .nodes
        .iter()
        .map(|n| n.trim_end_matches('/').to_string())
        .collect();
    let timeout = Duration::from_secs_f64(args.timeout);
    let tls = args.tls.config()?;
    let setup_tls = tls_config(
        &args.tls.ca,
        args.setup_cert.as_ref().unwrap_or(&args.tls.cert),
        args.setup_key.as_ref().unwrap_or(&args.tls.key),
    )?;
    let setup_client = http_client(&setup_tls, Duration::from_secs(120))?;

    let started_at = SystemTime::now().duration_since(UNIX_EPOCH)?;
    // Unique per run, so that registrations never collide with earlier runs.
    let run_id = format!("{:x}", started_at.as_millis());
    let workload = Arc::new(Workload::new(&args, nodes.clone(), run_id.clone()));
    let leader = workload.leader(&setup_client).await;
    workload.setup(&setup_client).await?;

    let c = args.concurrency;
    let begin = Instant::now() + Duration::from_millis(50);
    let window_start = begin + Duration::from_secs_f64(args.warmup);
    let window_end = window_start + Duration::from_secs_f64(args.duration);
    let rate = args.rate;
    let mut tasks = Vec::with_capacity(c);
    for t in 0..c {
        let client = http_client(&tls, timeout)?;
        let w = workload.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = TaskResult::default();
            let mut rng = workload::Rng::new(t as u64 + 1);
            let node = t % w.nodes.len();
            tokio::time::sleep_until(begin.into()).await;
            let mut seq = 0u64;
            loop {
                let t0 = match rate {
                    // Request `seq` of client `t` is due at (seq·c + t)/rate after begin.
                    Some(rate) => {
                        let due = begin
                            + Duration::from_secs_f64((seq as f64 * c as f64 + t as f64) / rate);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                if t0 >= window_end {
                    break;
                }
                let outcome = w.one(&client, node, t, seq, &mut rng).await;
                seq += 1;
                let t1 = Instant::now();
                let counted = t0 >= window_start && t1 <= window_end;
                match outcome {
                    Ok(items) => {
                        if counted {
                            let us = (t1 - t0).as_micros().min(u128::from(u32::MAX)) as u32;
                            r.latencies_us.push(us);
                            r.items += items;
                        }
                    }
                    Err(msg) => {
                        if counted {
                            r.errors += 1;
                            *r.messages.entry(msg).or_default() += 1;
                        }
                        // A failing server answers fast; do not spin on it.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            r
        }));
    }
    tokio::time::sleep_until(window_start.into()).await;
    let cpu0 = cpu_sample(&args.pids);
    tokio::time::sleep_until(window_end.into()).await;
    let cpu1 = cpu_sample(&args.pids);

    let mut all = TaskResult::default();
    for t in tasks {
        let r = t.await.context("a client task panicked")?;
        all.latencies_us.extend(r.latencies_us);
        all.items += r.items;
        all.errors += r.errors;
        for (m, n) in r.messages {
            *all.messages.entry(m).or_default() += n;
        }
    }
    all.latencies_us.sort_unstable();
    let ok = all.latencies_us.len() as u64;
    let secs = args.duration;
    let mean = if ok == 0 {
        0.0
    } else {
        all.latencies_us.iter().map(|&x| u64::from(x)).sum::<u64>() as f64 / ok as f64 / 1000.0
    };
    let cpu_pct = |ticks: u64| round(ticks as f64 / TICKS / secs * 100.0, 1);
    let (busy0, total0) = cpu0.machine;
    let (busy1, total1) = cpu1.machine;
    let machine_busy = if total1 > total0 {
        // Percent of one core, like the per-process figures (200% = both cores).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        round(
            (busy1 - busy0) as f64 / (total1 - total0) as f64 * 100.0 * cores,
            1,
        )
    } else {
        0.0
    };
    let servers_cpu = cpu_pct(cpu1.servers.saturating_sub(cpu0.servers));
    let me_cpu = cpu_pct(cpu1.me.saturating_sub(cpu0.me));
    let ops = ok as f64 / secs;
    let result = serde_json::json!({
        "system": format!("{:?}", args.system).to_lowercase(),
        "op": args.op.name(),
        "concurrency": c,
        "rate": rate,
        "stale": args.stale,
        "protocol": "HTTP/1.1 + TLS (mTLS), one keep-alive connection per client",
        "nodes": nodes,
        "leader": leader,
        "duration_s": secs,
        "warmup_s": args.warmup,
        "value_bytes": workload.value_bytes(),
        "items_per_request": workload.items_per_request(),
        "requests": ok,
        "errors": all.errors,
        "error_messages": all.messages,
        "ops_per_s": round(ops, 1),
        "items_per_s": round(all.items as f64 / secs, 1),
        "latency_ms": {
            "mean": round(mean, 3),
            "p50": round(percentile(&all.latencies_us, 50.0), 3),
            "p90": round(percentile(&all.latencies_us, 90.0), 3),
            "p99": round(percentile(&all.latencies_us, 99.0), 3),
            "p999": round(percentile(&all.latencies_us, 99.9), 3),
            "max": round(all.latencies_us.last().map_or(0.0, |&x| f64::from(x) / 1000.0), 3),
        },
        "cpu_pct": {
            "servers": servers_cpu,
            "loadgen": me_cpu,
            "machine": machine_busy,
            "other": round((machine_busy - servers_cpu - me_cpu).max(0.0), 1),
        },
        "server_cpu_us_per_item": if all.items == 0 { 0.0 } else {
            round((cpu1.servers.saturating_sub(cpu0.servers)) as f64 / TICKS * 1e6 / all.items as f64, 1)
        },
        "note": args.note,
        "started_unix": started_at.as_secs(),
    });
    Ok(result)
}

pub(crate) fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run(args) => {
            let jsonl = args.jsonl.clone();
            let md = args.md.clone();
            let what = serde_json::json!({
                "system": format!("{:?}", args.system).to_lowercase(),
                "op": args.op.name(),
                "concurrency": args.concurrency,
                "stale": args.stale,
                "items_per_request": if matches!(args.op, Op::Bulk | Op::Txn) { args.bulk_size } else { 1 },
            });
            let result = match run(*args).await {
                Ok(r) => r,
                Err(e) => {
                    // Recorded, so that the report shows the run as failed, not absent.
                    let mut failed = what;
                    failed["failed"] = serde_json::Value::String(format!("{e:#}"));
                    if let Some(p) = jsonl {
                        append(&p, &format!("{failed}\n"))?;
                    }
                    return Err(e);
                }
            };
            let line = serde_json::to_string(&result)?;
            println!("{line}");
            if let Some(p) = jsonl {
                append(&p, &format!("{line}\n"))?;
            }
            if let Some(p) = md {
                let new = !p.exists() || std::fs::metadata(&p)?.len() == 0;
                let mut text = String::new();
                if new {
                    text.push_str(report::ROW_HEADER);
                }
                text.push_str(&report::row(&result));
                append(&p, &text)?;
            }
        }
        Cmd::Query(args) => query::run(*args).await?,
        Cmd::Policy(args) => policy::run(args).await?,
        Cmd::Search(args) => tokio::task::block_in_place(|| search::run(args))?,
        Cmd::Report { jsonl } => {
            let text = std::fs::read_to_string(&jsonl)
                .with_context(|| format!("cannot read {}", jsonl.display()))?;
            let results: Vec<serde_json::Value> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .with_context(|| format!("bad JSON line in {}", jsonl.display()))?;
            if results.iter().any(|r| r["bench"] == "query") {
                print!("{}", query::table(&results));
            } else {
                print!("{}", report::table(&results));
            }
        }
    }
    Ok(())
}
