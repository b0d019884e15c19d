//! `audit search|verify|export`.

use super::*;

pub(super) async fn audit(c: AuditCommand) -> Result<i32> {
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
