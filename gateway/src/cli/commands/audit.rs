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
