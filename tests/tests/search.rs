//! Discovery: Chinese full-text search with filters, facets, highlights and paging.

use std::time::{Duration, Instant};

use serde_json::json;
use yiwang_tests::DemoNode;

fn q(s: &str) -> String {
    yiwang_tests::url_encode(s)
}

#[test]
fn chinese_search_with_facets_filters_and_paging() {
    let node = DemoNode::start();
    let api = node.client("gaj-system");
    let r = api.get(&format!("/v1/search?q={}", q("危险化学品企业")));
    assert_eq!(r.status, 200, "{}", r.body);
    let res = r.json();
    assert_eq!(res["hits"][0]["id"], "320600-YJJ-00001", "{}", r.body);
    assert_eq!(res["hits"][0]["dept_name"], "南通市应急管理局");
    assert!(
        res["hits"][0]["highlight"]
            .as_str()
            .unwrap()
            .contains("<em>")
    );
    let total = res["total"].as_u64().unwrap();
    let dept_sum: u64 = res["facets"]["dept"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(dept_sum, total, "dept facet counts cover every hit");

    // The abbreviation finds the same dataset.
    let r = api.get(&format!("/v1/search?q={}", q("危化品"))).json();
    assert!(
        r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == "320600-YJJ-00001")
    );

    // Filters narrow hits and facets alike.
    let r = api
        .get(&format!(
            "/v1/search?q={}&share_type=conditional",
            q("车辆")
        ))
        .json();
    assert!(r["total"].as_u64().unwrap() > 0);
    for h in r["hits"].as_array().unwrap() {
        assert_eq!(h["share_type"], "conditional");
    }
    assert_eq!(r["facets"]["share_type"].as_object().unwrap().len(), 1);
    let r = api.get("/v1/search?dept=320600-YJJ&limit=100").json();
    assert!(
        r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["dept"] == "320600-YJJ")
    );

    // Paging: disjoint pages.
    let p1 = api
        .get(&format!("/v1/search?q={}&limit=5&offset=0", q("信息")))
        .json();
    let p2 = api
        .get(&format!("/v1/search?q={}&limit=5&offset=5", q("信息")))
        .json();
    let ids = |p: &serde_json::Value| {
        p["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (a, b) = (ids(&p1), ids(&p2));
    assert_eq!(a.len(), 5);
    assert!(a.iter().all(|x| !b.contains(x)));

    // Odd input is fine; bad parameters are 400.
    assert_eq!(
        api.get(&format!("/v1/search?q={}", q("a:b \" )( 😀")))
            .status,
        200
    );
    assert_eq!(api.get("/v1/search?limit=1000").status, 400);
    assert_eq!(api.get("/v1/search?share_type=maybe").status, 400);
}

#[test]
fn a_committed_change_is_searchable_within_a_second_and_the_index_survives() {
    let mut node = DemoNode::start();
    let steward = node.client("gaj-steward");
    let body = json!({
        "id": "320600-GAJ-77777", "dept": "320600-GAJ", "title": "电动自行车火灾隐患排查记录",
        "summary": "社区电动自行车违规停放充电隐患排查", "theme": "公共安全", "format": "table",
        "share_type": "unconditional", "update_cycle": "weekly",
        "fields": [{"name": "community", "title": "社区", "type": "string", "sensitivity": "public"}]
    });
    assert_eq!(steward.post("/v1/datasets", &body).status, 201);
    let started = Instant::now();
    let found = loop {
        let r = steward
            .get(&format!("/v1/search?q={}", q("电动自行车火灾")))
            .json();
        if r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == "320600-GAJ-77777")
        {
            break true;
        }
        if started.elapsed() > Duration::from_secs(1) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(found, "not searchable within 1 s");
    // Retired datasets leave the index.
    assert_eq!(steward.delete("/v1/datasets/320600-GAJ-77777").status, 200);
    std::thread::sleep(Duration::from_millis(600));
    let r = steward
        .get(&format!("/v1/search?q={}", q("电动自行车火灾")))
        .json();
    assert!(
        !r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == "320600-GAJ-77777")
    );
    let total_before = steward.get("/v1/search?limit=1").json()["total"].clone();

    // Lose the index: it is rebuilt from catalog state on restart.
    node.stop();
    std::fs::remove_dir_all(node.dir.join("node-1").join("search")).unwrap();
    let dir = node.dir.clone();
    let node2 = DemoNode::start_in(&dir).unwrap();
    let api = node2.client("gaj-system");
    assert_eq!(api.get("/v1/search?limit=1").json()["total"], total_before);
    assert!(
        node2.log().contains("search index rebuilt"),
        "{}",
        node2.log()
    );
}
