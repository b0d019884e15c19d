//! Limits and stopping: request-rate limits per principal and per department (429 with
//! `Retry-After` and a message naming the limit, other principals and departments
//! unaffected, a bad limit refused at start naming the key), and a stop that lets
//! requests in flight finish.

use std::time::Instant;

use yiwang_tests::{DemoNode, Resp, binary};

/// The `[limits]` table of a node configuration, created if absent.
fn limits(cfg: &mut toml::Value) -> &mut toml::Value {
    cfg.as_table_mut()
        .unwrap()
        .entry("limits")
        .or_insert(toml::Value::Table(Default::default()))
}

/// Starts a cross-department query that takes seconds (2.56 million joined rows, each
/// matching a regular expression against a string `repeat` times the row's codes; 50:
/// about 2 s here, 70: about 8 s) as `dsj-system`; returns its answer and when it came.
fn slow_query_in_flight(node: &DemoNode, repeat: u32) -> std::thread::JoinHandle<(Resp, Instant)> {
    let t = r#""320600-YJJ"."320600-YJJ-00001""#;
    let sql = format!(
        "SELECT count(*) AS n FROM {t} a, {t} b, {t} c, {t} d \
         WHERE regexp_like(repeat(a.uscc || b.uscc || c.uscc || d.uscc, {repeat}), '(甲|乙)+[0-9]+x$')"
    );
    let client = node.client("dsj-system");
    std::thread::spawn(move || {
        let r = client.post(
            "/v1/query",
            &serde_json::json!({"sql": sql, "purpose": "核查责令关停企业夜间生产"}),
        );
        (r, Instant::now())
    })
}

#[test]
fn principals_over_their_rate_get_429_with_retry_after() {
    let node = DemoNode::start().serve_again("rate-limited.toml", |cfg| {
        let limits = limits(cfg);
        limits["principal_rps"] = toml::Value::Float(0.2);
        limits["principal_burst"] = toml::Value::Integer(3);
        limits["dept_rps"] = toml::Value::Float(0.2);
        limits["dept_burst"] = toml::Value::Integer(5);
    });
    let system = node.client("gaj-system");
    for i in 0..3 {
        let r = system.get("/v1/whoami");
        assert_eq!(r.status, 200, "request {i} is within the burst: {}", r.body);
    }
    let r = system.get("/v1/whoami");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.code(), "rate_limited");
    assert!(r.message().contains("dept/320600-GAJ/system"), "{}", r.body);
    assert!(r.message().contains("0.2 a second"), "{}", r.body);
    // At 0.2 a second the next token is up to 5 s away.
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry), "Retry-After {retry}");
    assert!(r.header("x-request-id").is_some());

    // Another principal of the department has its own bucket, until the department's
    // is empty (5 requests: 3 by the system, 2 by the steward).
    let steward = node.client("gaj-steward");
    for _ in 0..2 {
        assert_eq!(steward.get("/v1/whoami").status, 200);
    }
    let r = steward.get("/v1/whoami");
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.message().contains("department 320600-GAJ"), "{}", r.body);
    // Other departments are not affected.
    assert_eq!(node.client("yjj-system").get("/v1/whoami").status, 200);

    // Counted on /metrics.
    let metrics = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", node.admin_port)).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf
    };
    assert!(
        metrics.contains("yiwang_rate_limited_total 2"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("rate_limited"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_bad_limit_is_refused_at_start_naming_the_key() {
    let mut demo = DemoNode::start();
    let (path, _, _) = demo.changed_config("bad-limits.toml", |cfg| {
        let limits = limits(cfg);
        limits["principal_rps"] = toml::Value::Float(-1.0);
    });
    let out = std::process::Command::new(binary())
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("limits.principal_rps"), "{stderr}");
}

/// Environment variables override configuration keys, and are checked as the file is:
/// a bad value or an unknown key stops the start naming the key and the variable.
#[test]
fn environment_overrides_are_applied_and_checked() {
    let mut demo = DemoNode::start();
    let (path, port, admin) = demo.changed_config("env.toml", |_| {});
    let serve = |vars: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(binary());
        cmd.args(["serve", "--config"]).arg(&path);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    };
    for (vars, named) in [
        (
            &[("YIWANG__LIMITS__PRINCIPAL_RPS", "-1")][..],
            "limits.principal_rps",
        ),
        (&[("YIWANG__LIMITS__NO_SUCH_KEY", "1")][..], "no_such_key"),
        (
            &[("YIWANG__LIMITS__", "1")][..],
            "YIWANG__LIMITS__: not a key path",
        ),
        (
            &[("YIWANG__NODE_ID__X", "1")][..],
            "'node_id' is not a table",
        ),
    ] {
        let out = serve(vars).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{vars:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{vars:?}: {stderr}");
    }
    // A good override takes effect: a rate limit the file does not have.
    let cmd = serve(&[
        ("YIWANG__LIMITS__PRINCIPAL_RPS", "0.2"),
        ("YIWANG__LIMITS__PRINCIPAL_BURST", "1"),
    ]);
    let mut node = DemoNode::serve_command(demo.certs().parent().unwrap(), cmd, port, admin)
        .expect("starts with the overrides");
    demo.hand_over_dir(&mut node);
    let system = node.client("gaj-system");
    assert_eq!(system.get("/v1/whoami").status, 200);
    let r = system.get("/v1/whoami");
    assert_eq!(r.status, 429, "{}", r.body);
}

/// Sends the headers of a POST announcing `announced` body bytes and only `sent` of
/// them, then waits for the node's answer (as a slow or stalled client would).
fn stalled_body(node: &DemoNode, announced: usize, sent: usize) -> (String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = node.certs();
    let cfg = yiwang_tests::tls_config(
        &c.join("ca.pem"),
        &c.join("gaj-steward.pem"),
        &c.join("gaj-steward.key"),
    );
    let port = yiwang_tests::port_of(&node.base());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut tls = yiwang_tests::tls_connect(port, cfg).await.unwrap();
        let head = format!(
            "POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {announced}\r\n\r\n"
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(&b"{".repeat(sent)).await.unwrap();
        tls.flush().await.unwrap();
        let started = Instant::now();
        let mut buf = vec![0; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), tls.read(&mut buf))
            .await
            .expect("the node answers a stalled body")
            .unwrap_or(0);
        (String::from_utf8_lossy(&buf[..n]).into_owned(), started.elapsed())
    })
}

/// A client that does not finish sending its body gets 408 after `body_timeout_s`; a
/// request that takes longer than `request_timeout_s` to answer gets 503; the node
/// serves others meanwhile and after.
#[test]
fn slow_bodies_and_slow_requests_are_cut_off() {
    let node = DemoNode::start().serve_again("timeouts.toml", |cfg| {
        let limits = limits(cfg);
        limits["body_timeout_s"] = toml::Value::Integer(1);
        limits["request_timeout_s"] = toml::Value::Integer(3);
    });
    let (answer, took) = stalled_body(&node, 200, 10);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(answer.contains("limits.body_timeout_s"), "{answer}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");

    // About 8 s of work; cut at 3.
    let in_flight = slow_query_in_flight(&node, 70);
    let r = node.client("gaj-system").get("/v1/whoami");
    assert_eq!(r.status, 200, "others are served meanwhile");
    let (slow, _) = in_flight.join().unwrap();
    assert_eq!(slow.status, 503, "{}", slow.body);
    assert_eq!(slow.code(), "request_timeout");
    assert!(
        slow.message().contains("limits.request_timeout_s"),
        "{}",
        slow.body
    );
    assert_eq!(node.client("dsj-system").get("/v1/whoami").status, 200);
}

/// A stop (SIGTERM) closes the listener but lets a request in flight finish and answer,
/// within `limits.shutdown_grace_s`.
#[test]
fn a_stop_lets_requests_in_flight_finish() {
    let mut node = DemoNode::start();
    // Seconds of work, far less than the 30 s of grace.
    let in_flight = slow_query_in_flight(&node, 70);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let stop_began = Instant::now();
    node.stop();
    let (r, answered) = in_flight.join().unwrap();
    assert!(
        answered > stop_began,
        "the query was still running when the stop began"
    );
    assert_eq!(
        r.status, 200,
        "the query in flight was answered: {}",
        r.body
    );
    assert_eq!(r.json()["rows"][0]["n"], 0, "{}", r.body);
    assert!(
        node.log().contains("waiting for 1 open connection"),
        "{}",
        node.log()
    );
}

/// A concurrency quota: a principal with a request in flight at its quota gets 429
/// `concurrency_limited`; others are served; the slot comes back with the answer.
#[test]
fn a_principal_at_its_concurrency_quota_gets_429() {
    let node = DemoNode::start().serve_again("concurrency.toml", |cfg| {
        let limits = limits(cfg);
        limits["principal_concurrency"] = toml::Value::Integer(1);
    });
    let in_flight = slow_query_in_flight(&node, 60);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let refused_at = Instant::now();
    let r = node.client("dsj-system").get("/v1/whoami");
    let (slow_answer, answered) = in_flight.join().unwrap();
    assert!(answered > refused_at, "the query was in flight");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.code(), "concurrency_limited");
    assert!(r.message().contains("1 request(s) in flight"), "{}", r.body);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(slow_answer.status, 200, "{}", slow_answer.body);
    // The slot came back with the answer.
    assert_eq!(node.client("dsj-system").get("/v1/whoami").status, 200);
    assert_eq!(node.client("gaj-system").get("/v1/whoami").status, 200);
}
