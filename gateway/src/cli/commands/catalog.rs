//! `department` and `dataset`, with NDJSON imports.

use super::*;

pub(super) async fn department(c: DepartmentCommand) -> Result<i32> {
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

pub(super) async fn dataset(c: DatasetCommand) -> Result<i32> {
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
