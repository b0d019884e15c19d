//! `records`, `access`, `grant` and `role`.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) async fn records(
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

pub(super) async fn access(c: AccessCommand) -> Result<i32> {
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

pub(super) async fn grant(c: GrantCommand) -> Result<i32> {
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

pub(super) async fn role(c: RoleCommand) -> Result<i32> {
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
