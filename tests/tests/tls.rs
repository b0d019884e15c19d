//! The gateway's TLS and identity layer, as a client meets it.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use yiwang_tests::{Api, DemoNode, cli_offline, tls_config};

/// Sends one raw HTTP/1.1 request over a TLS connection configured by `cfg`, returning
/// the negotiated protocol version and the response head, or the error.
fn raw_request(
    port: u16,
    cfg: rustls::ClientConfig,
) -> Result<(rustls::ProtocolVersion, String), String> {
    yiwang_tests::raw_whoami(port, cfg).map(|a| (a.version, a.text))
}

fn config_with_versions(
    node: &DemoNode,
    name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let c = node.certs();
    let base = tls_config(
        &c.join("ca.pem"),
        &c.join(format!("{name}.pem")),
        &c.join(format!("{name}.key")),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(c.join("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let certs: Vec<_> =
        rustls_pki_types::CertificateDer::pem_file_iter(c.join(format!("{name}.pem")))
            .unwrap()
            .map(|x| x.unwrap())
            .collect();
    let key =
        rustls_pki_types::PrivateKeyDer::from_pem_file(c.join(format!("{name}.key"))).unwrap();
    drop(base);
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap()
}

#[test]
fn mutual_tls_identity_and_protocol_versions() {
    let node = DemoNode::start();

    // TLS 1.3 and TLS 1.2 both work with a valid client certificate.
    let (v, head) = raw_request(
        node.port,
        config_with_versions(&node, "jtj-system", &[&rustls::version::TLS13]),
    )
    .unwrap();
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_3);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_lowercase().contains("x-request-id:"), "{head}");
    let (v, head) = raw_request(
        node.port,
        config_with_versions(&node, "jtj-system", &[&rustls::version::TLS12]),
    )
    .unwrap();
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_2);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // Without a client certificate the handshake fails: no HTTP response at all.
    let c = node.certs();
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(c.join("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let anonymous = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let err = raw_request(node.port, anonymous).unwrap_err();
    assert!(!err.contains("HTTP/1.1"), "{err}");

    // A certificate from another CA fails the handshake too.
    let other = node.dir.join("other-ca");
    let (code, out) = cli_offline(&["cert", "init-ca", "--out", other.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli_offline(&[
        "cert",
        "issue",
        "--ca",
        other.to_str().unwrap(),
        "--dept",
        "320600-GAJ",
        "--name",
        "system",
    ]);
    assert_eq!(code, 0, "{out}");
    let rogue = tls_config(
        &c.join("ca.pem"),
        &other.join("system.pem"),
        &other.join("system.key"),
    );
    let err = raw_request(node.port, rogue).unwrap_err();
    assert!(!err.contains("HTTP/1.1"), "{err}");

    // The identity is the certificate's SPIFFE ID; roles come from the catalog.
    let me = node.client("jtj-system").get("/v1/whoami");
    assert_eq!(me.status, 200);
    let me = me.json();
    assert_eq!(
        me["principal"],
        "spiffe://yiwang.local/dept/320600-JTJ/system"
    );
    assert_eq!(me["dept"], "320600-JTJ");
    assert_eq!(me["roles"], json!(["system"]));
}

#[test]
fn node_and_client_identities_are_kept_apart() {
    let node = DemoNode::start();
    let c = node.certs();
    // A node certificate cannot use the client API...
    let as_node = Api::new(
        &node.base(),
        &c.join("ca.pem"),
        &c.join("node-1.pem"),
        &c.join("node-1.key"),
    );
    let r = as_node.get("/v1/datasets");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.code(), "forbidden");
    // ...and a client certificate cannot call Raft RPC.
    let r = node.client("admin").post("/raft/vote", &json!({}));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.message().contains("node certificates only"), "{}", r.body);

    // A certificate of this CA for another trust domain is refused with 401.
    let (code, out) = cli_offline(&[
        "cert",
        "issue",
        "--ca",
        c.to_str().unwrap(),
        "--dept",
        "320600-GAJ",
        "--name",
        "foreign",
        "--trust-domain",
        "other.example",
    ]);
    assert_eq!(code, 0, "{out}");
    let foreign = Api::new(
        &node.base(),
        &c.join("ca.pem"),
        &c.join("foreign.pem"),
        &c.join("foreign.key"),
    );
    let r = foreign.get("/v1/whoami");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.code(), "invalid_identity");
    assert!(!r.json()["error"]["request_id"].as_str().unwrap().is_empty());
}

#[test]
fn every_response_has_a_request_id_and_json_errors() {
    let node = DemoNode::start();
    let api = node.client("gaj-system");
    for r in [
        api.get("/v1/departments"),
        api.get("/v1/nope"),
        api.get("/v1/datasets/NOPE-1"),
        api.send(api.req(reqwest::Method::PATCH, "/v1/datasets")),
    ] {
        let id = r.header("x-request-id").expect("x-request-id header");
        assert!(!id.is_empty());
        if r.status >= 400 {
            let body = r.json();
            assert_eq!(body["error"]["request_id"], id, "{}", r.body);
            assert!(!body["error"]["message"].as_str().unwrap().is_empty());
        }
    }
    assert_eq!(api.get("/v1/nope").status, 404);
    assert_eq!(
        api.send(api.req(reqwest::Method::PATCH, "/v1/datasets"))
            .status,
        405
    );
    // A sane client-supplied request id is kept, so logs correlate across systems.
    let r = api.send(
        api.req(reqwest::Method::GET, "/v1/whoami")
            .header("x-request-id", "abc-123"),
    );
    assert_eq!(r.header("x-request-id").as_deref(), Some("abc-123"));
}

#[test]
fn cert_commands_refuse_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    assert_eq!(
        cli_offline(&["cert", "init-ca", "--out", ca.to_str().unwrap()]).0,
        0
    );
    // Re-running init-ca must not replace the CA.
    let (code, out) = cli_offline(&["cert", "init-ca", "--out", ca.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refusing to replace"), "{out}");
    let (code, out) = cli_offline(&[
        "cert",
        "issue",
        "--ca",
        ca.to_str().unwrap(),
        "--dept",
        "bad code",
        "--name",
        "x",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a valid SPIFFE ID"), "{out}");
    let (code, _) = cli_offline(&["cert", "issue", "--ca", ca.to_str().unwrap(), "--name", "x"]);
    assert_eq!(code, 2, "missing --dept/--node is a usage error");
    assert!(!Path::new(&ca.join("x.pem")).exists());
}
