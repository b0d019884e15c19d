//! The node as an operator meets it: restarts keep state, admin endpoints, the CLI,
//! `yiwang serve` from the demo's config.

use std::time::Duration;

use serde_json::{Value, json};
use yiwang_tests::{DemoNode, binary, cli, free_port};

fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, buf)
}

#[test]
fn restart_keeps_catalog_grants_and_audit_chain() {
    let mut node = DemoNode::start();
    let consumer = node.client("dsj-system");
    let id = consumer
        .post("/v1/access-requests", &json!({"dataset": "320600-GDGS-00001", "purpose": "用电核查", "fields": ["uscc", "hour", "kwh"]}))
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = node
        .client("gdgs-steward")
        .post(&format!("/v1/access-requests/{id}/approve"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        consumer
            .read("/v1/datasets/320600-GDGS-00001/records?limit=2", "p")
            .status,
        200
    );
    let datasets = consumer.get("/v1/datasets?limit=1").json()["total"].clone();
    let audit_before = node.client("auditor").get("/v1/audit?limit=1000").json()["records"]
        .as_array()
        .unwrap()
        .len();

    // A clean stop, then a crash: state survives both.
    node.stop();
    let dir = node.dir.clone();
    let mut node = DemoNode::start_in(&dir).unwrap();
    assert!(
        !node.log().contains("seeding catalog"),
        "nothing is re-seeded: {}",
        node.log()
    );
    let consumer = node.client("dsj-system");
    assert_eq!(
        consumer.get("/v1/datasets?limit=1").json()["total"],
        datasets
    );
    assert_eq!(
        consumer
            .read("/v1/datasets/320600-GDGS-00001/records?limit=2", "p")
            .status,
        200
    );
    node.kill();
    let node = DemoNode::start_in(&dir).unwrap();
    let consumer = node.client("dsj-system");
    assert_eq!(
        consumer
            .read("/v1/datasets/320600-GDGS-00001/records?limit=2", "p")
            .status,
        200
    );
    let recs = node.client("auditor").get("/v1/audit?limit=1000").json()["records"]
        .as_array()
        .unwrap()
        .clone();
    assert!(recs.len() > audit_before);
    let seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "the chain continues across restarts: {seqs:?}"
    );
    assert_eq!(
        node.client("auditor").get("/v1/audit/verify").json()["ok"],
        true
    );
}

#[test]
fn admin_endpoints_and_cluster_status() {
    let node = DemoNode::start();
    assert_eq!(http_get(node.admin_port, "/healthz").0, 200);
    let (status, body) = http_get(node.admin_port, "/readyz");
    assert_eq!(status, 200, "{body}");
    node.client("dsj-system")
        .read("/v1/datasets/320600-YJJ-00001/records?limit=1", "p");
    let (status, metrics) = http_get(node.admin_port, "/metrics");
    assert_eq!(status, 200);
    for needle in [
        "yiwang_http_requests_total",
        "yiwang_audit_records_total",
        "yiwang_raft_term",
        "yiwang_search_documents",
    ] {
        assert!(metrics.contains(needle), "missing {needle}:\n{metrics}");
    }
    let c = node.client("gaj-system").get("/v1/cluster").json();
    assert_eq!(c["leader"], 1);
    assert_eq!(c["members"][0]["role"], "voter");
    assert!(c["members"][0]["last_log_index"].as_u64().unwrap() > 0);
    let spec = node.client("gaj-system").get("/v1/openapi.json").json();
    assert!(
        spec["paths"]["/v1/datasets/{id}/records"].is_object(),
        "{spec}"
    );

    // A learner at a member's address (here this node's own) would make Raft send the
    // node its own messages under a second id: refused, and the node keeps serving.
    let admin = node.client("admin");
    let own = node.base().trim_start_matches("https://").to_string();
    let r = admin.post(
        "/v1/cluster/learners",
        &json!({"id": 62104722, "addr": own}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.message().contains("node 1"), "{}", r.body);
    let c = node.client("gaj-system").get("/v1/cluster").json();
    assert_eq!(c["members"].as_array().unwrap().len(), 1, "{c}");
    // Raft still commits.
    let r = admin.put(
        "/v1/search/synonyms",
        &json!({"groups": [["小电驴", "电动自行车"]]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn cli_commands_against_a_node() {
    let node = DemoNode::start();
    let (code, out, err) = cli(&node, "dsj-system", &["search", "危化品", "--limit", "3"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["total"].as_u64().unwrap() > 0);

    let (code, out, err) = cli(
        &node,
        "dsj-system",
        &[
            "records",
            "320600-YJJ-00001",
            "--purpose",
            "核查",
            "--format",
            "csv",
            "--limit",
            "15",
            "--all",
            "--fields",
            "uscc,status",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().count(),
        41,
        "header + 40 enterprises across pages: {out}"
    );

    let (code, _, err) = cli(
        &node,
        "dsj-system",
        &["records", "320600-JTJ-00001", "--purpose", "x"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("403") && err.contains("no grant"), "{err}");

    let (code, out, err) = cli(
        &node,
        "dsj-system",
        &[
            "access",
            "request",
            "320600-JTJ-00001",
            "--purpose",
            "核查",
            "--fields",
            "plate,pass_time",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _, err) = cli(
        &node,
        "jtj-steward",
        &["access", "approve", &id, "--days", "3"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        &node,
        "dsj-system",
        &[
            "records",
            "320600-JTJ-00001",
            "--purpose",
            "x",
            "--limit",
            "2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["rows"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A steward reads a source table's columns into a dataset skeleton; another
    // department's source is refused.
    let (code, out, err) = cli(
        &node,
        "yjj-steward",
        &[
            "dataset",
            "import-schema",
            "--source",
            "yjj-db",
            "--table",
            "hazchem_enterprises",
            "--id",
            "320600-YJJ-09999",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let skeleton: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(skeleton["dept"], "320600-YJJ");
    assert_eq!(skeleton["source"]["table"], "hazchem_enterprises");
    let names: Vec<&str> = skeleton["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"uscc") && names.contains(&"legal_rep_id"),
        "{names:?}"
    );
    assert_eq!(skeleton["fields"].as_array().unwrap().len(), 11);
    let (code, _, err) = cli(
        &node,
        "jtj-steward",
        &[
            "dataset",
            "import-schema",
            "--source",
            "yjj-db",
            "--table",
            "hazchem_enterprises",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("403"), "{err}");

    let (code, out, _) = cli(&node, "auditor", &["audit", "export"]);
    assert_eq!(code, 0);
    assert!(out.lines().count() >= 5);
    let (code, _, _) = cli(&node, "dsj-system", &["audit", "search"]);
    assert_eq!(code, 1, "non-auditors are refused");

    // Usage errors exit 2; a missing certificate is a clear error, exit 1.
    let out = std::process::Command::new(binary())
        .args(["records"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(binary())
        .args(["whoami", "--server", &node.base()])
        .env_remove("YIWANG_CERT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cert"));
}

#[test]
fn serve_runs_the_node_from_its_config() {
    let mut node = DemoNode::start();
    node.stop();
    // `yiwang demo` wrote node.toml; serve it on new ports.
    let config = node.dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let port = free_port();
    let admin = free_port();
    let mut cfg: toml::Value = toml::from_str(&text).unwrap();
    cfg["listen"] = toml::Value::String(format!("127.0.0.1:{port}"));
    cfg["admin_listen"] = toml::Value::String(format!("127.0.0.1:{admin}"));
    let custom = node.dir.join("serve.toml");
    std::fs::write(&custom, toml::to_string(&cfg).unwrap()).unwrap();
    let mut child = std::process::Command::new(binary())
        .args(["serve", "--config"])
        .arg(&custom)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok()
            && http_get(admin, "/readyz").0 == 200
        {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let c = node.certs();
    let api = yiwang_tests::Api::new(
        &format!("https://127.0.0.1:{port}"),
        &c.join("ca.pem"),
        &c.join("gaj-system.pem"),
        &c.join("gaj-system.key"),
    );
    let total = if ready {
        api.get("/v1/departments").json()["total"].clone()
    } else {
        Value::Null
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "serve did not become ready");
    assert_eq!(total, 65);

    // A broken config is refused with a message naming the problem.
    std::fs::write(&custom, text.replace("node_id", "nodeid")).unwrap();
    let out = std::process::Command::new(binary())
        .args(["serve", "--config"])
        .arg(&custom)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nodeid"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
