//! The audit trail: every read and change recorded, auditors only, tampering found,
//! nothing lost in a crash, and no data served when the trail cannot be written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yiwang_tests::{DemoNode, binary, cli};

const ENTERPRISES: &str = "/v1/datasets/320600-YJJ-00001/records";

fn records(node: &DemoNode, who: &str, query: &str) -> Vec<Value> {
    let r = node.client(who).get(&format!("/v1/audit?{query}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["complete"], true, "{}", r.body);
    r.json()["records"].as_array().unwrap().clone()
}

/// Every record matching `query`, following the cursor.
fn all_records(node: &DemoNode, query: &str) -> Vec<Value> {
    let auditor = node.client("auditor");
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = auditor
            .get(&format!("/v1/audit?{query}&limit=1000{cursor}"))
            .json();
        out.extend(page["records"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

#[test]
fn reads_and_denials_are_recorded_for_auditors() {
    let node = DemoNode::start();
    let reader = node.client("dsj-system");
    let ok = reader.read(
        &format!("{ENTERPRISES}?limit=4&fields=uscc,legal_rep_id"),
        "audit-test-allow",
    );
    assert_eq!(ok.status, 200);
    let rid_ok = ok.header("x-request-id").unwrap();
    let denied = reader.read("/v1/datasets/320600-JTJ-00001/records", "audit-test-deny");
    assert_eq!(denied.status, 403);
    let rid_denied = denied.header("x-request-id").unwrap();
    let bad = reader.get(&format!("{ENTERPRISES}?limit=1"));
    assert_eq!(bad.status, 400);

    let all = records(
        &node,
        "auditor",
        "principal=spiffe://yiwang.local/dept/320600-DSJ/city-ops&limit=1000",
    );
    let find = |rid: &str| {
        all.iter()
            .find(|r| r["request_id"] == rid && r.get("completes").is_none())
            .cloned()
            .unwrap_or_else(|| panic!("no record for {rid}: {all:?}"))
    };
    let a = find(&rid_ok);
    assert_eq!(a["decision"], "allow");
    assert_eq!(a["action"], "records.read");
    assert_eq!(a["dataset"], "320600-YJJ-00001");
    assert_eq!(a["provider_dept"], "320600-YJJ");
    assert_eq!(a["dept"], "320600-DSJ");
    assert_eq!(a["fields"], json!(["uscc", "legal_rep_id"]));
    assert_eq!(a["purpose"], "audit-test-allow");
    assert_eq!(a["rows"], 4);
    assert_eq!(a["bytes"].as_u64().unwrap(), ok.body.len() as u64);
    assert_eq!(a["status"], 200);
    assert_eq!(a["node"], 1);
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("p, system, read, unconditional, any")
    );
    assert_eq!(a["hash"].as_str().unwrap().len(), 64);
    // The data response is followed by its completion record: what was actually sent.
    let done = all
        .iter()
        .find(|r| r["completes"] == a["seq"])
        .unwrap_or_else(|| panic!("no completion record for {a}"));
    assert_eq!(done["request_id"], rid_ok.as_str());
    assert_eq!(done["bytes"].as_u64().unwrap(), ok.body.len() as u64);
    assert_eq!(done["status"], 200);
    assert!(done["duration_ms"].is_u64(), "{done}");
    assert!(done["seq"].as_u64() > a["seq"].as_u64());
    let d = find(&rid_denied);
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["status"], 403);
    assert_eq!(d["rows"], 0);
    assert!(
        !all.iter().any(|r| r["completes"] == d["seq"]),
        "a denial sends no data and has no completion record"
    );
    assert!(
        all.iter()
            .any(|r| r["decision"] == "error" && r["status"] == 400)
    );

    // Filters and paging.
    let denies = records(&node, "auditor", "decision=deny");
    assert!(!denies.is_empty() && denies.iter().all(|r| r["decision"] == "deny"));
    let by_field = records(&node, "auditor", "field=legal_rep_id&provider=320600-YJJ");
    assert!(by_field.iter().any(|r| r["request_id"] == rid_ok.as_str()));
    assert!(by_field.iter().all(|r| {
        r["fields"]
            .as_array()
            .unwrap()
            .contains(&json!("legal_rep_id"))
    }));
    let by_purpose = records(&node, "auditor", "purpose=test-allow&consumer=320600-DSJ");
    assert!(!by_purpose.is_empty());
    assert!(
        by_purpose
            .iter()
            .all(|r| r["purpose"] == "audit-test-allow")
    );
    assert!(records(&node, "auditor", "purpose=test-allow&consumer=320600-JTJ").is_empty());
    let one = records(&node, "auditor", &format!("request_id={rid_ok}"));
    assert_eq!(one.len(), 2, "request and completion: {one:?}");
    let page = node.client("auditor").get("/v1/audit?limit=2").json();
    assert_eq!(page["records"].as_array().unwrap().len(), 2);
    let next = page["next_cursor"].as_str().unwrap().to_string();
    let page2 = node
        .client("auditor")
        .get(&format!("/v1/audit?limit=2&cursor={next}"))
        .json();
    assert_eq!(
        page2["records"][0]["seq"].as_u64().unwrap(),
        page["records"][1]["seq"].as_u64().unwrap() + 1,
        "pages follow each other without gaps: {page} {page2}"
    );
    for bad in [
        "from=yesterday",
        "cursor=12",
        "limit=0",
        "node=x",
        "decision=maybe",
        "colour=red",
    ] {
        let r = node.client("auditor").get(&format!("/v1/audit?{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    // Only auditors; a department auditor sees only records touching their department.
    let r = node.client("dsj-system").get("/v1/audit");
    assert_eq!(r.status, 403, "{}", r.body);
    let dept_view = records(&node, "yjj-auditor", "limit=1000");
    assert!(!dept_view.is_empty());
    assert!(
        dept_view
            .iter()
            .all(|r| r["dept"] == "320600-YJJ" || r["provider_dept"] == "320600-YJJ")
    );
    assert!(dept_view.iter().any(|r| r["request_id"] == rid_ok.as_str()));
    assert!(
        !dept_view
            .iter()
            .any(|r| r["request_id"] == rid_denied.as_str()),
        "JTJ's denial is not YJJ's business"
    );

    // Catalog changes are audited too.
    node.client("jtj-steward")
        .post("/v1/access-requests/none/approve", &json!({}));
    let changes = records(
        &node,
        "auditor",
        "principal=spiffe://yiwang.local/dept/320600-JTJ/steward",
    );
    assert!(
        changes
            .iter()
            .any(|r| r["action"] == "access.approve" && r["status"] == 404)
    );

    // Who read whom.
    let s = node.client("auditor").get("/v1/audit/summary");
    assert_eq!(s.status, 200, "{}", s.body);
    let pairs = s.json()["pairs"].as_array().unwrap().clone();
    let pair = |c: &str, p: &str| {
        pairs
            .iter()
            .find(|x| x["consumer"] == c && x["provider"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("no pair {c} -> {p}: {pairs:?}"))
    };
    let dsj_yjj = pair("320600-DSJ", "320600-YJJ");
    assert!(dsj_yjj["allowed"].as_u64().unwrap() >= 1, "{dsj_yjj}");
    assert!(dsj_yjj["rows"].as_u64().unwrap() >= 4, "{dsj_yjj}");
    assert!(
        dsj_yjj["principals"]
            .as_array()
            .unwrap()
            .contains(&json!("spiffe://yiwang.local/dept/320600-DSJ/city-ops"))
    );
    assert_eq!(pair("320600-DSJ", "320600-JTJ")["denied"], 1);
    let r = node.client("auditor").get("/v1/audit/summary?limit=5");
    assert_eq!(r.status, 400, "{}", r.body);
    let mine = node.client("yjj-auditor").get("/v1/audit/summary").json();
    assert!(
        mine["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["consumer"] == "320600-YJJ" || p["provider"] == "320600-YJJ"),
        "{mine}"
    );

    // Export: CSV with a header, and NDJSON, through the CLI.
    let out = node.dir.join("audit.csv");
    let (code, _, e) = cli(
        &node,
        "auditor",
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--consumer",
            "320600-DSJ",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{e}");
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.split("\r\n");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("seq,node,time,request_id,principal,dept")
    );
    assert!(csv.contains(&rid_ok) && csv.contains("audit-test-allow"));
    let (code, ndjson, e) = cli(
        &node,
        "auditor",
        &["audit", "export", "--dataset", "320600-YJJ-00001"],
    );
    assert_eq!(code, 0, "{e}");
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|r| r["request_id"] == rid_ok.as_str()));
    assert!(lines.iter().all(|r| r["dataset"] == "320600-YJJ-00001"));
    let (code, table, e) = cli(&node, "auditor", &["audit", "summary"]);
    assert_eq!(code, 0, "{e}");
    assert!(
        table.contains("320600-DSJ") && table.contains("denied"),
        "{table}"
    );

    let v = node.client("auditor").get("/v1/audit/verify").json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["nodes"][0]["node"], 1, "{v}");
}

fn verify_offline(path: &Path) -> (i32, String) {
    let out = Command::new(binary())
        .args(["audit", "verify", "--path"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut s: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    s.sort();
    s
}

fn verify_on(node: &DemoNode) -> Value {
    let r = node.client("auditor").get("/v1/audit/verify");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn problems(v: &Value) -> String {
    v["nodes"][0]["problems"].to_string()
}

/// Reads `n` pages as the city's data office, each with purpose `<tag><i>`.
fn read_n(node: &DemoNode, n: usize, tag: &str) {
    let reader = node.client("dsj-system");
    for i in 0..n {
        let r = reader.read(&format!("{ENTERPRISES}?limit=1"), &format!("{tag}{i}"));
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[test]
fn verify_detects_every_kind_of_edit() {
    // Small segments, so the log spans several; anchors every second.
    let node = DemoNode::start().serve_again("small-segments.toml", |cfg| {
        cfg.as_table_mut().unwrap().insert(
            "audit".into(),
            toml::Value::try_from(json!({"segment_kb": 4, "anchor_interval_s": 1})).unwrap(),
        );
    });
    read_n(&node, 30, "p");
    let dir = node.audit_dir();
    let segs = segments(&dir);
    assert!(segs.len() >= 3, "{segs:?}");
    let v = verify_on(&node);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["nodes"][0]["segments"].as_u64().unwrap() >= 3, "{v}");

    // Offline, on a copy of a sealed segment.
    let sealed = std::fs::read_to_string(&segs[1]).unwrap();
    let lines: Vec<&str> = sealed.lines().collect();
    assert!(lines.len() >= 4);
    let check = |name: &str, content: String, needle: &str| {
        let path = node.dir.join(format!("tampered-{name}.log"));
        std::fs::write(&path, content).unwrap();
        let (code, out) = verify_offline(&path);
        assert_eq!(code, 1, "{name} not detected: {out}");
        assert!(out.contains(needle), "{name}: {out}");
    };
    let (code, out) = verify_offline(&dir);
    assert_eq!(code, 0, "{out}");
    let mut modified = lines.clone();
    let changed = lines[2].replacen("\"rows\":1", "\"rows\":0", 1);
    assert_ne!(changed, lines[2]);
    modified[2] = &changed;
    check("modified", modified.join("\n") + "\n", "modified");
    let mut removed = lines.clone();
    removed.remove(2);
    check("removed", removed.join("\n") + "\n", "removed or reordered");
    let mut reordered = lines.clone();
    reordered.swap(1, 2);
    check(
        "reordered",
        reordered.join("\n") + "\n",
        "removed or reordered",
    );

    // On the live log, each edit is found by the running node, then undone.
    let live = |path: &Path, content: String, needle: &str| {
        let original = std::fs::read(path).unwrap();
        std::fs::write(path, content).unwrap();
        let v = verify_on(&node);
        std::fs::write(path, &original).unwrap();
        assert_eq!(v["ok"], false, "not detected: {needle}");
        assert!(problems(&v).contains(needle), "{needle}: {v}");
        assert_eq!(verify_on(&node)["ok"], true, "undone");
    };
    live(&segs[1], modified.join("\n") + "\n", "modified");
    live(&segs[1], removed.join("\n") + "\n", "removed or reordered");
    live(
        &segs[1],
        reordered.join("\n") + "\n",
        "removed or reordered",
    );
    // A whole early segment removed, without an anchored retention cut.
    let first = std::fs::read(&segs[0]).unwrap();
    std::fs::remove_file(&segs[0]).unwrap();
    let v = verify_on(&node);
    std::fs::write(&segs[0], &first).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        problems(&v).contains("without an anchored retention cut"),
        "{v}"
    );

    // The tail cut after the last anchor: the running node knows its own head.
    let newest = newest_with_lines(&node, 3);
    let text = std::fs::read_to_string(&newest).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&newest, kept[..kept.len() - 2].join("\n") + "\n").unwrap();
    let v = verify_on(&node);
    assert_eq!(v["ok"], false);
    assert!(problems(&v).contains("running node's chain head"), "{v}");
    let (code, _, _) = cli(&node, "auditor", &["audit", "verify"]);
    assert_eq!(code, 1);
    std::fs::write(&newest, text).unwrap();

    // A clean stop anchors the last records, so a tail cut while the node is stopped
    // is found from Raft after the restart (no time for a periodic anchor here).
    let newest = newest_with_lines(&node, 2);
    let mut node = node;
    let (config, port, admin) = node.changed_config("again.toml", |_| {});
    let text = std::fs::read_to_string(&newest).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&newest, kept[..kept.len() - 1].join("\n") + "\n").unwrap();
    let mut node2 = DemoNode::serve(&node.dir, &config, port, admin).unwrap();
    node.hand_over_dir(&mut node2);
    let v = verify_on(&node2);
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        problems(&v).contains("the anchor published through Raft"),
        "{v}"
    );
}

/// Waits until the node has written every record it owes: a data response's completion
/// record is written after the client has the body, so it may still be on its way when
/// the test goes on to edit the newest segment.
fn settle(node: &DemoNode) {
    let size = || -> u64 {
        segments(&node.audit_dir())
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum()
    };
    let mut last = size();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = size();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Reads until the newest segment holds at least `n` records, and returns it.
fn newest_with_lines(node: &DemoNode, n: usize) -> PathBuf {
    for i in 0..50 {
        settle(node);
        let newest = segments(&node.audit_dir()).last().unwrap().clone();
        if std::fs::read_to_string(&newest).unwrap().lines().count() >= n {
            return newest;
        }
        read_n(node, 1, &format!("fill{i}-"));
    }
    panic!("the newest segment never held {n} records");
}

#[test]
fn retention_deletes_old_segments_and_the_trail_still_verifies() {
    let node = DemoNode::start().serve_again("retention.toml", |cfg| {
        cfg.as_table_mut().unwrap().insert(
            "audit".into(),
            toml::Value::try_from(json!({"segment_kb": 4, "retention": "2s"})).unwrap(),
        );
    });
    read_n(&node, 20, "old");
    std::thread::sleep(Duration::from_secs(3));
    read_n(&node, 20, "new");
    let dir = node.audit_dir();
    let deadline = Instant::now() + Duration::from_secs(20);
    let v = loop {
        let v = verify_on(&node);
        if v["nodes"][0]["first_seq"].as_u64().unwrap() > 1 || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = &v["nodes"][0];
    assert_eq!(v["ok"], true, "{v}");
    let first = report["first_seq"].as_u64().unwrap();
    assert!(first > 1, "old segments were not deleted: {v}");
    // The cut is anchored before the files go, so it is never behind them.
    assert!(
        report["anchor"]["cut"]["seq"].as_u64().unwrap() >= first,
        "{v}"
    );
    let segs = segments(&dir);
    assert!(
        !segs[0]
            .to_string_lossy()
            .ends_with(&format!("seg-{:020}.log", 1)),
        "{segs:?}"
    );
    // What is left is searchable; the old reads are gone.
    let left = all_records(&node, "action=records.read");
    assert!(left.iter().all(|r| r["seq"].as_u64().unwrap() >= first));
    assert!(left.iter().any(|r| r["purpose"] == "new19"));
}

#[test]
fn a_crash_under_read_load_loses_no_answered_request() {
    let mut node = DemoNode::start();
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let client = node.client("dsj-system");
            let answered = answered.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let req = client
                        .req(
                            reqwest::Method::GET,
                            &format!("{ENTERPRISES}?limit=2&fields=uscc"),
                        )
                        .header("x-purpose", format!("load-{t}-{i}"));
                    match client.try_send(req) {
                        Ok(r) if r.status == 200 => answered
                            .lock()
                            .unwrap()
                            .push(r.header("x-request-id").unwrap()),
                        Ok(r) => panic!("unexpected {}: {}", r.status, r.body),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    node.kill();
    for t in threads {
        t.join().unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 50,
        "only {} reads answered",
        answered.len()
    );

    let dir = node.dir.clone();
    let mut node2 = DemoNode::start_in(&dir).unwrap();
    node.hand_over_dir(&mut node2);
    let recorded: BTreeSet<String> = all_records(&node2, "action=records.read&decision=allow")
        .into_iter()
        .filter(|r| r.get("completes").is_none())
        .map(|r| r["request_id"].as_str().unwrap().to_string())
        .collect();
    let missing: Vec<&String> = answered.iter().filter(|r| !recorded.contains(*r)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered reads have no audit record: {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );
    let v = verify_on(&node2);
    assert_eq!(v["ok"], true, "{v}");
}

/// Runs the node with its audit trail on a 256 KiB tmpfs of its own (a private mount
/// namespace through `unshare`), fills the disk, and checks that reads are refused
/// with 503 — never answered unaudited — and served again once there is room.
#[test]
fn a_full_audit_disk_refuses_data_with_503() {
    let mut demo = DemoNode::start();
    let audit_dir = demo.dir.join("audit-tmpfs");
    std::fs::create_dir_all(&audit_dir).unwrap();
    let (config, port, admin) = demo.changed_config("tmpfs.toml", |cfg| {
        cfg.as_table_mut().unwrap().insert(
            "audit".into(),
            toml::Value::try_from(json!({"dir": audit_dir.to_str().unwrap()})).unwrap(),
        );
    });
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" serve --config "$3""#)
        .arg("sh")
        .arg(&audit_dir)
        .arg(binary())
        .arg(&config);
    let mut node = DemoNode::serve_command(&demo.dir, cmd, port, admin)
        .expect("unshare with a user namespace must work here (ops/test.sh checks it)");
    demo.hand_over_dir(&mut node);
    // The node's view of its tmpfs.
    let pid = node.pid().unwrap();
    let inside =
        PathBuf::from(format!("/proc/{pid}/root")).join(audit_dir.strip_prefix("/").unwrap());
    assert!(inside.join("node-1").is_dir(), "{}", node.log());

    read_n(&node, 3, "before");
    // Fill the disk.
    let filler = inside.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![b'x'; 4096];
        while f.write_all(&chunk).and_then(|_| f.sync_all()).is_ok() {}
    }
    // Records may still fit in the last page the log already has; once it is full,
    // every read is refused, and whatever was answered before that was recorded.
    let reader = node.client("dsj-system");
    let mut answered_while_full = Vec::new();
    let mut refused = 0;
    for i in 0..200 {
        let r = reader.read(&format!("{ENTERPRISES}?limit=5"), &format!("full{i}"));
        match r.status {
            200 => answered_while_full.push(format!("full{i}")),
            503 => {
                refused += 1;
                assert_eq!(r.code(), "audit_unavailable", "{}", r.body);
                assert!(r.message().contains("No space left"), "{}", r.body);
                if refused == 5 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(refused, 5, "the full disk never refused a read");
    let ready = node.readyz();
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("audit trail not writable"), "{ready}");

    // Room again: served and audited.
    std::fs::remove_file(&filler).unwrap();
    let r = reader.read(&format!("{ENTERPRISES}?limit=5"), "after");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(node.readyz().starts_with("HTTP/1.1 200"));
    let recorded = all_records(&node, "action=records.read");
    assert!(recorded.iter().any(|r| r["purpose"] == "after"));
    let purposes: BTreeSet<&str> = recorded
        .iter()
        .filter(|r| r.get("completes").is_none())
        .map(|r| r["purpose"].as_str().unwrap())
        .filter(|p| p.starts_with("full"))
        .collect();
    let answered: BTreeSet<&str> = answered_while_full.iter().map(String::as_str).collect();
    assert_eq!(
        purposes, answered,
        "exactly the reads answered while the disk filled up are recorded"
    );
    let v = verify_on(&node);
    let problems = problems(&v);
    // This chain starts afresh on the tmpfs, so only the anchor of the demo's first
    // chain may disagree with it; the chain itself must be whole.
    assert!(
        !problems.contains("modified")
            && !problems.contains("removed or reordered")
            && !problems.contains("prev_hash"),
        "{v}"
    );
}
