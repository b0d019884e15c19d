//! `yiwang-bench query`: cross-department SQL through the gateway against the same
//! question asked directly of the databases (issue 4).
//!
//! A spec file lists the cases: each has the SQL sent to `POST /v1/query` and the
//! equivalent SQL run directly on PostgreSQL or MariaDB. For each case and concurrency
//! C, C closed-loop tasks send the gateway query back to back (one keep-alive TLS
//! connection each), then C tasks run the direct query (one database connection each,
//! the statement prepared once per connection — the cheapest a client can do). Both
//! sides must return the same number of rows, or the run fails. The gateway's
//! `x-source-rows` header says how many rows each source sent after pushdown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::{ClientTls, append, http_client, percentile, round};

#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    /// JSON array of cases: {"name", "sql", "direct": "postgres"|"mysql", "direct_sql"}
    #[arg(long)]
    spec: PathBuf,
    /// Node base URL
    #[arg(long)]
    node: String,
    #[command(flatten)]
    tls: ClientTls,
    /// PostgreSQL URL for the direct runs
    #[arg(long)]
    pg: Option<String>,
    /// MySQL/MariaDB URL for the direct runs
    #[arg(long)]
    mysql: Option<String>,
    /// Concurrent clients, comma-separated
    #[arg(short = 'c', long, value_delimiter = ',', default_value = "1")]
    concurrency: Vec<usize>,
    /// Measured seconds per run
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before the measured window
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Purpose sent with every gateway query (audited)
    #[arg(long, default_value = "性能基准测试")]
    purpose: String,
    /// Append every run's JSON line here
    #[arg(long)]
    jsonl: Option<PathBuf>,
}

/// One case of the spec.
struct Case {
    name: String,
    sql: String,
    direct: String,
    direct_sql: String,
}

fn cases(spec: &Value) -> Result<Vec<Case>> {
    let list = spec.as_array().context("the spec must be a JSON array")?;
    list.iter()
        .map(|c| {
            let s = |k: &str| {
                c[k].as_str()
                    .map(str::to_string)
                    .with_context(|| format!("case without string '{k}': {c}"))
            };
            let direct = s("direct")?;
            if direct != "postgres" && direct != "mysql" {
                bail!("'direct' must be postgres or mysql, not {direct}");
            }
            Ok(Case {
                name: s("name")?,
                sql: s("sql")?,
                direct,
                direct_sql: s("direct_sql")?,
            })
        })
        .collect()
}

/// What one task measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    rows: Option<u64>,
    source_rows: Option<String>,
}

struct Window {
    measure_from: Instant,
    end: Instant,
}

impl Tally {
    fn record(&mut self, w: &Window, started: Instant, outcome: Result<(u64, Option<String>)>) {
        let done = Instant::now();
        match outcome {
            Ok((rows, sources)) => {
                if started >= w.measure_from && done <= w.end {
                    self.latencies_us
                        .push(done.duration_since(started).as_micros() as u32);
                }
                self.rows = Some(rows);
                if sources.is_some() {
                    self.source_rows = sources;
                }
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
}

async fn gateway_task(client: reqwest::Client, url: String, body: Value, w: Arc<Window>) -> Tally {
    let mut t = Tally::default();
    while Instant::now() < w.end {
        let started = Instant::now();
        let outcome = async {
            let resp = client.post(&url).json(&body).send().await?;
            let status = resp.status();
            let rows = resp
                .headers()
                .get("x-row-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let sources = resp
                .headers()
                .get("x-source-rows")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = resp.bytes().await?;
            if !status.is_success() {
                bail!("{status}: {}", String::from_utf8_lossy(&bytes));
            }
            Ok((rows.context("no x-row-count")?, sources))
        }
        .await;
        t.record(&w, started, outcome);
    }
    t
}

async fn postgres_task(url: String, sql: String, w: Arc<Window>) -> Result<Tally> {
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .context("cannot connect to PostgreSQL")?;
    tokio::spawn(conn);
    let stmt = client
        .prepare(&sql)
        .await
        .context("PostgreSQL refused the direct SQL")?;
    let mut t = Tally::default();
    while Instant::now() < w.end {
        let started = Instant::now();
        let outcome = client
            .query(&stmt, &[])
            .await
            .map(|rows| (rows.len() as u64, None))
            .map_err(anyhow::Error::from);
        t.record(&w, started, outcome);
    }
    Ok(t)
}

async fn mysql_task(url: String, sql: String, w: Arc<Window>) -> Result<Tally> {
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_async::Conn::from_url(url.as_str())
        .await
        .context("cannot connect to MariaDB")?;
    let stmt = conn
        .prep(sql.as_str())
        .await
        .context("MariaDB refused the direct SQL")?;
    let mut t = Tally::default();
    while Instant::now() < w.end {
        let started = Instant::now();
        let outcome = conn
            .exec::<mysql_async::Row, _, _>(&stmt, ())
            .await
            .map(|rows| (rows.len() as u64, None))
            .map_err(anyhow::Error::from);
        t.record(&w, started, outcome);
    }
    conn.disconnect().await.ok();
    Ok(t)
}

fn summarise(system: &str, case: &Case, c: usize, secs: f64, tallies: Vec<Tally>) -> Value {
    let mut lat: Vec<u32> = tallies
        .iter()
        .flat_map(|t| t.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    let first_error = tallies.iter().find_map(|t| t.first_error.clone());
    let rows = tallies.iter().find_map(|t| t.rows);
    let source_rows = tallies.iter().find_map(|t| t.source_rows.clone());
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().map(|&v| f64::from(v)).sum::<f64>() / lat.len() as f64 / 1000.0
    };
    json!({
        "bench": "query",
        "case": case.name,
        "system": system,
        "direct": case.direct,
        "concurrency": c,
        "requests": lat.len(),
        "ops_per_s": round(lat.len() as f64 / secs, 1),
        "latency_ms": {
            "mean": round(mean, 3),
            "p50": percentile(&lat, 50.0),
            "p90": percentile(&lat, 90.0),
            "p99": percentile(&lat, 99.0),
            "max": percentile(&lat, 100.0),
        },
        "rows": rows,
        "source_rows": source_rows,
        "errors": errors,
        "first_error": first_error,
    })
}

async fn run_case(args: &QueryArgs, case: &Case, c: usize) -> Result<(Value, Value)> {
    let window = || {
        let start = Instant::now();
        let measure_from = start + Duration::from_secs_f64(args.warmup);
        Arc::new(Window {
            measure_from,
            end: measure_from + Duration::from_secs_f64(args.duration),
        })
    };
    let tls = args.tls.config()?;
    let url = format!("{}/v1/query", args.node.trim_end_matches('/'));
    let body = json!({"sql": case.sql, "purpose": args.purpose});
    let w = window();
    let mut handles = Vec::new();
    for _ in 0..c {
        let client = http_client(&tls, Duration::from_secs(120))?;
        handles.push(tokio::spawn(gateway_task(
            client,
            url.clone(),
            body.clone(),
            Arc::clone(&w),
        )));
    }
    let mut tallies = Vec::new();
    for h in handles {
        tallies.push(h.await?);
    }
    let gateway = summarise("yiwang", case, c, args.duration, tallies);

    let w = window();
    let mut handles = Vec::new();
    for _ in 0..c {
        let w = Arc::clone(&w);
        let sql = case.direct_sql.clone();
        handles.push(match case.direct.as_str() {
            "postgres" => {
                let url = args.pg.clone().context("--pg is needed for this case")?;
                tokio::spawn(postgres_task(url, sql, w))
            }
            _ => {
                let url = args
                    .mysql
                    .clone()
                    .context("--mysql is needed for this case")?;
                tokio::spawn(mysql_task(url, sql, w))
            }
        });
    }
    let mut tallies = Vec::new();
    for h in handles {
        tallies.push(h.await??);
    }
    let direct = summarise("direct", case, c, args.duration, tallies);
    Ok((gateway, direct))
}

/// Runs every case at every concurrency; prints and appends one JSON line per run.
pub async fn run(args: QueryArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("cannot read {}", args.spec.display()))?;
    let spec: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.spec.display()))?;
    for case in cases(&spec)? {
        for &c in &args.concurrency {
            eprintln!("query bench: {} at C={c}", case.name);
            let (gateway, direct) = run_case(&args, &case, c).await?;
            for r in [&gateway, &direct] {
                let line = serde_json::to_string(r)?;
                println!("{line}");
                if let Some(p) = &args.jsonl {
                    append(p, &format!("{line}\n"))?;
                }
            }
            if gateway["rows"] != direct["rows"] {
                bail!(
                    "case {}: the gateway returned {} rows, the database {}: the two SQL texts do not ask the same question",
                    case.name,
                    gateway["rows"],
                    direct["rows"]
                );
            }
        }
    }
    Ok(())
}

/// The side-by-side table of a query benchmark's JSONL.
pub fn table(results: &[Value]) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let mut out = String::from(
        "| case | C | yiwang /s | yiwang p50 / p99 ms | direct /s | direct p50 / p99 ms | p50 yiwang / direct | throughput yiwang / direct | rows returned | rows sent by each source (yiwang) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    let mut seen: BTreeMap<(String, u64), ()> = BTreeMap::new();
    for r in results.iter().filter(|r| r["bench"] == "query") {
        let key = (
            r["case"].as_str().unwrap_or("?").to_string(),
            r["concurrency"].as_u64().unwrap_or(0),
        );
        if seen.insert(key.clone(), ()).is_some() {
            continue;
        }
        let find = |system: &str| {
            results.iter().rev().find(|x| {
                x["bench"] == "query"
                    && x["case"] == key.0.as_str()
                    && x["concurrency"].as_u64() == Some(key.1)
                    && x["system"] == system
            })
        };
        let (Some(y), Some(d)) = (find("yiwang"), find("direct")) else {
            continue;
        };
        let lat = |r: &Value| {
            format!(
                "{:.2} / {:.2}",
                f(&r["latency_ms"]["p50"]),
                f(&r["latency_ms"]["p99"])
            )
        };
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}×", a / b)
            } else {
                "–".into()
            }
        };
        out.push_str(&format!(
            "| {} ({}) | {} | {:.0} | {} | {:.0} | {} | {} | {} | {} | {} |\n",
            key.0,
            d["direct"].as_str().unwrap_or("?"),
            key.1,
            f(&y["ops_per_s"]),
            lat(y),
            f(&d["ops_per_s"]),
            lat(d),
            ratio(f(&y["latency_ms"]["p50"]), f(&d["latency_ms"]["p50"])),
            ratio(f(&y["ops_per_s"]), f(&d["ops_per_s"])),
            y["rows"],
            y["source_rows"].as_str().unwrap_or("–"),
        ));
        for r in [y, d] {
            if r["errors"].as_u64().unwrap_or(0) > 0 {
                out.push_str(&format!(
                    "|  | {} errors ({}): {} |||||||||\n",
                    r["errors"],
                    r["system"].as_str().unwrap_or("?"),
                    r["first_error"]
                        .as_str()
                        .unwrap_or("")
                        .replace('|', "/")
                        .chars()
                        .take(160)
                        .collect::<String>()
                ));
            }
        }
    }
    out
}
