//! HTTP-JSON sources against a local HTTPS API with a certificate from a test CA.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value as Json, json};
use yiwang_adapters::http_json::{HttpJsonOptions, HttpJsonSource};
use yiwang_adapters::{AdapterError, ReadRequest, Source};
use yiwang_catalog::filter::parse;
use yiwang_catalog::model::FieldType;

use crate::common::{
    adapter_error, check_trap, closed_port, context_with, field, query, trap_fields, trap_rows,
};

/// The test API: `/api/trap` pages with a cursor in `next`, `/api/linked` with the next
/// page's URL, `/api/fail` answers 500. Every request's path and query is recorded.
struct Api {
    base_url: String,
    ca_file: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Api {
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn source(&self, page_size: usize) -> HttpJsonSource {
        self.source_with(page_size, None)
    }

    fn source_with(&self, page_size: usize, client: Option<(PathBuf, PathBuf)>) -> HttpJsonSource {
        let (cert, key) = client.unzip();
        HttpJsonSource::new(
            "api-src",
            HttpJsonOptions {
                base_url: self.base_url.clone(),
                ca_file: Some(self.ca_file.clone()),
                cert,
                key,
                page_size,
                timeout_ms: 5000,
                items_field: "items".to_string(),
                next_field: "next".to_string(),
            },
        )
        .unwrap()
    }
}

fn trap_items() -> Vec<Json> {
    trap_rows()
        .iter()
        .map(|r| {
            let mut item = json!({"k": r.k, "d": r.d, "t": r.t, "x": r.x, "b": r.b});
            // A missing member reads as null.
            if let Some(s) = r.s {
                item["s"] = json!(s);
            }
            item
        })
        .collect()
}

fn page(items: &[Json], query: &str, next: impl Fn(usize, usize) -> String) -> Json {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let limit = param("limit").unwrap_or(10);
    let offset = param("cursor").unwrap_or(0).min(items.len());
    let end = (offset + limit).min(items.len());
    let next = (end < items.len()).then(|| next(end, limit));
    json!({"items": &items[offset..end], "next": next})
}

async fn start_api(require_client_cert: bool) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let issue = |names: Vec<String>, ip: bool| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        if ip {
            params
                .subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        }
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert, key)
    };
    let (server_cert, server_key) = issue(vec!["localhost".to_string()], true);
    let (client_cert, client_key) = issue(vec!["gateway.test".to_string()], false);
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let client_cert_file = dir.path().join("client.pem");
    let client_key_file = dir.path().join("client.key");
    std::fs::write(&client_cert_file, client_cert.pem()).unwrap();
    std::fs::write(&client_key_file, client_key.serialize_pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut tls = builder
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let recorded = Arc::clone(&recorded);
                    async move { Ok::<_, Infallible>(answer(&req, port, &recorded)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Api {
        base_url: format!("https://127.0.0.1:{port}/api"),
        ca_file,
        client_cert: client_cert_file,
        client_key: client_key_file,
        requests,
        _dir: dir,
    }
}

fn answer(
    req: &Request<Incoming>,
    port: u16,
    recorded: &Mutex<Vec<String>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    recorded.lock().unwrap().push(format!("{path}?{query}"));
    let body = match path.as_str() {
        "/api/trap" => page(&trap_items(), &query, |end, _| end.to_string()),
        "/api/linked" => page(&trap_items(), &query, |end, limit| {
            format!("https://127.0.0.1:{port}/api/linked?limit={limit}&cursor={end}")
        }),
        "/api/elsewhere" => json!({"items": [{"k": 1}], "next": "https://example.invalid/api/x"}),
        // Echoes the W3C trace context the request carried.
        "/api/traced" => json!({
            "items": [{"tp": req.headers().get("traceparent").and_then(|v| v.to_str().ok())}],
            "next": null
        }),
        "/api/nested" => json!({"items": [{"k": 1, "s": {"a": [1, 2]}}], "next": null}),
        "/api/fail" => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Full::new(Bytes::from_static(b"{\"error\":\"boom\"}")))
                .unwrap();
        }
        _ => {
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
    };
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_convert_types_and_match_datafusion() {
    let api = start_api(false).await;
    let source = api.source(3);
    check_trap(
        source.table_provider("trap", &trap_fields()).unwrap(),
        false,
    )
    .await;

    let ctx = context_with(&[("t", source.table_provider("trap", &trap_fields()).unwrap())]);
    api.requests.lock().unwrap().clear();
    let (rows, scans) = query(&ctx, "SELECT * FROM t").await.unwrap();
    assert_eq!(rows.len(), 13);
    assert_eq!(
        api.requests(),
        [
            "/api/trap?limit=3",
            "/api/trap?limit=3&cursor=3",
            "/api/trap?limit=3&cursor=6",
            "/api/trap?limit=3&cursor=9",
            "/api/trap?limit=3&cursor=12"
        ]
    );
    assert_eq!(scans[0].rows_read, 13);

    // The limit stops paging, and the last page asks for no more than needed.
    api.requests.lock().unwrap().clear();
    let (rows, scans) = query(&ctx, "SELECT k FROM t LIMIT 4").await.unwrap();
    assert_eq!(rows, ["1", "2", "3", "4"]);
    assert_eq!(
        api.requests(),
        ["/api/trap?limit=3", "/api/trap?limit=1&cursor=3"]
    );
    assert_eq!(scans[0].rows_read, 4);
    assert!(
        scans[0]
            .line
            .contains("request=GET /api/trap?limit=3 then next, up to 4 rows"),
        "{}",
        scans[0].line
    );

    // Next pages given as URLs on the same host are followed.
    let ctx = context_with(&[(
        "l",
        source.table_provider("linked", &trap_fields()).unwrap(),
    )]);
    let (rows, _) = query(&ctx, "SELECT count(*) FROM l").await.unwrap();
    assert_eq!(rows, ["13"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_columns() {
    let api = start_api(false).await;
    let source = api.source(5);
    let columns = source.list_columns("trap").await.unwrap();
    let expected: Vec<(String, FieldType)> = trap_fields()
        .into_iter()
        .map(|f| (f.name, f.field_type))
        .collect();
    // Members in order of first appearance: `s` is missing from no early item.
    let mut got = columns.clone();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = expected.clone();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want, "{columns:?}");

    let page = source
        .read(ReadRequest {
            table: "trap".to_string(),
            columns: vec![
                field("t", FieldType::Datetime),
                field("s", FieldType::String),
            ],
            filter: Some(parse("b = true and t >= '2026-10-01 22:00'").unwrap()),
            limit: 10,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(
        page.rows,
        [
            vec![json!("2026-10-01 22:00:00"), json!("abc")],
            vec![json!("2026-10-15 12:30:00"), json!("a_c")],
        ]
    );
    assert_eq!(page.next_cursor, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_by_kind() {
    let api = start_api(false).await;
    let source = api.source(3);
    let one = [field("k", FieldType::Integer)];
    let run = |table: &str, fields: &[yiwang_catalog::model::Field]| {
        let ctx = context_with(&[("t", source.table_provider(table, fields).unwrap())]);
        async move { query(&ctx, "SELECT * FROM t").await.unwrap_err() }
    };
    let err = run("fail", &one).await;
    let found = adapter_error(&err);
    assert!(
        matches!(&found, AdapterError::Source { message, .. } if message.contains("500")),
        "{found}"
    );
    let err = run("elsewhere", &one).await;
    assert!(
        matches!(adapter_error(&err), AdapterError::Source { .. }),
        "{err}"
    );
    let err = run(
        "nested",
        &[
            field("k", FieldType::Integer),
            field("s", FieldType::Integer),
        ],
    )
    .await;
    assert!(
        matches!(adapter_error(&err), AdapterError::Source { .. }),
        "{err}"
    );
    // Nested values are kept as JSON text in string fields.
    let ctx = context_with(&[(
        "t",
        source
            .table_provider("nested", &[field("s", FieldType::String)])
            .unwrap(),
    )]);
    let (rows, _) = query(&ctx, "SELECT s FROM t").await.unwrap();
    assert_eq!(rows, ["{\"a\":[1,2]}"]);

    // Nobody listening: unavailable, quickly.
    let down = HttpJsonSource::new(
        "down-api",
        HttpJsonOptions {
            base_url: format!("https://127.0.0.1:{}/api", closed_port()),
            ca_file: Some(api.ca_file.clone()),
            cert: None,
            key: None,
            page_size: 3,
            timeout_ms: 5000,
            items_field: "items".to_string(),
            next_field: "next".to_string(),
        },
    )
    .unwrap();
    let ctx = context_with(&[("t", down.table_provider("trap", &one).unwrap())]);
    let started = Instant::now();
    let err = query(&ctx, "SELECT * FROM t").await.unwrap_err();
    assert!(
        matches!(adapter_error(&err), AdapterError::Unavailable { ref source_id, .. } if source_id == "down-api"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // Plain HTTP and a missing CA are configuration errors.
    for (base_url, ca_file) in [
        (
            "http://127.0.0.1:1/api".to_string(),
            Some(api.ca_file.clone()),
        ),
        (api.base_url.clone(), None),
    ] {
        let result = HttpJsonSource::new(
            "cfg",
            HttpJsonOptions {
                base_url,
                ca_file,
                cert: None,
                key: None,
                page_size: 3,
                timeout_ms: 5000,
                items_field: "items".to_string(),
                next_field: "next".to_string(),
            },
        );
        assert!(matches!(result, Err(AdapterError::Config(_))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_client_certificate() {
    let api = start_api(true).await;
    let with_cert = api.source_with(5, Some((api.client_cert.clone(), api.client_key.clone())));
    let ctx = context_with(&[(
        "t",
        with_cert.table_provider("trap", &trap_fields()).unwrap(),
    )]);
    let (rows, _) = query(&ctx, "SELECT count(*) FROM t").await.unwrap();
    assert_eq!(rows, ["13"]);

    let without = api.source(5);
    let ctx = context_with(&[("t", without.table_provider("trap", &trap_fields()).unwrap())]);
    let err = query(&ctx, "SELECT count(*) FROM t").await.unwrap_err();
    assert!(
        matches!(adapter_error(&err), AdapterError::Unavailable { .. }),
        "{err}"
    );
    let _: Arc<dyn Source> = Arc::new(without);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_the_trace_context_the_process_adds() {
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    yiwang_adapters::http_json::set_trace_headers(|h| {
        h.insert("traceparent", TRACEPARENT.parse().unwrap());
    });
    let api = start_api(false).await;
    let page = api
        .source(5)
        .read(ReadRequest {
            table: "traced".to_string(),
            columns: vec![field("tp", FieldType::String)],
            filter: None,
            limit: 10,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(page.rows, [vec![json!(TRACEPARENT)]]);
}
