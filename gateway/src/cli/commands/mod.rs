//! What each command does: dispatch here, one file per command group.

mod admin;
mod audit;
mod catalog;
mod data;

use admin::{cert, cluster};
use audit::audit;
use catalog::{dataset, department};
use data::{access, grant, records, role};

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Method;
use serde_json::{Value, json};
use yiwang_catalog::identity::SpiffeId;

use super::*;
use crate::config::NodeConfig;

/// Prints JSON to stdout; a closed pipe (`yiwang … | head`) is not an error.
fn print_json(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_default()
    );
}

fn read_json_file(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Synonym groups from text: one group a line, terms separated by commas (also the
/// full-width ，、) or whitespace; blank lines and `#` comments ignored.
fn parse_synonym_groups(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .map(|line| {
            line.split(|c: char| c == ',' || c == '，' || c == '、' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect::<Vec<String>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

fn split_csv(s: &Option<String>) -> Option<Vec<String>> {
    s.as_ref().map(|f| {
        f.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
}

/// Percent-encodes a header value so any UTF-8 purpose travels safely.
fn encode_header(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Builds `?a=b&c=d` from the present pairs.
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            ser.append_pair(k, v);
        }
    }
    let q = ser.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

pub async fn run(cmd: Command) -> Result<i32> {
    match cmd {
        Command::Demo {
            dir,
            port,
            admin_port,
            quiet,
        } => {
            let admin_port = admin_port.unwrap_or(port.checked_add(1).context("--port too large")?);
            crate::demo::run(crate::demo::DemoOptions {
                dir,
                port,
                admin_port,
                walkthrough: !quiet,
            })
            .await?;
            Ok(0)
        }
        Command::Serve { config } => {
            let cfg = NodeConfig::load(&config)?;
            crate::serve::run(cfg, |node| {
                Box::pin(async move { crate::demo::seed_from_config(&node).await })
            })
            .await?;
            Ok(0)
        }
        Command::Cert(c) => cert(c),
        Command::Cluster(c) => cluster(c).await,
        Command::Backup { out, stale, conn } => {
            let path = if stale {
                "/v1/cluster/backup?consistency=stale"
            } else {
                "/v1/cluster/backup"
            };
            let v = Client::new(&conn)?.get(path).await?;
            let bytes = serde_json::to_vec(&v)?;
            crate::pki::write_file(&out, &bytes, 0o600)?;
            let s = &v["state"];
            eprintln!(
                "backup of index {} written to {}: {} departments, {} datasets, {} grants",
                v["applied_index"],
                out.display(),
                s["departments"].as_object().map_or(0, |m| m.len()),
                s["datasets"].as_object().map_or(0, |m| m.len()),
                s["grants"].as_object().map_or(0, |m| m.len()),
            );
            Ok(0)
        }
        Command::Restore { from, data_dir } => {
            let state = crate::backup::restore(&from, &data_dir)?;
            eprintln!(
                "restored {} departments and {} datasets into {}; start the node with bootstrap = true",
                state.departments.len(),
                state.datasets.len(),
                data_dir.display()
            );
            Ok(0)
        }
        Command::Whoami { conn } => {
            print_json(&Client::new(&conn)?.get("/v1/whoami").await?);
            Ok(0)
        }
        Command::Authz(AuthzCommand::Explain {
            dataset,
            principal,
            action,
            conn,
        }) => {
            let path = format!(
                "/v1/authz/explain{}",
                query(&[
                    ("dataset", Some(dataset)),
                    ("principal", principal),
                    ("action", Some(action)),
                ])
            );
            let v = Client::new(&conn)?.get(&path).await?;
            print_json(&v);
            Ok(if v["allowed"] == true { 0 } else { 3 })
        }
        Command::Department(c) => department(c).await,
        Command::Dataset(c) => dataset(c).await,
        Command::Search {
            query: q,
            dept,
            share_type,
            theme,
            update_cycle,
            limit,
            offset,
            sort,
            conn,
        } => {
            let path = format!(
                "/v1/search{}",
                query(&[
                    ("q", Some(q)),
                    ("dept", dept),
                    ("share_type", share_type),
                    ("theme", theme),
                    ("update_cycle", update_cycle),
                    ("limit", Some(limit.to_string())),
                    ("offset", Some(offset.to_string())),
                    ("sort", Some(sort)),
                ])
            );
            print_json(&Client::new(&conn)?.get(&path).await?);
            Ok(0)
        }
        Command::Index(IndexCommand::Rebuild { conn }) => {
            eprintln!("rebuilding the search index of {} …", conn.server);
            let client = Client::new(&conn)?;
            let report = client
                .json(client.request(Method::POST, "/v1/search/rebuild"))
                .await?;
            eprintln!(
                "indexed {} datasets in {} ms (catalog index {})",
                report["docs"], report["elapsed_ms"], report["applied"]
            );
            print_json(&report);
            Ok(0)
        }
        Command::Index(IndexCommand::Synonyms { conn }) => {
            print_json(&Client::new(&conn)?.get("/v1/search/synonyms").await?);
            Ok(0)
        }
        Command::Index(IndexCommand::SetSynonyms { file, conn }) => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let groups = parse_synonym_groups(&text);
            let client = Client::new(&conn)?;
            let stored = client
                .json(
                    client
                        .request(Method::PUT, "/v1/search/synonyms")
                        .json(&json!({ "groups": groups })),
                )
                .await?;
            eprintln!(
                "{} synonym group(s) set",
                stored["groups"].as_array().map_or(0, Vec::len)
            );
            Ok(0)
        }
        Command::Records {
            dataset,
            purpose,
            fields,
            filter,
            limit,
            cursor,
            format,
            all,
            conn,
        } => {
            records(
                &conn, &dataset, &purpose, fields, filter, limit, cursor, &format, all,
            )
            .await
        }
        Command::Query {
            sql,
            file,
            purpose,
            format,
            out,
            conn,
        } => {
            let sql = match (sql, file) {
                (Some(s), _) => s,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
                (None, None) => bail!("give the SQL or --file"),
            };
            if format == "arrow" && out.is_none() {
                bail!("--format arrow writes binary: give --out FILE");
            }
            let client = Client::new(&conn)?;
            let resp = client
                .send(
                    client
                        .request(Method::POST, "/v1/query")
                        .json(&json!({"sql": sql, "purpose": purpose, "format": format})),
                )
                .await?;
            let rows = resp
                .headers()
                .get("x-row-count")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let request_id = resp
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_string();
            // Large answers are streamed: written as they arrive, except JSON for the
            // terminal, which is printed whole.
            let mut sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None if format == "json" => Box::new(Vec::new()),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut held = Vec::new();
            let mut resp = resp;
            let (mut bytes, mut lines) = (0u64, 0u64);
            // Progress on a long answer written to a file, for a person watching.
            let show_progress = out.is_some() && std::io::stderr().is_terminal();
            let mut last_report = std::time::Instant::now();
            loop {
                let chunk = match resp.chunk().await {
                    Ok(c) => c,
                    Err(e) => {
                        drop(sink);
                        // A partial file must not pass for the answer.
                        if let Some(p) = &out {
                            let _ = std::fs::remove_file(p);
                        }
                        return Err(anyhow!(
                            "the answer was cut off after {bytes} bytes ({e}); the node's log and the \
                             audit trail's completion record for request {request_id} say why"
                        ));
                    }
                };
                let Some(chunk) = chunk else { break };
                bytes += chunk.len() as u64;
                if format == "ndjson" {
                    lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                }
                if show_progress && last_report.elapsed() >= std::time::Duration::from_secs(1) {
                    eprint!("\r{:.1} MiB received", bytes as f64 / 1048576.0);
                    last_report = std::time::Instant::now();
                }
                if out.is_none() && format == "json" {
                    held.extend_from_slice(&chunk);
                } else {
                    sink.write_all(&chunk)?;
                }
            }
            sink.flush()?;
            drop(sink);
            if show_progress {
                eprint!("\r");
            }
            // A streamed answer has no row count header; NDJSON rows are its lines.
            let rows = rows.or_else(|| (format == "ndjson").then(|| lines.to_string()));
            match out {
                Some(p) => match rows {
                    Some(rows) => eprintln!("{rows} row(s) written to {}", p.display()),
                    None => eprintln!("{bytes} bytes written to {}", p.display()),
                },
                None if format == "json" => {
                    let v: Value = serde_json::from_slice(&held).context("bad JSON from server")?;
                    print_json(&v);
                }
                None => {}
            }
            Ok(0)
        }
        Command::Access(c) => access(c).await,
        Command::Grant(c) => grant(c).await,
        Command::Role(c) => role(c).await,
        Command::Audit(c) => audit(c).await,
    }
}
