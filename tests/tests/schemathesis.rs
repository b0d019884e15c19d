//! The OpenAPI description against the running API, by schemathesis (from PyPI, in the
//! test venv): requests generated from `GET /v1/openapi.json` — examples, boundary
//! values and random inputs for every operation — sent over mutual TLS as an admin (who
//! may call every endpoint) to a live demo node. No answer may be a 5xx, and every
//! answer must match the status codes, headers and schemas the description gives.

use std::process::Command;

use yiwang_tests::{DemoNode, required_env};

#[test]
fn schemathesis_finds_no_server_errors_and_no_schema_violations() {
    let schemathesis = required_env("YIWANG_TEST_SCHEMATHESIS");
    let node = DemoNode::start();
    let certs = node.certs();
    let report = node.certs().parent().unwrap().join("schemathesis.xml");
    let out = Command::new(&schemathesis)
        .arg("run")
        .arg(format!("{}/v1/openapi.json", node.base()))
        .arg("--url")
        .arg(node.base())
        .arg("--tls-verify")
        .arg(certs.join("ca.pem"))
        .arg("--request-cert")
        .arg(certs.join("admin.pem"))
        .arg("--request-cert-key")
        .arg(certs.join("admin.key"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "8",
            "--seed",
            "20261201",
            // One worker: with two, schemathesis 4.32.5 sometimes fails inside its own
            // schema walker (a KeyError from a cache shared between threads).
            "--workers",
            "1",
            "--request-timeout",
            "15",
            "--max-failures",
            "5",
            // Raft and peer endpoints answer only other nodes (403 to the admin).
            "--exclude-path-regex",
            "^/raft/",
            "--report",
            "junit",
            "--report-junit-path",
        ])
        .arg(&report)
        // Its cache (`.schemathesis/`) goes to the node's temporary folder.
        .current_dir(certs.parent().unwrap())
        .env("NO_COLOR", "1")
        // NDJSON bodies for the bulk endpoints.
        .env("SCHEMATHESIS_HOOKS", "st_hooks")
        .env(
            "PYTHONPATH",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python"),
        )
        .env_remove("REQUESTS_CA_BUNDLE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}\nnode log:\n{}",
        node.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Nothing inside the node failed either (a panic in a background task, such as the
    // Raft core, does not show in any answer at first).
    let log = node.log();
    assert!(!log.contains("panicked"), "the node panicked:\n{log}");
    // It really ran: operations were tested, not all skipped.
    assert!(
        stdout.contains("passed") && !stdout.contains("0 passed"),
        "{stdout}"
    );
    // The node is still serving.
    assert_eq!(node.client("dsj-system").get("/v1/whoami").status, 200);
}
