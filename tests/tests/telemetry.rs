//! Telemetry as an operator sees it: spans exported over OTLP/HTTP to a receiver on
//! loopback, joined to the caller's W3C `traceparent` and linked parent to child
//! through policy, Raft, the audit trail and the source; JSON logs carrying the trace
//! id; Prometheus metrics by route, status and department, Raft role and audit queue.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use yiwang_tests::otlp::{Receiver, Span};
use yiwang_tests::{DemoNode, binary};

const RECORDS: &str = "/v1/datasets/320600-YJJ-00001/records?limit=3";

fn telemetry(cfg: &mut toml::Value) -> &mut toml::Value {
    cfg.as_table_mut()
        .unwrap()
        .entry("telemetry")
        .or_insert(toml::Value::Table(Default::default()))
}

/// The demo node, serving again with spans going to `receiver`, JSON logs and the
/// access log on.
fn traced_node(receiver: &Receiver) -> DemoNode {
    let mut demo = DemoNode::start();
    let endpoint = receiver.endpoint();
    let (path, port, admin) = demo.changed_config("traced.toml", |cfg| {
        let t = telemetry(cfg);
        t["otlp_endpoint"] = toml::Value::String(endpoint);
        t["export_interval_ms"] = toml::Value::Integer(100);
        t["log_format"] = toml::Value::String("json".into());
    });
    let mut cmd = Command::new(binary());
    cmd.args(["serve", "--config"])
        .arg(&path)
        .env("YIWANG_LOG", "warn,yiwang_gateway=debug")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let mut node = DemoNode::serve_command(demo.certs().parent().unwrap(), cmd, port, admin)
        .expect("the traced node starts");
    demo.hand_over_dir(&mut node);
    node
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// Whether `span` is `ancestor` or one of its descendants.
fn descends(span: &Span, ancestor: &Span, spans: &[Span]) -> bool {
    let mut at = span;
    for _ in 0..32 {
        if at.span_id == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == at.parent_span_id) {
            Some(parent) => at = parent,
            None => return false,
        }
    }
    false
}

fn traceparent(trace: &str, parent: &str) -> String {
    format!("00-{trace}-{parent}-01")
}

#[test]
fn a_read_is_traced_from_the_callers_span_through_policy_audit_and_source() {
    let receiver = Receiver::start();
    let node = traced_node(&receiver);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let api = node.client("dsj-system");
    let r = api.send(
        api.req(reqwest::Method::GET, RECORDS)
            .header("x-purpose", "safety-check")
            .header("traceparent", traceparent(trace, caller_span)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-trace-id").as_deref(), Some(trace));

    let spans = receiver.wait_for(trace, Duration::from_secs(15), |s| {
        ["source.read", "audit.append", "policy.decide"]
            .iter()
            .all(|n| !named(s, n).is_empty())
            && !named(s, "GET /v1/datasets/{id}/records").is_empty()
    });
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let request = named(&spans, "GET /v1/datasets/{id}/records");
    assert_eq!(request.len(), 1, "one request span: {names:?}");
    let request = request[0];
    assert_eq!(
        request.parent_span_id, caller_span,
        "child of the caller's span"
    );
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(request.service, "yiwang");
    assert_eq!(
        request.attribute("http.route"),
        Some("/v1/datasets/{id}/records")
    );
    assert_eq!(request.attribute("http.response.status_code"), Some("200"));
    assert_eq!(request.attribute("dept"), Some("320600-DSJ"));

    let source = named(&spans, "source.read");
    assert_eq!(source.len(), 1, "{names:?}");
    assert_eq!(source[0].parent_span_id, request.span_id);
    assert!(
        source[0].attribute("source").is_some_and(|s| !s.is_empty()),
        "{:?}",
        source[0]
    );
    assert_eq!(source[0].attribute("rows"), Some("3"));
    let audit = named(&spans, "audit.append");
    assert!(!audit.is_empty(), "{names:?}");
    for a in &audit {
        assert_eq!(a.parent_span_id, request.span_id, "{a:?}");
        assert!(a.attribute("audit.seq").is_some(), "{a:?}");
    }
    let decisions = named(&spans, "policy.decide");
    for d in &decisions {
        assert!(
            descends(d, request, &spans),
            "{d:?} under the request: {spans:#?}"
        );
        assert_eq!(d.attribute("dataset"), Some("320600-YJJ-00001"));
    }

    // A write: the Raft proposal is a child of its request.
    let trace2 = "0af7651916cd43dd8448eb211c80319c";
    let admin = node.client("admin");
    let r = admin.send(
        admin
            .req(reqwest::Method::PUT, "/v1/search/synonyms")
            .header("traceparent", traceparent(trace2, "b7ad6b7169203331"))
            .json(&json!({"groups": [["小电驴", "电动自行车"]]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let spans2 = receiver.wait_for(trace2, Duration::from_secs(15), |s| {
        !named(s, "raft.write").is_empty() && !named(s, "PUT /v1/search/synonyms").is_empty()
    });
    let put = named(&spans2, "PUT /v1/search/synonyms");
    let write = named(&spans2, "raft.write");
    assert_eq!((put.len(), write.len()), (1, 1), "{spans2:#?}");
    assert_eq!(put[0].parent_span_id, "b7ad6b7169203331");
    assert!(descends(write[0], put[0], &spans2), "{spans2:#?}");
    assert!(
        write[0]
            .attribute("raft.index")
            .is_some_and(|i| i.parse::<u64>().is_ok())
    );

    // A cross-department query runs in a task of its own, still under its request.
    let trace3 = "11111111111111112222222222222222";
    let r = api.send(
        api.req(reqwest::Method::POST, "/v1/query")
            .header("traceparent", traceparent(trace3, "3333333333333333"))
            .json(&json!({
                "sql": r#"SELECT count(*) AS n FROM "320600-YJJ"."320600-YJJ-00001""#,
                "purpose": "safety-check"
            })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let spans3 = receiver.wait_for(trace3, Duration::from_secs(15), |s| {
        !named(s, "query.execute").is_empty() && !named(s, "POST /v1/query").is_empty()
    });
    let query = named(&spans3, "POST /v1/query");
    let exec = named(&spans3, "query.execute");
    assert_eq!((query.len(), exec.len()), (1, 1), "{spans3:#?}");
    assert!(descends(exec[0], query[0], &spans3), "{spans3:#?}");

    // Without a traceparent the request starts a trace of its own.
    let r = api.get("/v1/whoami");
    let own = r
        .header("x-trace-id")
        .expect("every answer names its trace");
    assert_eq!(own.len(), 32);
    assert!(own.chars().all(|c| c.is_ascii_hexdigit()) && own != "0".repeat(32));
    let spans4 = receiver.wait_for(&own, Duration::from_secs(15), |s| !s.is_empty());
    let root = named(&spans4, "GET /v1/whoami");
    assert_eq!(root.len(), 1, "{spans4:#?}");
    assert_eq!(root[0].parent_span_id, "", "a root span");

    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());

    // JSON logs: the access-log line of the read carries its trace id.
    let log = node.log();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    assert!(!lines.is_empty(), "JSON log lines: {log}");
    let access = lines
        .iter()
        .find(|l| l["span"]["trace_id"] == trace && l["fields"]["message"] == "request")
        .unwrap_or_else(|| panic!("an access-log line with trace_id {trace}: {log}"));
    assert_eq!(access["fields"]["status"], 200);
    assert_eq!(access["level"], "DEBUG");
}

#[test]
fn metrics_and_trace_ids_without_an_exporter() {
    let node = DemoNode::start();
    let api = node.client("dsj-system");
    assert_eq!(api.read(RECORDS, "safety-check").status, 200);

    // Not exporting (no endpoint): requests still name their trace, the caller's if it
    // sent a valid traceparent, else a fresh one.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let with = |tp: &str| {
        api.send(
            api.req(reqwest::Method::GET, "/v1/whoami")
                .header("traceparent", tp),
        )
        .header("x-trace-id")
        .unwrap()
    };
    assert_eq!(with(&traceparent(trace, "00f067aa0ba902b7")), trace);
    let fresh = with("00-not-a-trace-01");
    assert!(fresh.len() == 32 && fresh != trace, "{fresh}");
    assert_ne!(with("garbage"), fresh, "each request its own");
    assert_eq!(api.get("/v1/datasets/no-such").status, 404);
    // Completion records are queued after their answer is sent: wait (bounded) for the
    // writer to take the last one, then the queue must be empty.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let m = node.admin_get("/metrics");
        if m.lines().any(|l| l == "yiwang_audit_queue_depth 0")
            || std::time::Instant::now() > deadline
        {
            break m;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let has = |needle: &str| {
        assert!(
            metrics.lines().any(|l| l.contains(needle)),
            "/metrics has no line with {needle}:\n{metrics}"
        )
    };
    has(
        r#"yiwang_http_requests_total{method="GET",route="/v1/datasets/{id}/records",status="200",dept="320600-DSJ"} 1"#,
    );
    has(
        r#"yiwang_http_requests_total{method="GET",route="/v1/datasets/{id}",status="404",dept="320600-DSJ"} 1"#,
    );
    has(
        r#"yiwang_http_request_seconds_count{method="GET",route="/v1/datasets/{id}/records",status="200"} 1"#,
    );
    has(r#"yiwang_raft_state{state="leader"} 1"#);
    has(r#"yiwang_raft_state{state="follower"} 0"#);
    has("yiwang_raft_apply_lag ");
    has("yiwang_audit_queue_depth 0");
    has("yiwang_audit_fsync_seconds_bucket");
    has(r#"yiwang_policy_decisions_total{action="records.read",decision="allow"} 1"#);

    // The Grafana dashboard (ops/grafana/yiwang.json) queries only metrics a node
    // exports, each under the name its type gives it.
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/grafana/yiwang.json"),
    )
    .unwrap();
    let dashboard: Value = serde_json::from_str(&dashboard).unwrap();
    let mut queried = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("yiwang_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                queried.insert(name);
            }
        }
    }
    assert!(queried.len() >= 20, "{queried:?}");
    for name in &queried {
        let typed = |base: &str, kind: &str| metrics.contains(&format!("# TYPE {base} {kind}\n"));
        let ok = if let Some(base) = name.strip_suffix("_total") {
            typed(base, "counter")
        } else if let Some(base) = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
        {
            typed(base, "histogram")
        } else {
            typed(name, "gauge")
        };
        assert!(
            ok,
            "the dashboard queries {name}, which /metrics does not export"
        );
    }
}

#[test]
fn bad_telemetry_settings_are_refused_at_start_naming_the_key() {
    let mut demo = DemoNode::start();
    for (key, value, named) in [
        (
            "sample_ratio",
            toml::Value::Float(1.5),
            "telemetry.sample_ratio",
        ),
        (
            "otlp_endpoint",
            toml::Value::String("https://collector:4318".into()),
            "telemetry.otlp_endpoint",
        ),
        (
            "log_format",
            toml::Value::String("xml".into()),
            "log_format",
        ),
    ] {
        let (path, _, _) = demo.changed_config("bad-telemetry.toml", |cfg| {
            telemetry(cfg)[key] = value.clone();
        });
        let out = Command::new(binary())
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{key}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{key}: {stderr}");
    }
}
