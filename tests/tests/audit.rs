//! The audit trail: every read and change recorded, auditors only, and tampering found.

use serde_json::{Value, json};
use yiwang_tests::{DemoNode, binary, cli};

const ENTERPRISES: &str = "/v1/datasets/320600-YJJ-00001/records";

fn records(node: &DemoNode, who: &str, query: &str) -> Vec<Value> {
    let r = node.client(who).get(&format!("/v1/audit?{query}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["records"].as_array().unwrap().clone()
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
            .find(|r| r["request_id"] == rid)
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
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("p, system, read, unconditional, any")
    );
    assert_eq!(a["hash"].as_str().unwrap().len(), 64);
    let d = find(&rid_denied);
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["status"], 403);
    assert_eq!(d["rows"], 0);
    assert!(
        all.iter()
            .any(|r| r["decision"] == "error" && r["status"] == 400)
    );

    // Filters and paging.
    let denies = records(&node, "auditor", "decision=deny");
    assert!(denies.iter().all(|r| r["decision"] == "deny"));
    let page = node.client("auditor").get("/v1/audit?limit=2").json();
    let next = page["next_cursor"].as_u64().unwrap();
    let page2 = node
        .client("auditor")
        .get(&format!("/v1/audit?limit=2&cursor={next}"))
        .json();
    assert!(page2["records"][0]["seq"].as_u64().unwrap() > next - 1);
    assert_eq!(
        node.client("auditor")
            .get("/v1/audit?from=yesterday")
            .status,
        400
    );

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

    let v = node.client("auditor").get("/v1/audit/verify").json();
    assert_eq!(v["ok"], true, "{v}");
}

fn verify_file(path: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(binary())
        .args(["audit", "verify", "--file"])
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

#[test]
fn verify_detects_modified_removed_and_reordered_records() {
    let mut node = DemoNode::start();
    let reader = node.client("dsj-system");
    for i in 0..6 {
        assert_eq!(
            reader
                .read(&format!("{ENTERPRISES}?limit=1"), &format!("p{i}"))
                .status,
            200
        );
    }
    let (code, o, e) = cli(&node, "auditor", &["audit", "verify"]);
    assert_eq!(code, 0, "{o}{e}");
    node.stop();
    let file = node.audit_file();
    let (code, out) = verify_file(&file);
    assert_eq!(code, 0, "{out}");
    let original = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 6);

    let check = |name: &str, content: String, needle: &str| {
        let path = node.dir.join(format!("tampered-{name}.log"));
        std::fs::write(&path, content).unwrap();
        let (code, out) = verify_file(&path);
        assert_eq!(code, 1, "{name} not detected: {out}");
        assert!(out.contains(needle), "{name}: {out}");
    };
    // Modified: one purpose changed.
    let modified = original.replacen("\"purpose\":\"p2\"", "\"purpose\":\"p9\"", 1);
    assert_ne!(modified, original);
    check("modified", modified, "modified");
    // Removed: one line dropped.
    let mut removed = lines.clone();
    removed.remove(2);
    check("removed", removed.join("\n") + "\n", "removed or reordered");
    // Reordered: two lines swapped.
    let mut reordered = lines.clone();
    reordered.swap(1, 2);
    check(
        "reordered",
        reordered.join("\n") + "\n",
        "removed or reordered",
    );

    // Tampering with the live file is found by the server too.
    let mut removed = lines.clone();
    removed.remove(1);
    std::fs::write(&file, removed.join("\n") + "\n").unwrap();
    let dir = node.dir.clone();
    let node2 = DemoNode::start_in(&dir).unwrap();
    let v = node2.client("auditor").get("/v1/audit/verify").json();
    assert_eq!(v["ok"], false, "{v}");
    let (code, _, _) = cli(&node2, "auditor", &["audit", "verify"]);
    assert_eq!(code, 1);
}
