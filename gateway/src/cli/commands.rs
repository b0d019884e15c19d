//! What each command does.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
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
        Command::Backup { out, conn } => {
            let v = Client::new(&conn)?.get("/v1/cluster/backup").await?;
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
                ])
            );
            print_json(&Client::new(&conn)?.get(&path).await?);
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
                .unwrap_or("?")
                .to_string();
            let body = resp.bytes().await.context("cannot read the result")?;
            match out {
                Some(p) => {
                    std::fs::write(&p, &body)
                        .with_context(|| format!("cannot write {}", p.display()))?;
                    eprintln!("{rows} rows written to {}", p.display());
                }
                None if format == "json" => {
                    let v: Value = serde_json::from_slice(&body).context("bad JSON from server")?;
                    print_json(&v);
                }
                None => std::io::stdout().write_all(&body)?,
            }
            Ok(0)
        }
        Command::Access(c) => access(c).await,
        Command::Grant(c) => grant(c).await,
        Command::Role(c) => role(c).await,
        Command::Audit(c) => audit(c).await,
    }
}

async fn cluster(c: ClusterCommand) -> Result<i32> {
    let post = |conn: &Connection, path: &str, body: Value| {
        let conn = conn.clone();
        let path = path.to_string();
        async move {
            let client = Client::new(&conn)?;
            let v = client
                .json(client.request(Method::POST, &path).json(&body))
                .await?;
            print_json(&v);
            Ok::<i32, anyhow::Error>(0)
        }
    };
    match c {
        ClusterCommand::Status { conn } => {
            print_json(&Client::new(&conn)?.get("/v1/cluster").await?);
            Ok(0)
        }
        ClusterCommand::Init { conn } => post(&conn, "/v1/cluster/init", json!({})).await,
        ClusterCommand::AddLearner { id, addr, conn } => {
            post(
                &conn,
                "/v1/cluster/learners",
                json!({"id": id, "addr": addr}),
            )
            .await
        }
        ClusterCommand::Promote { ids, conn } => {
            post(&conn, "/v1/cluster/voters", json!({"ids": ids})).await
        }
        ClusterCommand::Remove { id, conn } => {
            post(&conn, "/v1/cluster/remove", json!({"id": id})).await
        }
        ClusterCommand::LocalSetup {
            dir,
            nodes,
            ip_prefix,
            port,
            admin_port,
            advertise_port,
            demo,
            election_ms,
            snapshot_logs,
        } => {
            if nodes == 0 || nodes > 9 {
                bail!("--nodes must be between 1 and 9");
            }
            let paths = crate::demo::local_setup(&crate::demo::LocalCluster {
                dir,
                nodes,
                ip_prefix,
                port,
                admin_port,
                advertise_port,
                demo,
                election_min_ms: election_ms,
                snapshot_logs,
            })?;
            for p in paths {
                println!("{}", p.display());
            }
            Ok(0)
        }
    }
}

fn cert(c: CertCommand) -> Result<i32> {
    match c {
        CertCommand::InitCa { out, trust_domain } => {
            let path = crate::pki::init_ca(&out, &trust_domain)?;
            println!(
                "created CA {} (keep {} secret)",
                path.display(),
                out.join(crate::pki::CA_KEY).display()
            );
        }
        CertCommand::Issue {
            ca,
            dept,
            name,
            node,
            ip,
            dns,
            out,
            trust_domain,
            days,
        } => {
            let id = match (node, dept) {
                (Some(n), _) => SpiffeId::node(&trust_domain, n),
                (None, Some(d)) => SpiffeId::principal(&trust_domain, &d, &name),
                (None, None) => bail!("give --dept CODE (people and systems) or --node ID (nodes)"),
            };
            if SpiffeId::parse(&id.to_string()).is_none() {
                bail!("'{id}' is not a valid SPIFFE ID: check --dept, --name and --trust-domain");
            }
            let out = out.unwrap_or_else(|| ca.clone());
            let (cert, key) = crate::pki::issue(
                &ca,
                &out,
                &crate::pki::IssueRequest {
                    spiffe: &id,
                    name: &name,
                    ips: &ip,
                    dns: &dns,
                    days,
                },
            )?;
            println!(
                "issued {id}\n  certificate {}\n  key         {}",
                cert.display(),
                key.display()
            );
        }
    }
    Ok(0)
}

async fn department(c: DepartmentCommand) -> Result<i32> {
    match c {
        DepartmentCommand::List { conn } => {
            print_json(&Client::new(&conn)?.get("/v1/departments").await?)
        }
        DepartmentCommand::Show { code, conn } => print_json(
            &Client::new(&conn)?
                .get(&format!("/v1/departments/{code}"))
                .await?,
        ),
        DepartmentCommand::Register {
            code,
            name,
            region,
            conn,
        } => {
            let client = Client::new(&conn)?;
            let body = json!({"code": code, "name": name, "region": region});
            print_json(
                &client
                    .json(client.request(Method::POST, "/v1/departments").json(&body))
                    .await?,
            );
        }
        DepartmentCommand::Import { file, chunk, conn } => {
            return import(&Client::new(&conn)?, "/v1/departments/bulk", &file, chunk).await;
        }
    }
    Ok(0)
}

async fn dataset(c: DatasetCommand) -> Result<i32> {
    match c {
        DatasetCommand::Register { file, conn } => {
            let client = Client::new(&conn)?;
            let body = read_json_file(&file)?;
            print_json(
                &client
                    .json(client.request(Method::POST, "/v1/datasets").json(&body))
                    .await?,
            );
        }
        DatasetCommand::Update {
            file,
            version,
            conn,
        } => {
            let client = Client::new(&conn)?;
            let body = read_json_file(&file)?;
            let id = body["id"]
                .as_str()
                .with_context(|| format!("{} has no \"id\"", file.display()))?;
            let path = format!(
                "/v1/datasets/{id}{}",
                query(&[("version", version.map(|v| v.to_string()))])
            );
            print_json(
                &client
                    .json(client.request(Method::PUT, &path).json(&body))
                    .await?,
            );
        }
        DatasetCommand::Show { id, conn } => print_json(
            &Client::new(&conn)?
                .get(&format!("/v1/datasets/{id}"))
                .await?,
        ),
        DatasetCommand::List {
            dept,
            share_type,
            status,
            limit,
            offset,
            conn,
        } => {
            let path = format!(
                "/v1/datasets{}",
                query(&[
                    ("dept", dept),
                    ("share_type", share_type),
                    ("status", status),
                    ("limit", Some(limit.to_string())),
                    ("offset", Some(offset.to_string())),
                ])
            );
            print_json(&Client::new(&conn)?.get(&path).await?);
        }
        DatasetCommand::Retire { id, conn } => {
            let client = Client::new(&conn)?;
            print_json(
                &client
                    .json(client.request(Method::DELETE, &format!("/v1/datasets/{id}")))
                    .await?,
            );
        }
        DatasetCommand::Import { file, chunk, conn } => {
            return import(&Client::new(&conn)?, "/v1/datasets/bulk", &file, chunk).await;
        }
        DatasetCommand::ImportSchema {
            source,
            table,
            id,
            dept,
            conn,
        } => {
            let client = Client::new(&conn)?;
            let me = client.get("/v1/whoami").await?;
            let cols = client
                .get(&format!("/v1/sources/{source}/tables/{table}/columns"))
                .await?;
            let fields: Vec<Value> = cols["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| json!({"name": c["name"], "title": c["name"], "type": c["type"], "sensitivity": "internal"}))
                .collect();
            let skeleton = json!({
                "id": id.unwrap_or_else(|| "<resource code>".into()),
                "dept": dept.unwrap_or_else(|| me["dept"].as_str().unwrap_or_default().to_string()),
                "title": "<名称>",
                "summary": "<摘要>",
                "keywords": [],
                "theme": "<分类>",
                "format": "table",
                "share_type": "conditional",
                "share_condition": "<共享条件>",
                "open_type": "",
                "update_cycle": "irregular",
                "fields": fields,
                "source": {"id": source, "table": table},
            });
            print_json(&skeleton);
            eprintln!(
                "{} fields read from {source}/{table}; complete titles, sensitivity and the placeholders, then `yiwang dataset register FILE`",
                fields.len()
            );
        }
    }
    Ok(0)
}

/// Sends an NDJSON file in chunks, with progress on stderr and a summary at the end.
/// Exits 1 when any line failed (each failure is listed with its line number).
async fn import(client: &Client, path: &str, file: &Path, chunk: usize) -> Result<i32> {
    if chunk == 0 {
        bail!("--chunk must be positive");
    }
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let lines: Vec<String> = std::io::BufReader::new(f)
        .lines()
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read {}", file.display()))?;
    let total = lines.len();
    let (mut created, mut failed) = (0usize, 0usize);
    let mut failures = Vec::new();
    for (i, part) in lines.chunks(chunk).enumerate() {
        let offset = i * chunk;
        let body = part.join("\n");
        if body.trim().is_empty() {
            continue;
        }
        let report = client
            .json(
                client
                    .request(Method::POST, path)
                    .header("content-type", "application/x-ndjson")
                    .body(body),
            )
            .await?;
        created += report["created"].as_u64().unwrap_or(0) as usize;
        failed += report["failed"].as_u64().unwrap_or(0) as usize;
        for r in report["results"].as_array().into_iter().flatten() {
            if r["status"] == "failed" {
                let line = r["line"].as_u64().unwrap_or(0) as usize + offset;
                failures.push(format!(
                    "line {line}: {}: {}",
                    r["error"]["code"].as_str().unwrap_or("error"),
                    r["error"]["message"].as_str().unwrap_or("")
                ));
            }
        }
        eprint!(
            "\rimported {}/{total} lines ({created} created, {failed} failed)",
            (offset + part.len()).min(total)
        );
    }
    eprintln!();
    for f in failures.iter().take(50) {
        eprintln!("  {f}");
    }
    if failures.len() > 50 {
        eprintln!("  … and {} more", failures.len() - 50);
    }
    println!(
        "{}",
        json!({"lines": total, "created": created, "failed": failed})
    );
    Ok(if failed > 0 { 1 } else { 0 })
}

#[allow(clippy::too_many_arguments)]
async fn records(
    conn: &Connection,
    dataset: &str,
    purpose: &str,
    fields: Option<String>,
    filter: Option<String>,
    limit: Option<usize>,
    mut cursor: Option<String>,
    format: &str,
    all: bool,
) -> Result<i32> {
    if all && format == "json" {
        bail!("--all streams every page: use --format ndjson or csv");
    }
    let client = Client::new(conn)?;
    let mut first = true;
    loop {
        let path = format!(
            "/v1/datasets/{dataset}/records{}",
            query(&[
                ("fields", fields.clone()),
                ("filter", filter.clone()),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor.clone()),
                ("format", Some(format.to_string())),
            ])
        );
        let resp = client
            .send(
                client
                    .request(Method::GET, &path)
                    .header("x-purpose", encode_header(purpose)),
            )
            .await?;
        let next = resp
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = resp.bytes().await.context("cannot read the response")?;
        let mut out = std::io::stdout().lock();
        if format == "json" {
            let v: Value = serde_json::from_slice(&body).context("bad JSON from server")?;
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        } else if format == "csv" && !first {
            // Later pages repeat the header line; drop it.
            let text = String::from_utf8_lossy(&body);
            out.write_all(text.split_once("\r\n").map_or("", |x| x.1).as_bytes())?;
        } else {
            out.write_all(&body)?;
        }
        first = false;
        match (all, next) {
            (true, Some(n)) => cursor = Some(n),
            (false, Some(n)) => {
                eprintln!("more rows: --cursor {n}");
                break;
            }
            _ => break,
        }
    }
    Ok(0)
}

async fn access(c: AccessCommand) -> Result<i32> {
    match c {
        AccessCommand::Request {
            dataset,
            purpose,
            fields,
            days,
            conn,
        } => {
            let client = Client::new(&conn)?;
            let body = json!({"dataset": dataset, "purpose": purpose, "fields": split_csv(&fields).unwrap_or_default(), "days": days});
            print_json(
                &client
                    .json(
                        client
                            .request(Method::POST, "/v1/access-requests")
                            .json(&body),
                    )
                    .await?,
            );
        }
        AccessCommand::List {
            state,
            dataset,
            conn,
        } => {
            let path = format!(
                "/v1/access-requests{}",
                query(&[("state", state), ("dataset", dataset)])
            );
            print_json(&Client::new(&conn)?.get(&path).await?);
        }
        AccessCommand::Approve {
            id,
            fields,
            row_filter,
            days,
            conn,
        } => {
            let client = Client::new(&conn)?;
            let mut body = json!({});
            if let Some(f) = split_csv(&fields) {
                body["fields"] = json!(f);
            }
            if let Some(r) = row_filter {
                body["row_filter"] = json!(r);
            }
            if let Some(d) = days {
                body["days"] = json!(d);
            }
            let path = format!("/v1/access-requests/{id}/approve");
            print_json(
                &client
                    .json(client.request(Method::POST, &path).json(&body))
                    .await?,
            );
        }
        AccessCommand::Reject { id, reason, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("/v1/access-requests/{id}/reject");
            print_json(
                &client
                    .json(
                        client
                            .request(Method::POST, &path)
                            .json(&json!({"reason": reason})),
                    )
                    .await?,
            );
        }
        AccessCommand::Withdraw { id, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("/v1/access-requests/{id}/withdraw");
            print_json(&client.json(client.request(Method::POST, &path)).await?);
        }
    }
    Ok(0)
}

async fn grant(c: GrantCommand) -> Result<i32> {
    match c {
        GrantCommand::List {
            consumer,
            dataset,
            conn,
        } => {
            let path = format!(
                "/v1/grants{}",
                query(&[("consumer", consumer), ("dataset", dataset)])
            );
            print_json(&Client::new(&conn)?.get(&path).await?);
        }
        GrantCommand::Revoke { id, conn } => {
            let client = Client::new(&conn)?;
            print_json(
                &client
                    .json(client.request(Method::DELETE, &format!("/v1/grants/{id}")))
                    .await?,
            );
        }
    }
    Ok(0)
}

async fn role(c: RoleCommand) -> Result<i32> {
    match c {
        RoleCommand::List { dept, conn } => print_json(
            &Client::new(&conn)?
                .get(&format!("/v1/roles{}", query(&[("dept", dept)])))
                .await?,
        ),
        RoleCommand::Bind {
            principal,
            role,
            conn,
        } => {
            let client = Client::new(&conn)?;
            let body = json!({"principal": principal, "role": role});
            print_json(
                &client
                    .json(client.request(Method::POST, "/v1/roles").json(&body))
                    .await?,
            );
        }
        RoleCommand::Unbind {
            principal,
            role,
            conn,
        } => {
            let client = Client::new(&conn)?;
            let body = json!({"principal": principal, "role": role});
            print_json(
                &client
                    .json(client.request(Method::DELETE, "/v1/roles").json(&body))
                    .await?,
            );
        }
    }
    Ok(0)
}

async fn audit(c: AuditCommand) -> Result<i32> {
    match c {
        AuditCommand::Search {
            from,
            to,
            principal,
            dept,
            dataset,
            decision,
            limit,
            conn,
        } => {
            let path = format!(
                "/v1/audit{}",
                query(&[
                    ("from", from),
                    ("to", to),
                    ("principal", principal),
                    ("dept", dept),
                    ("dataset", dataset),
                    ("decision", decision),
                    ("limit", Some(limit.to_string())),
                ])
            );
            print_json(&Client::new(&conn)?.get(&path).await?);
            Ok(0)
        }
        AuditCommand::Verify {
            file: Some(file), ..
        } => {
            let report = crate::audit::verify_file(&file, None, false)?;
            print_json(&serde_json::to_value(&report)?);
            if report.ok {
                eprintln!(
                    "audit chain OK: {} records, head seq {}",
                    report.records, report.head_seq
                );
                Ok(0)
            } else {
                eprintln!("audit chain BROKEN: {} problem(s)", report.problem_count);
                Ok(1)
            }
        }
        AuditCommand::Verify { file: None, conn } => {
            let v = Client::new(&conn)?.get("/v1/audit/verify").await?;
            print_json(&v);
            if v["ok"] == true {
                Ok(0)
            } else {
                eprintln!("audit chain BROKEN");
                Ok(1)
            }
        }
        AuditCommand::Export {
            from,
            to,
            out,
            conn,
        } => {
            let client = Client::new(&conn)?;
            let mut sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut cursor: Option<String> = None;
            let mut n = 0u64;
            loop {
                let path = format!(
                    "/v1/audit{}",
                    query(&[
                        ("from", from.clone()),
                        ("to", to.clone()),
                        ("limit", Some("1000".into())),
                        ("cursor", cursor.clone())
                    ])
                );
                let page = client.get(&path).await?;
                for r in page["records"].as_array().into_iter().flatten() {
                    writeln!(sink, "{}", serde_json::to_string(r)?)?;
                    n += 1;
                }
                match page["next_cursor"].as_u64() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
                eprint!("\rexported {n} records");
            }
            sink.flush()?;
            eprintln!("\rexported {n} records");
            Ok(0)
        }
    }
}
