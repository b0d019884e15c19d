//! `audit search|verify|export|summary`.

use super::*;
use crate::cli::AuditFilter;

impl AuditFilter {
    fn pairs(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("principal", self.principal.clone()),
            ("dept", self.dept.clone()),
            ("consumer", self.consumer.clone()),
            ("provider", self.provider.clone()),
            ("dataset", self.dataset.clone()),
            ("field", self.field.clone()),
            ("decision", self.decision.clone()),
            ("purpose", self.purpose.clone()),
            ("action", self.action.clone()),
            ("request_id", self.request_id.clone()),
            ("node", self.node.map(|n| n.to_string())),
        ]
    }
}

/// Columns of `audit export --format csv`, in order.
const CSV_COLUMNS: &[&str] = &[
    "seq",
    "node",
    "time",
    "request_id",
    "principal",
    "dept",
    "action",
    "dataset",
    "provider_dept",
    "datasets",
    "providers",
    "fields",
    "purpose",
    "decision",
    "reason",
    "grant",
    "rows",
    "bytes",
    "status",
    "completes",
    "duration_ms",
    "prev_hash",
    "hash",
];

/// One CSV line (RFC 4180: CRLF, quotes where needed); lists are joined with `;`.
fn csv_line(record: &serde_json::Value) -> String {
    let cells: Vec<String> = CSV_COLUMNS
        .iter()
        .map(|c| {
            let text = match &record[*c] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                    .collect::<Vec<_>>()
                    .join(";"),
                other => other.to_string(),
            };
            if text.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", text.replace('"', "\"\""))
            } else {
                text
            }
        })
        .collect();
    format!("{}\r\n", cells.join(","))
}

fn report_incomplete(page: &serde_json::Value) {
    if page["complete"] == false {
        for n in page["nodes"].as_array().into_iter().flatten() {
            if n["ok"] != true {
                eprintln!(
                    "warning: node {} did not answer, its records are missing: {}",
                    n["node"],
                    n["error"].as_str().unwrap_or("")
                );
            }
        }
    }
}

pub(super) async fn audit(c: AuditCommand) -> Result<i32> {
    match c {
        AuditCommand::Search {
            filter,
            limit,
            cursor,
            conn,
        } => {
            let mut pairs = filter.pairs();
            pairs.push(("limit", Some(limit.to_string())));
            pairs.push(("cursor", cursor));
            let page = Client::new(&conn)?
                .get(&format!("/v1/audit{}", query(&pairs)))
                .await?;
            print_json(&page);
            report_incomplete(&page);
            Ok(0)
        }
        AuditCommand::Verify {
            path: Some(path), ..
        } => {
            let report = crate::audit::verify_path(&path, None, None)?;
            print_json(&serde_json::to_value(&report)?);
            if report.ok {
                eprintln!(
                    "audit chain OK: {} records in {} segment(s), seq {}..{} (anchors not checked offline)",
                    report.records, report.segments, report.first_seq, report.head_seq
                );
                Ok(0)
            } else {
                eprintln!("audit chain BROKEN: {} problem(s)", report.problem_count);
                Ok(1)
            }
        }
        AuditCommand::Verify { path: None, conn } => {
            let v = Client::new(&conn)?.get("/v1/audit/verify").await?;
            print_json(&v);
            for n in v["nodes"].as_array().into_iter().flatten() {
                eprintln!(
                    "node {}: {} ({} records, head seq {}, {} problem(s))",
                    n["node"],
                    if n["ok"] == true { "OK" } else { "BROKEN" },
                    n["records"],
                    n["head_seq"],
                    n["problem_count"]
                );
            }
            if v["ok"] == true {
                Ok(0)
            } else {
                eprintln!("audit chain BROKEN");
                Ok(1)
            }
        }
        AuditCommand::Export {
            filter,
            format,
            out,
            conn,
        } => {
            let client = Client::new(&conn)?;
            let mut sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let csv = format == "csv";
            if csv {
                write!(sink, "{}\r\n", CSV_COLUMNS.join(","))?;
            }
            let mut cursor: Option<String> = None;
            let mut n = 0u64;
            let mut complete = true;
            loop {
                let mut pairs = filter.pairs();
                pairs.push(("limit", Some("1000".into())));
                pairs.push(("cursor", cursor.clone()));
                let page = client.get(&format!("/v1/audit{}", query(&pairs))).await?;
                if page["complete"] == false && complete {
                    complete = false;
                    report_incomplete(&page);
                }
                for r in page["records"].as_array().into_iter().flatten() {
                    if csv {
                        sink.write_all(csv_line(r).as_bytes())?;
                    } else {
                        writeln!(sink, "{}", serde_json::to_string(r)?)?;
                    }
                    n += 1;
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
                eprint!("\rexported {n} records");
            }
            sink.flush()?;
            eprintln!("\rexported {n} records");
            Ok(if complete { 0 } else { 1 })
        }
        AuditCommand::Bench {
            dir,
            sync,
            clients,
            seconds,
        } => {
            let sync = match sync.as_str() {
                "each" => crate::audit::SyncMode::Each,
                "none" => crate::audit::SyncMode::None,
                _ => crate::audit::SyncMode::Group,
            };
            let report = bench(&dir, sync, clients.max(1), seconds).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(0)
        }
        AuditCommand::Summary { filter, json, conn } => {
            let s = Client::new(&conn)?
                .get(&format!("/v1/audit/summary{}", query(&filter.pairs())))
                .await?;
            if json {
                print_json(&s);
            } else {
                println!(
                    "{:<14} {:<14} {:>9} {:>9} {:>7} {:>7} {:>10} {:>12}  principals",
                    "consumer",
                    "provider",
                    "requests",
                    "allowed",
                    "denied",
                    "errors",
                    "rows",
                    "bytes"
                );
                for p in s["pairs"].as_array().into_iter().flatten() {
                    let principals: Vec<&str> = p["principals"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x.as_str())
                        .collect();
                    println!(
                        "{:<14} {:<14} {:>9} {:>9} {:>7} {:>7} {:>10} {:>12}  {}",
                        p["consumer"].as_str().unwrap_or(""),
                        p["provider"].as_str().unwrap_or(""),
                        p["requests"],
                        p["allowed"],
                        p["denied"],
                        p["errors"],
                        p["rows"],
                        p["bytes"],
                        principals.join(" ")
                    );
                }
            }
            report_incomplete(&s);
            Ok(if s["complete"] == false { 1 } else { 0 })
        }
    }
}

/// Appends records like a records read's from `clients` tasks, each waiting for its
/// record to be durable before the next, for `seconds`; returns records/s, commits/s and
/// the latency of `append`.
async fn bench(
    dir: &std::path::Path,
    sync: crate::audit::SyncMode,
    clients: usize,
    seconds: f64,
) -> Result<serde_json::Value> {
    use crate::audit::{AuditDecision, AuditEvent, AuditLog, AuditOptions};
    use std::time::{Duration, Instant};
    let node_dir = crate::audit::segments::node_dir(dir, 0);
    if node_dir.exists() {
        bail!(
            "{} exists: give a folder without a node-0 log",
            node_dir.display()
        );
    }
    let metrics = crate::metrics::Metrics::new();
    let log = AuditLog::open(
        &AuditOptions {
            dir: dir.to_path_buf(),
            node: 0,
            segment_bytes: 64 << 20,
            sync,
        },
        metrics.clone(),
    )?;
    let event = AuditEvent {
        request_id: "0123456789abcdef0123456789abcdef".into(),
        principal: "spiffe://yiwang.local/dept/320600-DSJ/city-ops".into(),
        dept: "320600-DSJ".into(),
        action: "records.read".into(),
        dataset: Some("320600-YJJ-00001".into()),
        provider_dept: Some("320600-YJJ".into()),
        fields: [
            "uscc",
            "name",
            "address",
            "licence_no",
            "legal_rep",
            "legal_rep_id",
        ]
        .map(String::from)
        .to_vec(),
        purpose: "危化品企业夜间用电核查".into(),
        decision: Some(AuditDecision::Allow),
        reason: "allowed by rule 'p, system, read, unconditional, any'".into(),
        rows: 2,
        bytes: 948,
        status: 200,
        ..Default::default()
    };
    let warmup = Duration::from_secs(1);
    let window = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let log = log.clone();
            let event = event.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let t = Instant::now();
                    if t - start >= warmup + window {
                        return Ok::<_, anyhow::Error>(lat);
                    }
                    log.append(event.clone()).await?;
                    if t - start >= warmup {
                        lat.push(t.elapsed());
                    }
                }
            })
        })
        .collect();
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    lat.sort_unstable();
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let commits = metrics.audit_commits.get();
    let records = lat.len() as f64 / window.as_secs_f64();
    let report = serde_json::json!({
        "sync": format!("{sync:?}").to_lowercase(),
        "clients": clients,
        "seconds": seconds,
        "records_per_s": records.round(),
        "records_per_commit": if commits > 0 { (log.head().seq as f64 / commits as f64 * 10.0).round() / 10.0 } else { 0.0 },
        "append_ms_p50": q(0.50),
        "append_ms_p99": q(0.99),
        "append_ms_max": lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        "records_written": log.head().seq,
        "dir": dir.display().to_string(),
    });
    drop(log);
    std::fs::remove_dir_all(&node_dir)
        .with_context(|| format!("cannot delete {}", node_dir.display()))?;
    Ok(report)
}
