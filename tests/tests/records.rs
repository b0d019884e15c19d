//! Reading department data through the gateway: policy, masking, filters, paging,
//! formats and the bad inputs.

use serde_json::Value;
use yiwang_tests::DemoNode;

const ENTERPRISES: &str = "/v1/datasets/320600-YJJ-00001/records";
const TRUCKS: &str = "/v1/datasets/320600-JTJ-00001/records";
const INSPECTIONS: &str = "/v1/datasets/320600-YJJ-00002/records";
const PURPOSE: &str = "safety-check";

fn enc(s: &str) -> String {
    yiwang_tests::url_encode(s)
}

#[test]
fn unconditional_reads_are_masked_for_other_departments_only() {
    let node = DemoNode::start();
    let other = node.client("dsj-system");
    let r = other.read(&format!("{ENTERPRISES}?limit=5"), PURPOSE);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert!(body["next_cursor"].is_string());
    for row in rows {
        let id = row["legal_rep_id"].as_str().unwrap();
        assert_eq!(id.chars().count(), 18);
        assert!(id.contains("********"), "legal_rep_id must be masked: {id}");
        assert!(
            !row["uscc"].as_str().unwrap().contains('*'),
            "public fields are clear"
        );
    }
    assert!(
        r.header("x-masked-fields")
            .unwrap()
            .contains("legal_rep_id")
    );

    // The providing department reads its own data in clear.
    let own = node
        .client("yjj-system")
        .read(&format!("{ENTERPRISES}?limit=5"), PURPOSE)
        .json();
    for row in own["rows"].as_array().unwrap() {
        assert!(!row["legal_rep_id"].as_str().unwrap().contains('*'));
    }
}

#[test]
fn fields_filters_paging_and_formats() {
    let node = DemoNode::start();
    let api = node.client("dsj-system");

    // Projection and a Chinese string literal in the filter.
    let filter = enc("status = '责令关停'");
    let r = api.read(
        &format!("{ENTERPRISES}?fields=uscc,name,status&filter={filter}"),
        PURPOSE,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(
        body["columns"],
        serde_json::json!(["uscc", "name", "status"])
    );
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        1,
        "exactly one plant was ordered shut: {rows:?}"
    );
    assert_eq!(rows[0]["name"], "南通恒昌化工有限公司");
    assert_eq!(rows[0].as_object().unwrap().len(), 3);

    // Cursor paging: disjoint pages whose union is everything.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{ENTERPRISES}?fields=uscc&limit=7&cursor={c}"),
            None => format!("{ENTERPRISES}?fields=uscc&limit=7"),
        };
        let page = api.read(&path, PURPOSE).json();
        for row in page["rows"].as_array().unwrap() {
            assert!(
                seen.insert(row["uscc"].as_str().unwrap().to_string()),
                "pages overlap"
            );
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 40);
    assert_eq!(pages, 6);

    // NDJSON and CSV.
    let r = api.send(
        api.req(
            reqwest::Method::GET,
            &format!("{ENTERPRISES}?fields=uscc,name&limit=3"),
        )
        .header("x-purpose", PURPOSE)
        .header("accept", "application/x-ndjson"),
    );
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    let lines: Vec<Value> = r
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["name"].is_string());
    assert!(r.header("x-next-cursor").is_some());
    let r = api.send(
        api.req(
            reqwest::Method::GET,
            &format!("{ENTERPRISES}?fields=uscc,name&limit=3"),
        )
        .header("x-purpose", PURPOSE)
        .header("accept", "text/csv"),
    );
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let csv: Vec<&str> = r.body.lines().collect();
    assert_eq!(csv[0], "uscc,name");
    assert_eq!(csv.len(), 4);

    // A purpose in Chinese, percent-encoded, is accepted and audited as text.
    let r = api.read(&format!("{ENTERPRISES}?limit=1"), &enc("核查责令关停企业"));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn bad_record_requests_get_clear_errors() {
    let node = DemoNode::start();
    let api = node.client("dsj-system");
    let cases: Vec<(String, Option<&str>, u16, &str, &str)> = vec![
        (
            format!("{ENTERPRISES}?limit=1"),
            None,
            400,
            "missing_purpose",
            "X-Purpose",
        ),
        (
            format!("{ENTERPRISES}?filter={}", enc("status = ")),
            Some(PURPOSE),
            400,
            "invalid_filter",
            "expected a value",
        ),
        (
            format!("{ENTERPRISES}?filter={}", enc("nope = 1")),
            Some(PURPOSE),
            400,
            "invalid_filter",
            "nope",
        ),
        (
            format!(
                "{ENTERPRISES}?filter={}",
                enc("legal_rep_id = '320602198001011234'")
            ),
            Some(PURPOSE),
            400,
            "invalid_filter",
            "masked",
        ),
        (
            format!("{ENTERPRISES}?filter={}", enc("capacity = 'big'")),
            Some(PURPOSE),
            400,
            "invalid_filter",
            "capacity",
        ),
        (
            format!("{ENTERPRISES}?fields=uscc,nope"),
            Some(PURPOSE),
            400,
            "invalid_input",
            "nope",
        ),
        (
            format!("{ENTERPRISES}?limit=0"),
            Some(PURPOSE),
            400,
            "invalid_query",
            "limit",
        ),
        (
            format!("{ENTERPRISES}?limit=abc"),
            Some(PURPOSE),
            400,
            "invalid_query",
            "limit",
        ),
        (
            format!("{ENTERPRISES}?cursor=garbage"),
            Some(PURPOSE),
            400,
            "bad_cursor",
            "cursor",
        ),
        (
            format!("{ENTERPRISES}?bogus=1"),
            Some(PURPOSE),
            400,
            "invalid_query",
            "bogus",
        ),
        (
            "/v1/datasets/NOPE-00001/records".to_string(),
            Some(PURPOSE),
            404,
            "not_found",
            "NOPE-00001",
        ),
    ];
    for (path, purpose, status, code, needle) in cases {
        let r = match purpose {
            Some(p) => api.read(&path, p),
            None => api.get(&path),
        };
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(r.code(), code, "{path}: {}", r.body);
        assert!(
            r.message().contains(needle),
            "{path}: message should name '{needle}': {}",
            r.body
        );
    }
    // SQL in a literal is data, not SQL.
    let r = api.read(
        &format!("{ENTERPRISES}?filter={}", enc("name = 'x'' or 1=1 --'")),
        PURPOSE,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["rows"].as_array().unwrap().len(), 0);
    // The node is still fine.
    assert_eq!(
        api.read(&format!("{ENTERPRISES}?limit=1"), PURPOSE).status,
        200
    );
}

#[test]
fn conditional_and_none_datasets_are_refused_without_the_right() {
    let node = DemoNode::start();
    let r = node.client("dsj-system").read(TRUCKS, PURPOSE);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.message().contains("no grant"), "{}", r.body);
    let r = node.client("dsj-system").read(INSPECTIONS, PURPOSE);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.message().contains("share_type none"), "{}", r.body);
    // A steward (not a system) of another department reads nothing, even unconditional.
    let r = node.client("jtj-steward").read(ENTERPRISES, PURPOSE);
    assert_eq!(r.status, 403, "{}", r.body);
    // The own department reads its none dataset.
    let r = node
        .client("yjj-steward")
        .read(&format!("{INSPECTIONS}?limit=2"), PURPOSE);
    assert_eq!(r.status, 200, "{}", r.body);
    // A dataset catalogued without a source has no records to serve.
    let r = node
        .client("dsj-system")
        .read("/v1/datasets/320600-GAJ-00001/records", PURPOSE);
    assert!(r.status == 409 || r.status == 403, "{}", r.body);
}
