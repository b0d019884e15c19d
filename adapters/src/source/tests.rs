use super::*;

fn parse(text: &str) -> Result<BTreeMap<String, SourceConfig>, toml::de::Error> {
    #[derive(Deserialize)]
    struct Node {
        sources: BTreeMap<String, SourceConfig>,
    }
    toml::from_str::<Node>(text).map(|n| n.sources)
}

fn ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn every_kind_builds_from_the_node_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/pg"), "  hunter2  \nignored\n").unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_pem()).unwrap();
    let cfg = parse(
        r#"
        [sources.yjj-db]
        kind = "sqlite"
        path = "yjj.sqlite"

        [sources.jtj-pg]
        kind = "postgres"
        url = "postgres://gateway@127.0.0.1:5432/transport"
        password_file = "secrets/pg"
        schema = "public"

        [sources.gdgs-my]
        kind = "mysql"
        url = "mysql://gateway@127.0.0.1:3306/power"
        password = "inline-secret"
        pool_size = 2
        timeout_ms = 800

        [sources.stats]
        kind = "csv"
        dir = "stats"
        delimiter = ";"
        has_header = false

        [sources.open]
        kind = "parquet"
        dir = "open"

        [sources.scjg-api]
        kind = "http_json"
        base_url = "https://127.0.0.1:8443/v1"
        ca_file = "ca.pem"
        page_size = 50
        "#,
    )
    .unwrap();
    let sources = Sources::from_config(&cfg, dir.path()).unwrap();
    let kinds: Vec<&str> = sources
        .ids()
        .iter()
        .map(|id| sources.get(id).unwrap().kind())
        .collect();
    assert_eq!(
        kinds,
        ["mysql", "postgres", "parquet", "http_json", "csv", "sqlite"]
    );
    // Passwords never show in debug output.
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("inline-secret"), "{shown}");
    assert!(shown.contains("<hidden>"), "{shown}");
    assert_eq!(
        read_password("x", &None, &Some("secrets/pg".into()), dir.path()).unwrap(),
        Some("hunter2".to_string())
    );
}

#[test]
fn configuration_mistakes_are_reported_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let build_one = |text: &str| {
        let cfg = parse(text).unwrap();
        Sources::from_config(&cfg, dir.path())
            .map(|_| ())
            .unwrap_err()
    };
    let cases = [
        r#"[sources.a]
           kind = "postgres"
           url = "postgres://u:topsecret@h/db""#,
        r#"[sources.a]
           kind = "mysql"
           url = "mysql://u:topsecret@h/db""#,
        r#"[sources.a]
           kind = "postgres"
           url = "postgres://u@h/db"
           password = "topsecret"
           password_file = "pw""#,
        r#"[sources.a]
           kind = "postgres"
           url = "postgres://u@h/db?sslmode=require""#,
        r#"[sources.a]
           kind = "mysql"
           url = "mysql://u@h/db"
           password_file = "missing""#,
        r#"[sources.a]
           kind = "http_json"
           base_url = "http://h/api"
           ca_file = "ca.pem""#,
        r#"[sources.a]
           kind = "http_json"
           base_url = "https://h/api""#,
        r#"[sources.a]
           kind = "csv"
           dir = "d"
           delimiter = "。""#,
    ];
    for text in cases {
        let err = build_one(text);
        assert!(matches!(err, AdapterError::Config(_)), "{text}: {err}");
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
    assert!(
        parse(
            r#"[sources.a]
               kind = "parquet"
               dir = "d"
               extra = 1"#
        )
        .is_err()
    );
}
