//! The scenario across three database engines: 应急管理局's enterprises stay in SQLite,
//! 交通运输局's truck records move to PostgreSQL and 供电公司's power use to MariaDB —
//! real servers started by `ops/test.sh` (`ops/testdb.sh`). One SQL query through the
//! gateway still finds the plant, with the same numbers.

use std::process::{Command, Stdio};

use serde_json::{Value, json};
use yiwang_tests::{DemoNode, free_port, required_env};

/// Reads a whole dataset as its own department sees it (unmasked), as JSON objects.
fn read_all(node: &DemoNode, who: &str, dataset: &str) -> Vec<Value> {
    let api = node.client(who);
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/datasets/{dataset}/records?limit=10000&cursor={c}"),
            None => format!("/v1/datasets/{dataset}/records?limit=10000"),
        };
        let page = api.read(&path, "copy-to-test-database").json();
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return rows,
        }
    }
}

fn sql_literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => format!("'{}'", other.to_string().replace('\'', "''")),
    }
}

/// `CREATE TABLE` + batched `INSERT`s for `rows` with the dataset's fields.
fn load_script(table: &str, fields: &[Value], rows: &[Value], mysql: bool) -> String {
    let cols: Vec<String> = fields
        .iter()
        .map(|f| {
            let name = f["name"].as_str().unwrap();
            let t = match (f["type"].as_str().unwrap(), mysql) {
                ("integer", _) => "BIGINT",
                ("float", _) => "DOUBLE PRECISION",
                ("boolean", _) => "BOOLEAN",
                ("date", _) => "DATE",
                ("datetime", false) => "TIMESTAMP",
                ("datetime", true) => "DATETIME",
                (_, true) => "VARCHAR(255)",
                (_, false) => "TEXT",
            };
            format!("{name} {t}")
        })
        .collect();
    let mut script = format!("CREATE TABLE {table} ({});\n", cols.join(", "));
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    for chunk in rows.chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|r| {
                format!(
                    "({})",
                    names
                        .iter()
                        .map(|n| sql_literal(&r[*n]))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        script.push_str(&format!(
            "INSERT INTO {table} ({}) VALUES {};\n",
            names.join(", "),
            values.join(", ")
        ));
    }
    script
}

fn run_script(cmd: &mut Command, script: &str) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("database client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "loading failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn query(node: &DemoNode, sql: &str) -> yiwang_tests::Resp {
    node.client("dsj-system").post(
        "/v1/query",
        &json!({"sql": sql, "purpose": "核查责令关停企业夜间生产"}),
    )
}

fn grant(node: &DemoNode, steward: &str, dataset: &str, fields: &[&str]) {
    let r = node.client("dsj-system").post(
        "/v1/access-requests",
        &json!({"dataset": dataset, "fields": fields, "purpose": "核查责令关停企业夜间生产"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        node.client(steward)
            .post(&format!("/v1/access-requests/{id}/approve"), &json!({}))
            .status,
        200
    );
}

/// Points a dataset at another source and table, as its steward.
fn move_dataset(node: &DemoNode, steward: &str, id: &str, source: &str, table: &str) {
    let api = node.client(steward);
    let mut d = api.get(&format!("/v1/datasets/{id}")).json();
    let obj = d.as_object_mut().unwrap();
    for k in ["published_at", "updated_at", "version", "status"] {
        obj.remove(k);
    }
    obj.insert("source".into(), json!({"id": source, "table": table}));
    let r = api.put(&format!("/v1/datasets/{id}"), &d);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn the_scenario_across_sqlite_postgresql_and_mariadb() {
    let pg_url = required_env("YIWANG_TEST_PG_URL");
    let my_url = required_env("YIWANG_TEST_MYSQL_URL");
    let demo = DemoNode::start();
    grant(
        &demo,
        "jtj-steward",
        "320600-JTJ-00001",
        &["consignee_uscc", "pass_time"],
    );
    grant(
        &demo,
        "gdgs-steward",
        "320600-GDGS-00001",
        &["uscc", "hour", "kwh"],
    );
    let scenario = std::fs::read_to_string(demo.dir.join("scenario.sql")).unwrap();
    let on_sqlite = query(&demo, &scenario);
    assert_eq!(on_sqlite.status, 200, "{}", on_sqlite.body);
    let expected = on_sqlite.json()["rows"].clone();
    assert_eq!(expected.as_array().unwrap().len(), 1);

    // Copy the truck records into PostgreSQL and the power use into MariaDB.
    let suffix = format!("{}_{}", std::process::id(), free_port());
    let trucks_table = format!("trucks_{suffix}");
    let power_table = format!("power_{suffix}");
    let enterprises = read_all(&demo, "yjj-system", "320600-YJJ-00001").len() as u64;
    let trucks = read_all(&demo, "jtj-system", "320600-JTJ-00001");
    let power = read_all(&demo, "gdgs-system", "320600-GDGS-00001");
    assert_eq!(trucks.len(), 3071);
    let truck_fields = demo
        .client("jtj-system")
        .get("/v1/datasets/320600-JTJ-00001")
        .json()["fields"]
        .clone();
    let power_fields = demo
        .client("gdgs-system")
        .get("/v1/datasets/320600-GDGS-00001")
        .json()["fields"]
        .clone();
    run_script(
        Command::new("psql")
            .arg(&pg_url)
            .args(["-q", "-v", "ON_ERROR_STOP=1"]),
        &load_script(
            &trucks_table,
            truck_fields.as_array().unwrap(),
            &trucks,
            false,
        ),
    );
    let my = reqwest::Url::parse(&my_url).unwrap();
    run_script(
        Command::new("mariadb").args([
            "--no-defaults",
            "-h",
            my.host_str().unwrap(),
            "-P",
            &my.port().unwrap().to_string(),
            "-u",
            my.username(),
            &format!("-p{}", my.password().unwrap()),
            my.path().trim_start_matches('/'),
        ]),
        &load_script(&power_table, power_fields.as_array().unwrap(), &power, true),
    );

    // The node gets two more sources (credentials in its configuration only).
    let mut pg_no_pass = reqwest::Url::parse(&pg_url).unwrap();
    let _ = pg_no_pass.set_password(None);
    let mut my_no_pass = my.clone();
    let _ = my_no_pass.set_password(None);
    let node = demo.serve_again("databases.toml", |cfg| {
        let sources = cfg["sources"].as_table_mut().unwrap();
        sources.insert(
            "jtj-pg".into(),
            toml::Value::try_from(json!({"kind": "postgres", "url": pg_no_pass.as_str()})).unwrap(),
        );
        sources.insert(
            "gdgs-mariadb".into(),
            toml::Value::try_from(json!({"kind": "mysql", "url": my_no_pass.as_str(), "password": my.password().unwrap()})).unwrap(),
        );
        sources.insert(
            "down-pg".into(),
            toml::Value::try_from(json!({"kind": "postgres", "url": format!("postgres://yiwang@127.0.0.1:{}/x", free_port())})).unwrap(),
        );
    });

    move_dataset(
        &node,
        "jtj-steward",
        "320600-JTJ-00001",
        "jtj-pg",
        &trucks_table,
    );
    move_dataset(
        &node,
        "gdgs-steward",
        "320600-GDGS-00001",
        "gdgs-mariadb",
        &power_table,
    );
    let r = query(&node, &scenario);
    assert_eq!(r.status, 200, "{}", r.body);
    let got = r.json()["rows"].clone();
    assert_eq!(got[0]["uscc"], expected[0]["uscc"]);
    assert_eq!(got[0]["night_entries"], expected[0]["night_entries"]);
    let (a, b) = (
        got[0]["night_kwh"].as_f64().unwrap(),
        expected[0]["night_kwh"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-6 * b.abs(), "{a} vs {b}");
    // Every source says how many rows it sent; the status filter ran in SQLite.
    let moved: std::collections::BTreeMap<String, u64> = r
        .header("x-source-rows")
        .expect("x-source-rows")
        .split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    assert_eq!(
        moved.keys().collect::<Vec<_>>(),
        ["gdgs-mariadb", "jtj-pg", "yjj-db"],
        "{moved:?}"
    );
    assert!(
        moved["yjj-db"] >= 1 && moved["yjj-db"] < enterprises,
        "{moved:?}"
    );
    // Both GROUP BYs run at their sources: only one row per company leaves each.
    let companies = |rows: &[serde_json::Value], key: &str| {
        rows.iter()
            .map(|r| r[key].as_str().unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64
    };
    assert!(
        moved["jtj-pg"] <= companies(&trucks, "consignee_uscc"),
        "{moved:?}"
    );
    assert!(
        moved["gdgs-mariadb"] <= companies(&power, "uscc"),
        "{moved:?}"
    );

    // Records come from PostgreSQL too, filtered and paged, and masking still applies.
    let r = node.client("dsj-system").read(
        "/v1/datasets/320600-GDGS-00001/records?fields=uscc,kwh&filter=kwh%20%3E%201000&limit=5",
        "p",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for row in r.json()["rows"].as_array().unwrap() {
        assert!(row["kwh"].as_f64().unwrap() > 1000.0);
    }
    let r = node
        .client("gdgs-system")
        .read("/v1/datasets/320600-JTJ-00001/records?limit=3", "p");
    assert_eq!(r.status, 403, "{}", r.body);

    // A source that is down gives a clear 503 naming it, and the node stays up.
    move_dataset(&node, "gaj-steward", "320600-GAJ-00001", "down-pg", "t");
    let r = node
        .client("gaj-system")
        .read("/v1/datasets/320600-GAJ-00001/records", "p");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.message().contains("down-pg"),
        "the source is named: {}",
        r.body
    );
    assert!(
        !r.body.contains("127.0.0.1"),
        "no connection details leak: {}",
        r.body
    );
    assert_eq!(query(&node, &scenario).status, 200, "the node still serves");

    run_script(
        Command::new("psql").arg(&pg_url).args(["-q"]),
        &format!("DROP TABLE {trucks_table};"),
    );
    run_script(
        Command::new("mariadb").args([
            "--no-defaults",
            "-h",
            my.host_str().unwrap(),
            "-P",
            &my.port().unwrap().to_string(),
            "-u",
            my.username(),
            &format!("-p{}", my.password().unwrap()),
            my.path().trim_start_matches('/'),
        ]),
        &format!("DROP TABLE {power_table};"),
    );
}

/// Starts the demo once, then serves it again with the given `[query]` limits.
fn serve_with_query_limits(limits: serde_json::Value) -> DemoNode {
    DemoNode::start().serve_with_table("query", limits)
}

const ENTERPRISES: &str = r#""320600-YJJ"."320600-YJJ-00001""#;

#[test]
fn a_query_over_its_time_limit_is_stopped_with_a_clear_error() {
    let node = serve_with_query_limits(json!({"timeout_ms": 300}));
    let t = ENTERPRISES;
    // 2.56 million rows, each building and scanning a 2,000-character string: seconds
    // of work with little memory.
    let slow = format!(
        "SELECT count(*) FROM {t} a, {t} b, {t} c, {t} d \
         WHERE regexp_like(repeat(a.uscc || b.uscc || c.uscc || d.uscc, 30), '(甲|乙)+[0-9]+x$')"
    );
    let started = std::time::Instant::now();
    let r = query(&node, &slow);
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.code(), "query_timeout");
    assert!(r.message().contains("300 ms"), "{}", r.body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the limit is enforced"
    );
    node.assert_idle();
    let r = query(&node, &format!("SELECT count(*) AS n FROM {t}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["rows"][0]["n"], 40);
}

#[test]
fn a_query_over_its_memory_limit_is_stopped_with_a_clear_error() {
    let node = serve_with_query_limits(json!({"memory_mb": 8, "max_rows": 1000}));
    let t = ENTERPRISES;
    // A five-way join whose build side holds 2.56 million rows: far more than 8 MB.
    let big = format!(
        "SELECT count(*) FROM {t} a, {t} b, {t} c, {t} d, {t} e \
         WHERE a.capacity + b.capacity + c.capacity + d.capacity + e.capacity > 0"
    );
    // Twice: the second run uses the kept plan, and its own memory pool.
    for _ in 0..2 {
        let r = query(&node, &big);
        assert_eq!(r.status, 413, "{}", r.body);
        assert_eq!(r.code(), "memory_limit");
        assert!(
            r.message().contains("more memory than allowed"),
            "{}",
            r.body
        );
    }
    assert_eq!(
        node.metric("yiwang_query_plans_total", "result=\"cached\""),
        1.0
    );
    // Too many rows in the result.
    let r = query(&node, &format!("SELECT a.uscc, b.uscc FROM {t} a, {t} b"));
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.code(), "too_many_rows");
    assert!(r.message().contains("1000 rows"), "{}", r.body);
    node.assert_idle();
    let r = query(&node, &format!("SELECT count(*) AS n FROM {t}"));
    assert_eq!(r.status, 200, "{}", r.body);
}
