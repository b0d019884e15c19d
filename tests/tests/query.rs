//! Cross-department SQL through the gateway: the Nantong scenario, policy in the plan,
//! output formats and the bad inputs.

use serde_json::{Value, json};
use yiwang_tests::{Api, DemoNode};

fn query(api: &Api, sql: &str) -> yiwang_tests::Resp {
    api.post(
        "/v1/query",
        &json!({"sql": sql, "purpose": "核查责令关停企业夜间生产"}),
    )
}

/// Requests access for the consumer and approves it as the provider's steward.
fn grant(node: &DemoNode, consumer: &str, steward: &str, dataset: &str, fields: &[&str]) {
    let r = node.client(consumer).post(
        "/v1/access-requests",
        &json!({"dataset": dataset, "fields": fields, "purpose": "核查责令关停企业夜间生产"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = node
        .client(steward)
        .post(&format!("/v1/access-requests/{id}/approve"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn the_scenario_query_finds_the_plant_only_with_the_grants_it_needs() {
    let node = DemoNode::start();
    let api = node.client("dsj-system");
    // The demo's own scenario query, as its walk-through runs it.
    let scenario = std::fs::read_to_string(node.dir.join("scenario.sql")).unwrap();
    let query_body: Value =
        serde_json::from_slice(&std::fs::read(node.dir.join("scenario-query.json")).unwrap())
            .unwrap();
    assert_eq!(query_body["sql"], scenario.as_str());
    let r = query(&api, &scenario);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.message().contains("320600-GDGS-00001") || r.message().contains("320600-JTJ-00001"),
        "{}",
        r.body
    );

    grant(
        &node,
        "dsj-system",
        "jtj-steward",
        "320600-JTJ-00001",
        &["consignee_uscc", "pass_time"],
    );
    let r = query(&api, &scenario);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.message().contains("320600-GDGS-00001"),
        "the missing grant is named: {}",
        r.body
    );

    // A grant without the column the query needs: the column is named.
    grant(
        &node,
        "dsj-system",
        "gdgs-steward",
        "320600-GDGS-00001",
        &["uscc", "kwh"],
    );
    let r = query(&api, &scenario);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.message().contains("'hour'"),
        "the column is named: {}",
        r.body
    );

    grant(
        &node,
        "dsj-system",
        "gdgs-steward",
        "320600-GDGS-00001",
        &["uscc", "hour", "kwh"],
    );
    let r = query(&api, &scenario);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "exactly the shut-down plant: {body}");
    assert_eq!(rows[0]["uscc"], "91320600MA1P5X7Q2K");
    assert_eq!(rows[0]["name"], "南通恒昌化工有限公司");
    assert!(rows[0]["night_entries"].as_i64().unwrap() >= 20, "{body}");
    assert!(rows[0]["night_kwh"].as_f64().unwrap() > 5000.0, "{body}");
    assert_eq!(r.header("x-row-count").as_deref(), Some("1"));

    // The audit record names every dataset and field the query touched.
    let rid = r.header("x-request-id").unwrap();
    let audit = node
        .client("auditor")
        .get("/v1/audit?action=query.run&limit=100")
        .json();
    let rec = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["request_id"] == rid.as_str())
        .cloned()
        .unwrap();
    assert_eq!(rec["decision"], "allow");
    assert_eq!(rec["rows"], 1);
    assert_eq!(
        rec["datasets"],
        json!(["320600-GDGS-00001", "320600-JTJ-00001", "320600-YJJ-00001"])
    );
    assert_eq!(
        rec["providers"],
        json!(["320600-GDGS", "320600-JTJ", "320600-YJJ"])
    );
    let fields: Vec<&str> = rec["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for f in [
        "320600-JTJ-00001.pass_time",
        "320600-GDGS-00001.hour",
        "320600-GDGS-00001.kwh",
        "320600-YJJ-00001.status",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    // Each provider's department auditor sees it.
    let yjj = node
        .client("yjj-auditor")
        .get("/v1/audit?action=query.run&limit=100")
        .json();
    assert!(
        yjj["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["request_id"] == rid.as_str())
    );
}

#[test]
fn a_grant_row_filter_limits_sql_as_it_limits_records() {
    let node = DemoNode::start();
    let trucks = "320600-JTJ-00001";
    let own = node.client("jtj-system").read(
        &format!("/v1/datasets/{trucks}/records?limit=1&fields=consignee_uscc"),
        "p",
    );
    let company = own.json()["rows"][0]["consignee_uscc"]
        .as_str()
        .unwrap()
        .to_string();
    let r = node.client("dsj-system").post(
        "/v1/access-requests",
        &json!({"dataset": trucks, "fields": ["plate", "pass_time", "consignee_uscc"], "purpose": "核查"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = node.client("jtj-steward").post(
        &format!("/v1/access-requests/{id}/approve"),
        &json!({"row_filter": format!("consignee_uscc = '{company}'")}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let api = node.client("dsj-system");
    let records = api.read(
        &format!("/v1/datasets/{trucks}/records?limit=1000&fields=consignee_uscc"),
        "核查",
    );
    assert_eq!(records.status, 200, "{}", records.body);
    let rows = records.json()["rows"].as_array().unwrap().clone();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["consignee_uscc"] == company.as_str()));
    let r = query(
        &api,
        &format!(
            r#"SELECT consignee_uscc, count(*) AS n FROM "320600-JTJ"."{trucks}" GROUP BY consignee_uscc"#
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let groups = r.json()["rows"].as_array().unwrap().clone();
    assert_eq!(
        groups.len(),
        1,
        "only the granted company's rows: {groups:?}"
    );
    assert_eq!(groups[0]["consignee_uscc"], company.as_str());
    assert_eq!(groups[0]["n"].as_u64().unwrap(), rows.len() as u64);
    let r = query(
        &api,
        &format!(
            r#"SELECT plate FROM "320600-JTJ"."{trucks}" WHERE consignee_uscc <> '{company}'"#
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["rows"].as_array().unwrap().len(), 0);
}

#[test]
fn masking_is_the_same_in_records_and_sql() {
    let node = DemoNode::start();
    let api = node.client("dsj-system");
    let cols = "uscc,legal_rep_id,contact_phone";
    let records = api.read(
        &format!("/v1/datasets/320600-YJJ-00001/records?limit=5&fields={cols}"),
        "p",
    );
    assert_eq!(records.status, 200, "{}", records.body);
    let masked = records.header("x-masked-fields").unwrap();
    assert!(
        masked.contains("legal_rep_id") && masked.contains("contact_phone"),
        "{masked}"
    );
    let rows = records.json()["rows"].as_array().unwrap().clone();
    let usccs: Vec<String> = rows
        .iter()
        .map(|r| format!("'{}'", r["uscc"].as_str().unwrap()))
        .collect();
    let r = query(
        &api,
        &format!(
            r#"SELECT {cols} FROM "320600-YJJ"."320600-YJJ-00001" WHERE uscc IN ({})"#,
            usccs.join(",")
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let sql: Vec<serde_json::Value> = r.json()["rows"].as_array().unwrap().clone();
    assert_eq!(sql.len(), rows.len(), "{sql:?}");
    for row in &rows {
        let same = sql
            .iter()
            .find(|s| s["uscc"] == row["uscc"])
            .unwrap_or_else(|| panic!("{row} not in the SQL result {sql:?}"));
        for c in ["legal_rep_id", "contact_phone"] {
            assert_eq!(same[c], row[c], "{c} differs between records and SQL");
            assert!(
                row[c].as_str().unwrap().contains("****"),
                "{c} not masked: {row}"
            );
        }
    }
}

#[test]
fn masked_and_hidden_columns_cannot_leak() {
    let node = DemoNode::start();
    let api = node.client("dsj-system");
    // Masked values come out masked.
    let r = query(
        &api,
        r#"SELECT uscc, legal_rep_id FROM "320600-YJJ"."320600-YJJ-00001" ORDER BY uscc LIMIT 3"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for row in r.json()["rows"].as_array().unwrap() {
        assert!(
            row["legal_rep_id"].as_str().unwrap().contains("********"),
            "{row}"
        );
    }
    // Filtering on a masked column compares masked values: a real ID finds nothing.
    let own = node.client("yjj-system").read(
        "/v1/datasets/320600-YJJ-00001/records?limit=1&fields=legal_rep_id",
        "p",
    );
    let real = own.json()["rows"][0]["legal_rep_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = query(
        &api,
        &format!(
            r#"SELECT uscc FROM "320600-YJJ"."320600-YJJ-00001" WHERE legal_rep_id = '{real}'"#
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["rows"].as_array().unwrap().len(),
        0,
        "a masked column must not match real values"
    );
    // Grouping and aggregates see masked values too (the source computes GROUP BYs,
    // but never over a masked column): the real ID is no group's key or maximum.
    for sql in [
        r#"SELECT legal_rep_id, count(*) AS n FROM "320600-YJJ"."320600-YJJ-00001" GROUP BY legal_rep_id"#,
        r#"SELECT max(legal_rep_id) AS legal_rep_id, count(*) AS n FROM "320600-YJJ"."320600-YJJ-00001""#,
    ] {
        let r = query(&api, sql);
        assert_eq!(r.status, 200, "{sql}: {}", r.body);
        let rows = r.json()["rows"].as_array().unwrap().clone();
        assert!(!rows.is_empty(), "{sql}");
        for row in &rows {
            let id = row["legal_rep_id"].as_str().unwrap();
            assert!(id.contains("****") && id != real, "{sql}: {row}");
        }
    }
    // A column outside the grant cannot be used anywhere: select, filter, join, order.
    grant(
        &node,
        "dsj-system",
        "jtj-steward",
        "320600-JTJ-00001",
        &["plate", "pass_time"],
    );
    for sql in [
        r#"SELECT driver_phone FROM "320600-JTJ"."320600-JTJ-00001""#,
        r#"SELECT plate FROM "320600-JTJ"."320600-JTJ-00001" WHERE driver_phone LIKE '138%'"#,
        r#"SELECT count(*) FROM "320600-JTJ"."320600-JTJ-00001" GROUP BY driver_phone"#,
        r#"SELECT plate FROM "320600-JTJ"."320600-JTJ-00001" ORDER BY driver_phone"#,
        r#"SELECT t.plate FROM "320600-JTJ"."320600-JTJ-00001" t JOIN "320600-YJJ"."320600-YJJ-00001" e ON e.contact_phone = t.driver_phone"#,
    ] {
        let r = query(&api, sql);
        assert_eq!(r.status, 403, "{sql}: {}", r.body);
        assert!(
            r.message().contains("driver_"),
            "{sql}: the column is named: {}",
            r.body
        );
    }
    // `*` includes columns outside the grant: the first of them is named.
    let r = query(&api, r#"SELECT * FROM "320600-JTJ"."320600-JTJ-00001""#);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.message().contains("'checkpoint'"), "{}", r.body);
    let r = query(
        &api,
        r#"SELECT count(*) AS n FROM "320600-JTJ"."320600-JTJ-00001" WHERE pass_time >= '2026-10-15'"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["rows"][0]["n"].as_i64().unwrap() > 0);
    // none datasets never leave their department, even in a query.
    let r = query(
        &api,
        r#"SELECT count(*) FROM "320600-YJJ"."320600-YJJ-00002""#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.message().contains("320600-YJJ-00002"), "{}", r.body);
}

#[test]
fn output_formats() {
    let node = DemoNode::start();
    let api = node.client("dsj-system");
    let sql =
        r#"SELECT uscc, name, capacity FROM "320600-YJJ"."320600-YJJ-00001" ORDER BY uscc LIMIT 5"#;
    let send = |format: &str| {
        api.post(
            "/v1/query",
            &json!({"sql": sql, "purpose": "p", "format": format}),
        )
    };
    let j = send("json");
    assert_eq!(j.json()["columns"], json!(["uscc", "name", "capacity"]));
    assert_eq!(j.json()["row_count"], 5);
    let n = send("ndjson");
    assert_eq!(
        n.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    let lines: Vec<Value> = n
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["uscc"], j.json()["rows"][0]["uscc"]);
    let c = send("csv");
    assert!(c.body.starts_with("uscc,name,capacity"), "{}", c.body);
    assert_eq!(c.body.lines().count(), 6);
    let a = api.send(
        api.req(reqwest::Method::POST, "/v1/query")
            .header("accept", "application/vnd.apache.arrow.stream")
            .json(&json!({"sql": sql, "purpose": "p"})),
    );
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("content-type").as_deref(),
        Some("application/vnd.apache.arrow.stream")
    );
    assert_eq!(a.header("x-row-count").as_deref(), Some("5"));
}

#[test]
fn bad_queries_get_clear_errors() {
    let node = DemoNode::start();
    let api = node.client("dsj-system");
    let t = r#""320600-YJJ"."320600-YJJ-00001""#;
    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("SELEC 1".into(), 400, "invalid_sql", ""),
        (format!("SELECT nope FROM {t}"), 400, "invalid_sql", "nope"),
        (
            r#"SELECT * FROM "320600-YJJ"."NOPE-1""#.into(),
            404,
            "not_found",
            "NOPE-1",
        ),
        (
            "SELECT * FROM hazchem_enterprises".into(),
            400,
            "invalid_sql",
            "<dept-code>",
        ),
        (format!("DROP TABLE {t}"), 400, "statement_not_allowed", ""),
        (
            format!("INSERT INTO {t} (uscc) VALUES ('x')"),
            400,
            "statement_not_allowed",
            "",
        ),
        (format!("DELETE FROM {t}"), 400, "statement_not_allowed", ""),
        (
            format!("SELECT uscc FROM {t}; SELECT name FROM {t}"),
            400,
            "invalid_sql",
            "one statement",
        ),
        ("SELECT 1".into(), 400, "invalid_sql", "reads no dataset"),
        ("".into(), 400, "invalid_sql", "empty"),
    ];
    for (sql, status, code, needle) in cases {
        let r = query(&api, &sql);
        assert_eq!(r.status, status, "{sql}: {}", r.body);
        assert_eq!(r.code(), code, "{sql}: {}", r.body);
        assert!(r.message().contains(needle), "{sql}: {}", r.body);
    }
    let r = api.post(
        "/v1/query",
        &json!({"sql": format!("SELECT uscc FROM {t}")}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("purpose"), "{}", r.body);
    let r = api.post(
        "/v1/query",
        &json!({"sql": format!("SELECT uscc FROM {t}"), "purpose": "p", "format": "xml"}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // Too many rows: a cross join of two tables is refused, and the node stays up.
    let r = query(
        &api,
        &format!("SELECT a.uscc FROM {t} a, {t} b, {t} c, {t} d"),
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.code(), "too_many_rows");
    assert_eq!(
        query(&api, &format!("SELECT count(*) FROM {t}")).status,
        200
    );
}

#[test]
fn dates_and_times_read_the_same_in_records_and_sql() {
    let node = DemoNode::start();
    // 交通运输局 reads its own truck entries (pass_time is a datetime field).
    let api = node.client("jtj-system");
    let records = api.read(
        "/v1/datasets/320600-JTJ-00001/records?limit=10000&fields=pass_time",
        "p",
    );
    assert_eq!(records.status, 200, "{}", records.body);
    assert!(
        records.json()["next_cursor"].is_null(),
        "the whole dataset in one page"
    );
    let mut times: Vec<String> = records.json()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["pass_time"].as_str().map(String::from))
        .collect();
    times.sort();
    assert!(times.len() > 100, "{}", times.len());
    let r = query(
        &api,
        r#"SELECT min(pass_time) AS first, max(pass_time) AS last, count(pass_time) AS n
           FROM "320600-JTJ"."320600-JTJ-00001""#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let row = &r.json()["rows"][0];
    assert_eq!(row["first"], times[0].as_str(), "{row}");
    assert_eq!(row["last"], times[times.len() - 1].as_str(), "{row}");
    assert_eq!(row["n"], times.len());
    // The same in CSV.
    let csv = api.post(
        "/v1/query",
        &json!({"sql": r#"SELECT max(pass_time) AS last FROM "320600-JTJ"."320600-JTJ-00001""#,
                "purpose": "p", "format": "csv"}),
    );
    assert_eq!(csv.body, format!("last\n{}\n", times[times.len() - 1]));
}

/// Repeated SQL reuses its plan, but never across a change of what the consumer may
/// see: the plan follows the read plan (masks, columns, rows) and the dataset's
/// definition, and a query whose answer depends on the moment is planned every time.
#[test]
fn repeated_queries_reuse_plans_only_while_the_policy_and_dataset_stay_the_same() {
    let node = DemoNode::start();
    let plans =
        |result: &str| node.metric("yiwang_query_plans_total", &format!("result=\"{result}\""));
    let enterprises = "320600-YJJ-00001";
    let sql = format!(
        r#"SELECT uscc, legal_rep_id FROM "320600-YJJ"."{enterprises}" ORDER BY uscc LIMIT 3"#
    );
    let rows = |api: &Api| {
        let r = query(api, &sql);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["rows"].clone()
    };
    let masked = |rows: &Value| {
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["legal_rep_id"].as_str().unwrap().contains("****"))
    };
    let dsj = node.client("dsj-system");
    let (cached, planned) = (plans("cached"), plans("planned"));
    let first = rows(&dsj);
    assert!(masked(&first), "sensitive without a grant: {first}");
    assert_eq!(rows(&dsj), first);
    assert_eq!(plans("planned"), planned + 1.0);
    assert_eq!(
        plans("cached"),
        cached + 1.0,
        "the second run reuses the plan"
    );

    // Another department with the same read plan shares it.
    let jtj = node.client("jtj-system");
    assert_eq!(rows(&jtj), first);
    assert_eq!(plans("cached"), cached + 2.0);

    // A grant that unmasks the column: a new read plan, a new plan, clear values.
    grant(
        &node,
        "dsj-system",
        "yjj-steward",
        enterprises,
        &["uscc", "legal_rep_id"],
    );
    let granted = rows(&dsj);
    assert!(
        !masked(&granted),
        "the grant names legal_rep_id, so it is clear: {granted}"
    );
    assert_eq!(plans("planned"), planned + 2.0);
    // ... and the department without it still gets the masked plan.
    assert_eq!(rows(&jtj), first);

    // The dataset loses the column: the kept column list is not used any more.
    let steward = node.client("yjj-steward");
    let mut dataset = steward.get(&format!("/v1/datasets/{enterprises}")).json();
    let fields: Vec<Value> = dataset["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] != "legal_rep_id")
        .cloned()
        .collect();
    dataset["fields"] = Value::Array(fields);
    for k in ["published_at", "updated_at", "version", "status"] {
        dataset.as_object_mut().unwrap().remove(k);
    }
    let r = steward.put(&format!("/v1/datasets/{enterprises}"), &dataset);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = query(&dsj, &sql);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("legal_rep_id"), "{}", r.body);

    // A query with now() is planned each time and tells the time of each run.
    let now = format!(
        r#"SELECT uscc, CAST(now() AS VARCHAR) AS t FROM "320600-YJJ"."{enterprises}" LIMIT 1"#
    );
    let (cached, planned) = (plans("cached"), plans("planned"));
    let times: Vec<Value> = (0..2)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let r = query(&dsj, &now);
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()["rows"][0]["t"].clone()
        })
        .collect();
    assert_ne!(times[0], times[1], "now() is evaluated per query");
    assert_eq!(plans("planned"), planned + 2.0);
    assert_eq!(plans("cached"), cached);
}
