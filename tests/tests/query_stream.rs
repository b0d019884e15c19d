//! Large query answers are streamed as they are computed: whole and valid in every
//! format, audited with the rows actually sent, never held in the node's memory as a
//! whole, cut off (not passed off as complete) when a limit stops them midway, and
//! stopped when the client goes away.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yiwang_tests::{Api, DemoNode, cli};

/// 40 enterprises: a cross join of n copies has 40^n rows.
const T: &str = r#""320600-YJJ"."320600-YJJ-00001""#;
const PURPOSE: &str = "核查责令关停企业夜间生产";

fn cross3() -> String {
    format!("SELECT a.uscc, b.name, c.capacity FROM {T} a, {T} b, {T} c")
}

fn request(api: &Api, sql: &str, format: &str) -> reqwest::RequestBuilder {
    api.req(reqwest::Method::POST, "/v1/query")
        .json(&json!({"sql": sql, "purpose": PURPOSE, "format": format}))
}

/// The audit trail's completion record of request `rid`, once it is written.
fn completion(node: &DemoNode, rid: &str) -> Value {
    let auditor = node.client("auditor");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = auditor.get("/v1/audit?action=query.run&limit=1000").json();
        let found = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["request_id"] == rid && r.get("completes").is_some())
            .cloned();
        if let Some(r) = found {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no completion record for {rid}: {page}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_large_answer_is_streamed_whole_in_every_format_and_audited_with_its_rows() {
    let node = DemoNode::start().serve_with_table("query", json!({"buffer_kb": 16}));
    let api = node.client("dsj-system");

    // A small answer is still sent whole, with its length and row count.
    let small = api.send(request(
        &api,
        &format!("SELECT uscc FROM {T} ORDER BY uscc LIMIT 5"),
        "json",
    ));
    assert_eq!(small.status, 200, "{}", small.body);
    assert_eq!(small.header("x-row-count").as_deref(), Some("5"));
    assert!(small.header("content-length").is_some());

    let sql = cross3();
    let j = api.send(request(&api, &sql, "json"));
    assert_eq!(j.status, 200, "{}", j.body);
    assert_eq!(
        j.header("x-row-count"),
        None,
        "a streamed answer's row count is not known when it starts"
    );
    assert_eq!(j.header("content-length"), None, "streamed, not sent whole");
    let body = j.json();
    assert_eq!(body["columns"], json!(["uscc", "name", "capacity"]));
    assert_eq!(body["row_count"], 64_000);
    assert_eq!(body["rows"].as_array().unwrap().len(), 64_000);
    let rec = completion(&node, &j.header("x-request-id").unwrap());
    assert_eq!(rec["status"], 200, "{rec}");
    assert_eq!(rec["rows"], 64_000, "{rec}");
    assert_eq!(rec["bytes"], j.body.len(), "{rec}");
    assert_eq!(rec["datasets"], json!(["320600-YJJ-00001"]));

    let n = api.send(request(&api, &sql, "ndjson"));
    assert_eq!(n.status, 200);
    assert_eq!(n.header("content-length"), None);
    let lines: Vec<&str> = n.body.lines().collect();
    assert_eq!(lines.len(), 64_000);
    for l in [lines[0], lines[63_999]] {
        let row: Value = serde_json::from_str(l).unwrap();
        assert!(row["uscc"].is_string() && row["name"].is_string(), "{l}");
    }

    let c = api.send(request(&api, &sql, "csv"));
    assert_eq!(c.status, 200);
    let lines: Vec<&str> = c.body.lines().collect();
    assert_eq!(lines.len(), 64_001, "one header line, then the rows");
    assert_eq!(lines[0], "uscc,name,capacity");
    assert_eq!(
        lines.iter().filter(|l| **l == "uscc,name,capacity").count(),
        1,
        "the header is not repeated per batch"
    );

    // Arrow IPC stream: starts with a message's continuation marker and ends with the
    // end-of-stream marker (decoding is covered by the encoder's unit tests).
    let bytes = api.block_on(async {
        request(&api, &sql, "arrow")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    assert!(bytes.len() > 64_000 * 20, "{} bytes", bytes.len());
    assert_eq!(&bytes[..4], &[0xff; 4]);
    assert_eq!(
        &bytes[bytes.len() - 8..],
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]
    );
}

#[test]
fn a_streamed_answer_stopped_by_a_limit_is_cut_off_and_the_cli_keeps_no_partial_file() {
    let node =
        DemoNode::start().serve_with_table("query", json!({"buffer_kb": 16, "max_rows": 10_000}));
    let api = node.client("dsj-system");
    let sql = cross3();
    let (status, rid, read) = api.block_on(async {
        let mut resp = request(&api, &sql, "ndjson").send().await.unwrap();
        let status = resp.status().as_u16();
        let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let mut got = 0usize;
        let end = loop {
            match resp.chunk().await {
                Ok(Some(c)) => got += c.len(),
                Ok(None) => break Ok(got),
                Err(e) => break Err((got, e.to_string())),
            }
        };
        (status, rid, end)
    });
    assert_eq!(status, 200, "the answer had started");
    let (got, err) = read.expect_err("the transfer must fail, not end as if complete");
    assert!(got > 0, "{err}");
    let rec = completion(&node, &rid);
    assert_eq!(rec["status"], 413, "{rec}");
    assert_eq!(rec["decision"], "error", "{rec}");
    let reason = rec["reason"].as_str().unwrap();
    assert!(reason.contains("more than 10000 rows"), "{reason}");
    assert!(reason.contains("cut off"), "{reason}");
    let rows = rec["rows"].as_u64().unwrap();
    assert!(rows > 0 && rows <= 10_000, "{rec}");
    assert!(node.log().contains("cut off"), "the node's log says so");

    // The CLI fails and leaves no partial file behind.
    let out = node.dir.join("partial.ndjson");
    let (code, stderr) = cli_query(&node, &sql, "ndjson", &out);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("cut off"), "{stderr}");
    assert!(
        !out.exists(),
        "a partial answer must not pass for the result"
    );

    // Under the limit the CLI writes the streamed answer whole.
    let under = format!("SELECT a.uscc, b.name FROM {T} a, {T} b, {T} c LIMIT 9000");
    let (code, stderr) = cli_query(&node, &under, "csv", &out);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 9001);
    assert!(stderr.contains("bytes written to"), "{stderr}");
    // NDJSON rows are counted as they arrive.
    let (code, stderr) = cli_query(&node, &under, "ndjson", &out);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("9000 row(s) written to"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 9000);
}

/// `yiwang query SQL --format F --out PATH` as dsj-system: exit code and stderr.
fn cli_query(node: &DemoNode, sql: &str, format: &str, out: &std::path::Path) -> (i32, String) {
    let out = out.to_str().unwrap();
    let args = [
        "query",
        sql,
        "--purpose",
        PURPOSE,
        "--format",
        format,
        "--out",
        out,
    ];
    let (code, _, stderr) = cli(node, "dsj-system", &args);
    (code, stderr)
}

#[test]
fn a_huge_answer_is_not_held_in_memory_and_stops_when_the_client_goes_away() {
    let node = DemoNode::start().serve_with_table(
        "query",
        json!({"max_rows": 10_000_000, "timeout_ms": 600_000}),
    );
    let api = node.client("dsj-system");
    // 2.56 million rows of four 18-character codes: about 250 MB as NDJSON.
    let sql = format!(
        "SELECT a.uscc AS a, b.uscc AS b, c.uscc AS c, d.uscc AS d FROM {T} a, {T} b, {T} c, {T} d"
    );
    // Warm up the same plan, so the baseline includes what any such query allocates.
    let warm = api.send(request(&api, &format!("{sql} LIMIT 20000"), "ndjson"));
    assert_eq!(warm.status, 200, "{}", warm.body);
    let before = node.rss_bytes().unwrap();
    let rid = api.block_on(async {
        let mut resp = request(&api, &sql, "ndjson").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let first = resp.chunk().await.unwrap().unwrap();
        assert!(!first.is_empty());
        // Stop reading: a node that buffered the answer would now compute all of it.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let held = node.rss_bytes().unwrap().saturating_sub(before);
        assert!(
            held < 64 << 20,
            "the node holds {} MiB more while the client does not read",
            held >> 20
        );
        // The client goes away (the runtime must run a moment to close the stream).
        drop(resp);
        tokio::time::sleep(Duration::from_millis(500)).await;
        rid
    });
    node.assert_idle();
    let rec = completion(&node, &rid);
    assert_eq!(rec["status"], 499, "{rec}");
    let rows = rec["rows"].as_u64().unwrap();
    assert!(rows > 0 && rows < 2_560_000, "{rec}");
    // The node still answers.
    let r = api.send(request(
        &api,
        &format!("SELECT count(*) AS n FROM {T}"),
        "json",
    ));
    assert_eq!(r.json()["rows"][0]["n"], 40);
}

#[test]
fn a_streamed_answer_past_its_time_limit_stops_even_while_the_client_does_not_read() {
    let node = DemoNode::start().serve_with_table(
        "query",
        json!({"max_rows": 10_000_000, "timeout_ms": 2_000, "buffer_kb": 16}),
    );
    let api = node.client("dsj-system");
    let sql = format!(
        "SELECT a.uscc AS a, b.uscc AS b, c.uscc AS c, d.uscc AS d FROM {T} a, {T} b, {T} c, {T} d"
    );
    let (rid, end) = api.block_on(async {
        let mut resp = request(&api, &sql, "ndjson").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        resp.chunk().await.unwrap().unwrap();
        // The client stalls past the deadline; the node must stop the query meanwhile.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let end = loop {
            match resp.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.to_string()),
            }
        };
        (rid, end)
    });
    assert!(
        end.is_err(),
        "the transfer must break off, not end as if complete"
    );
    node.assert_idle();
    let rec = completion(&node, &rid);
    assert_eq!(rec["status"], 504, "{rec}");
    assert!(rec["reason"].as_str().unwrap().contains("2000 ms"), "{rec}");
}
