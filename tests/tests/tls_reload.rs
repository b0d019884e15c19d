//! TLS material that changes while the node runs: certificates revoked through the
//! CA's revocation list, and certificate, key and CA files replaced and reloaded (on
//! SIGHUP, or by the periodic check) without a restart — and a broken replacement
//! refused while the node keeps serving.

use std::path::Path;
use std::time::{Duration, Instant};

use yiwang_tests::{DemoNode, cli_offline, port_of, raw_whoami, tls_config};

fn issue(certs: &Path, args: &[&str]) {
    let ca = certs.to_str().unwrap();
    let mut all = vec!["cert", "issue", "--ca", ca];
    all.extend_from_slice(args);
    let (code, out) = cli_offline(&all);
    assert_eq!(code, 0, "{out}");
}

fn revoke(certs: &Path, name: &str) -> (i32, String) {
    let cert = certs.join(format!("{name}.pem"));
    cli_offline(&[
        "cert",
        "revoke",
        "--ca",
        certs.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--reason",
        "key-compromise",
    ])
}

/// A TLS handshake with the node as `name` (a new connection): the server's
/// certificate, or why the handshake or the first request failed.
fn handshake(node: &DemoNode, name: &str) -> Result<Vec<u8>, String> {
    let c = node.certs();
    let cfg = tls_config(
        &c.join("ca.pem"),
        &c.join(format!("{name}.pem")),
        &c.join(format!("{name}.key")),
    );
    let answer = raw_whoami(port_of(&node.base()), cfg)?;
    if !answer.text.starts_with("HTTP/1.1 200") {
        return Err(format!("answer: {}", answer.text));
    }
    Ok(answer.server_cert)
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metric(node: &DemoNode, line_start: &str) -> Option<String> {
    node.admin_get("/metrics")
        .lines()
        .find(|l| l.starts_with(line_start))
        .map(|l| l[line_start.len()..].trim().to_string())
}

#[test]
fn a_revoked_certificate_is_refused_once_the_list_is_reloaded() {
    let mut demo = DemoNode::start();
    let certs = demo.certs();
    let dept = ["--dept", "320600-DSJ", "--name"];
    for name in ["old-laptop", "lost-laptop"] {
        let mut args = dept.to_vec();
        args.push(name);
        issue(&certs, &args);
    }
    let (code, out) = revoke(&certs, "old-laptop");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("number 1, 1 certificate(s)"), "{out}");
    let crl = certs.join("ca.crl.pem");
    let (path, port, admin) = demo.changed_config("crl.toml", |cfg| {
        let tls = cfg["tls"].as_table_mut().unwrap();
        tls.insert(
            "crl".into(),
            toml::Value::String(crl.to_str().unwrap().into()),
        );
        cfg["tls"]["reload_interval_s"] = toml::Value::Integer(1);
    });
    let mut node = DemoNode::serve(certs.parent().unwrap(), &path, port, admin)
        .expect("node with a revocation list");
    demo.hand_over_dir(&mut node);

    let refused = handshake(&node, "old-laptop").expect_err("a revoked certificate is refused");
    assert!(refused.to_lowercase().contains("revoked"), "{refused}");
    handshake(&node, "lost-laptop").expect("not revoked yet");
    assert_eq!(
        metric(&node, "yiwang_tls_revoked_certificates ").as_deref(),
        Some("1")
    );

    // Revoked while the node runs: refused on new connections within the check
    // interval, without a restart; other certificates unaffected.
    let (code, out) = revoke(&certs, "lost-laptop");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("number 2, 2 certificate(s)"), "{out}");
    wait_until("lost-laptop refused", Duration::from_secs(10), || {
        handshake(&node, "lost-laptop").is_err()
    });
    handshake(&node, "dsj-system").expect("others still get in");
    assert_eq!(
        metric(&node, "yiwang_tls_revoked_certificates ").as_deref(),
        Some("2")
    );
    assert_eq!(
        metric(&node, r#"yiwang_tls_reloads_total{result="ok"} "#).as_deref(),
        Some("1")
    );
    assert!(
        node.log().contains("2 revoked certificate(s) listed"),
        "{}",
        node.log()
    );

    // Revoking twice, or a certificate of another CA, is refused and changes nothing.
    let (code, out) = revoke(&certs, "lost-laptop");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already revoked"), "{out}");
    let other_ca = tempfile::tempdir().unwrap();
    let (code, out) = cli_offline(&[
        "cert",
        "init-ca",
        "--out",
        other_ca.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let ca = other_ca.path().to_str().unwrap();
    let (code, out) = cli_offline(&[
        "cert",
        "issue",
        "--ca",
        ca,
        "--dept",
        "320600-DSJ",
        "--name",
        "stranger",
    ]);
    assert_eq!(code, 0, "{out}");
    let stranger = other_ca.path().join("stranger.pem");
    let (code, out) = cli_offline(&[
        "cert",
        "revoke",
        "--ca",
        certs.to_str().unwrap(),
        "--cert",
        stranger.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("was not issued by the CA"), "{out}");
}

#[test]
fn node_certificates_are_reloaded_on_sighup_and_a_broken_set_is_refused() {
    let mut demo = DemoNode::start();
    let certs = demo.certs();
    let (path, port, admin) = demo.changed_config("manual-reload.toml", |cfg| {
        cfg["tls"]["reload_interval_s"] = toml::Value::Integer(0);
    });
    let mut node = DemoNode::serve(certs.parent().unwrap(), &path, port, admin).expect("node");
    demo.hand_over_dir(&mut node);
    let hup = |node: &DemoNode| {
        let pid = node.pid().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let before = handshake(&node, "dsj-system").unwrap();

    // A renewed certificate for the same node, put in place of the old one.
    issue(
        &certs,
        &[
            "--node",
            "1",
            "--name",
            "node-1-renewed",
            "--ip",
            "127.0.0.1",
        ],
    );
    let (pem, key) = (certs.join("node-1.pem"), certs.join("node-1.key"));
    let (old_pem, old_key) = (std::fs::read(&pem).unwrap(), std::fs::read(&key).unwrap());
    std::fs::copy(certs.join("node-1-renewed.pem"), &pem).unwrap();
    std::fs::copy(certs.join("node-1-renewed.key"), &key).unwrap();
    // With the periodic check off, nothing changes until SIGHUP.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(handshake(&node, "dsj-system").unwrap(), before);
    hup(&node);
    wait_until(
        "the renewed certificate is served",
        Duration::from_secs(10),
        || handshake(&node, "dsj-system").is_ok_and(|c| c != before),
    );
    let renewed = handshake(&node, "dsj-system").unwrap();

    // A key that does not match: refused, the renewed set stays in use.
    std::fs::write(&key, &old_key).unwrap();
    hup(&node);
    wait_until(
        "the failed reload is logged",
        Duration::from_secs(10),
        || node.log().contains("TLS files not reloaded (SIGHUP)"),
    );
    assert_eq!(handshake(&node, "dsj-system").unwrap(), renewed);
    assert_eq!(
        metric(&node, r#"yiwang_tls_reloads_total{result="failed"} "#).as_deref(),
        Some("1")
    );

    // Another node's certificate: refused by identity.
    issue(
        &certs,
        &["--node", "2", "--name", "node-2-x", "--ip", "127.0.0.1"],
    );
    std::fs::copy(certs.join("node-2-x.pem"), &pem).unwrap();
    std::fs::copy(certs.join("node-2-x.key"), &key).unwrap();
    hup(&node);
    wait_until(
        "the identity change is refused",
        Duration::from_secs(10),
        || {
            node.log()
                .contains("not this node (spiffe://yiwang.local/node/1)")
        },
    );
    assert_eq!(handshake(&node, "dsj-system").unwrap(), renewed);

    // The original files back: reloaded.
    std::fs::write(&pem, &old_pem).unwrap();
    std::fs::write(&key, &old_key).unwrap();
    hup(&node);
    wait_until(
        "the original certificate is served again",
        Duration::from_secs(10),
        || handshake(&node, "dsj-system").is_ok_and(|c| c == before),
    );
}
