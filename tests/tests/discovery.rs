//! Discovery beyond plain words, on a running node over mTLS: pinyin and typos,
//! admin-defined synonyms without a restart, the online index rebuild, the CKAN Action
//! API driven by the real `ckanapi` client, and the DCAT-AP export parsed by a real RDF
//! parser (rdflib).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yiwang_tests::{DemoNode, cli, run_python};

fn enc(s: &str) -> String {
    yiwang_tests::url_encode(s)
}

fn hit_ids(r: &Value) -> Vec<String> {
    r["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

/// Searches until `id` is among the first ten hits for `q` (the index commits changes
/// within about half a second), or gives up after 3 s.
fn top10_within(api: &yiwang_tests::Api, q: &str, id: &str) -> Vec<String> {
    let started = Instant::now();
    loop {
        let ids = hit_ids(&api.get(&format!("/v1/search?q={}", enc(q))).json());
        if ids.iter().take(10).any(|x| x == id) || started.elapsed() > Duration::from_secs(3) {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pinyin_typos_synonyms_and_rebuild_on_a_running_node() {
    let node = DemoNode::start();
    let steward = node.client("gaj-steward");
    let admin = node.client("admin");
    let system = node.client("gaj-system");
    let body = json!({
        "id": "320600-GAJ-88888", "dept": "320600-GAJ", "title": "电动自行车登记信息",
        "summary": "电动自行车号牌登记与所有人信息", "theme": "公共安全", "format": "table",
        "share_type": "unconditional", "update_cycle": "daily",
        "fields": [{"name": "plate", "title": "号牌", "type": "string", "sensitivity": "public"}]
    });
    assert_eq!(steward.post("/v1/datasets", &body).status, 201);
    let id = "320600-GAJ-88888";

    // Pinyin, initials and typos find it.
    for q in ["zixingche", "dian dong zi xing che", "ddzxc", "电动自形车"] {
        let ids = top10_within(&system, q, id);
        assert!(ids.iter().take(10).any(|x| x == id), "{q}: {ids:?}");
    }
    // The demo's housing-fund dataset by pinyin initials, ahead of everything else.
    let r = system.get("/v1/search?q=gjj").json();
    let first = &r["hits"][0];
    assert!(first["title"].as_str().unwrap().contains("公积金"), "{r:#}");

    // Admin synonyms: not found before, found right after the change, no restart.
    let r = system
        .get(&format!("/v1/search?q={}", enc("小电驴")))
        .json();
    assert!(!hit_ids(&r).contains(&id.to_string()), "{r:#}");
    let groups = json!({"groups": [["小电驴", "电动自行车"]]});
    let r = steward.put("/v1/search/synonyms", &groups);
    assert_eq!(r.status, 403, "only admins set synonyms: {}", r.body);
    let r = admin.put("/v1/search/synonyms", &json!({"groups": [["小电驴"]]}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("groups[0]"), "{}", r.body);
    let r = admin.put("/v1/search/synonyms", &json!({"groups": [["a", " b"]]}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("groups[0][1]"), "{}", r.body);
    assert_eq!(
        system.get("/v1/search/synonyms").json()["groups"],
        json!([])
    );
    let r = admin.put("/v1/search/synonyms", &groups);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(system.get("/v1/search/synonyms").json(), groups);
    let ids = hit_ids(
        &system
            .get(&format!("/v1/search?q={}", enc("小电驴")))
            .json(),
    );
    assert_eq!(ids.first().map(String::as_str), Some(id), "{ids:?}");

    // Sort by publication: the new dataset is the newest.
    let r = system
        .get(&format!("/v1/search?q={}&sort=newest", enc("登记")))
        .json();
    assert_eq!(r["hits"][0]["id"], id, "{r:#}");
    let r = system.get("/v1/search?sort=best");
    assert_eq!(r.status, 400, "{}", r.body);

    // Online rebuild: admin only; searches are answered throughout and find the same.
    let total = system.get("/v1/search?limit=1").json()["total"].clone();
    assert_eq!(system.post("/v1/search/rebuild", &json!({})).status, 403);
    let (code, out, err) = cli(&node, "admin", &["index", "rebuild"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["docs"], total, "{out}");
    assert!(err.contains("indexed"), "{err}");
    assert_eq!(
        system.get("/v1/search?limit=1").json()["total"],
        total,
        "same index after the rebuild"
    );
    let ids = hit_ids(
        &system
            .get(&format!("/v1/search?q={}", enc("小电驴")))
            .json(),
    );
    assert_eq!(ids.first().map(String::as_str), Some(id), "{ids:?}");

    // The CLI shows and sets synonyms from a file.
    let file = node.dir.join("synonyms.txt");
    std::fs::write(&file, "# 俗称\n小电驴, 电动自行车\n电瓶车 电动自行车\n").unwrap();
    let (code, _, err) = cli(
        &node,
        "admin",
        &["index", "set-synonyms", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 synonym group(s) set"), "{err}");
    let (code, out, _) = cli(&node, "gaj-system", &["index", "synonyms"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["groups"][1],
        json!(["电瓶车", "电动自行车"])
    );
}

#[test]
fn ckan_clients_work_unchanged() {
    let node = DemoNode::start();
    let c = node.certs();
    let path = |f: &str| c.join(f).to_str().unwrap().to_string();
    let out = run_python(
        "ckan_client.py",
        &[
            &node.base(),
            &path("ca.pem"),
            &path("gaj-system.pem"),
            &path("gaj-system.key"),
        ],
    );
    for mode in ["post", "get"] {
        let s = &out[mode];
        assert_eq!(s["ids"][0], "320600-YJJ-00001", "{mode}: {out:#}");
        assert_eq!(s["owner_orgs"], json!(["320600-YJJ"]), "{out:#}");
        let count = s["count"].as_u64().unwrap();
        assert!(count >= 1, "{out:#}");
        assert_eq!(s["facet_orgs"], json!({"320600-YJJ": count}), "{out:#}");
        let share_total: u64 = s["search_facets_share_type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["count"].as_u64().unwrap())
            .sum();
        assert_eq!(share_total, count, "{out:#}");
    }
    let p = &out["package"];
    assert_eq!(p["title"], "危险化学品企业名录");
    assert_eq!(p["organization_title"], "南通市应急管理局");
    assert_eq!(p["extras"]["share_type"], "unconditional");
    assert_eq!(p["state"], "active");
    assert_eq!(
        p["resource_url"],
        format!("{}/v1/datasets/320600-YJJ-00001/records", node.base())
    );
    assert_eq!(out["package_list"]["len"], 50);
    assert_eq!(out["organizations"]["len"], 65, "{out:#}");
    assert_eq!(out["organization_names"], 65);
    let top = out["organizations"]["top"].as_array().unwrap();
    assert!(top[0][2].as_u64() >= top[1][2].as_u64(), "{out:#}");
    assert_eq!(out["organization"]["title"], "南通市应急管理局");
    assert_eq!(
        out["organization"]["package_count"],
        out["organization"]["packages"]
    );
    assert_eq!(out["pages_disjoint"], true);
    assert_eq!(out["page_sizes"], json!([10, 10]));
    let e = &out["errors"];
    assert_eq!(e["missing_package"][0], "NotFound", "{e:#}");
    assert!(
        e["missing_package"][1]
            .as_str()
            .unwrap()
            .contains("NO-SUCH-DATASET")
    );
    assert_eq!(e["missing_org"][0], "NotFound", "{e:#}");
    assert_eq!(e["no_id"][0], "ValidationError", "{e:#}");
    assert_eq!(e["no_id"][1]["id"], json!(["Missing value"]), "{e:#}");
    assert_eq!(e["bad_fq"][0], "SearchQueryError", "{e:#}");
    assert!(e["bad_fq"][1].as_str().unwrap().contains("res_format"));
    assert_eq!(e["bad_sort"][0], "SearchQueryError", "{e:#}");
    assert_eq!(e["bad_rows"][0], "ValidationError", "{e:#}");

    // The envelope and status codes as CKAN sends them, seen over plain HTTPS.
    let api = node.client("gaj-system");
    let r = api.get("/api/3/action/package_show?id=NO-SUCH");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["success"], false);
    assert_eq!(r.json()["error"]["__type"], "Not Found Error");
    let r = api.get("/api/3/action/package_create");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("package_create")
    );
    let r = api.post(
        "/api/3/action/package_search",
        &json!(["not", "an", "object"]),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let r = api.get("/api/3/action/package_search?fq=res_format:CSV");
    assert_eq!(
        r.status, 400,
        "as CKAN answers a Search Query Error: {}",
        r.body
    );
    assert_eq!(r.json()["error"]["__type"], "Search Query Error");
    let r = api.get("/api/3/action/status_show");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["success"], true);
}

#[test]
fn dcat_export_parses_with_the_mandatory_properties() {
    let node = DemoNode::start();
    let api = node.client("gaj-system");
    let total = api.get("/v1/search?limit=1").json()["total"]
        .as_u64()
        .unwrap();

    // Turtle, in pages of 400, following the Link header.
    let mut files = Vec::new();
    let mut url = "/v1/catalog.ttl?per_page=400".to_string();
    loop {
        let r = api.get(&url);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/turtle; charset=utf-8")
        );
        assert_eq!(r.header("x-total-count"), Some(total.to_string()));
        let file = node.dir.join(format!("page-{}.ttl", files.len() + 1));
        std::fs::write(&file, &r.body).unwrap();
        files.push(file.to_str().unwrap().to_string());
        let link = r.header("link").unwrap_or_default();
        let next = link
            .split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .map(|l| {
                l.trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_string()
            });
        match next {
            Some(n) => url = n.trim_start_matches(&node.base()).to_string(),
            None => break,
        }
        assert!(files.len() < 100, "too many pages");
    }
    assert_eq!(files.len() as u64, total.div_ceil(400));
    let mut args = vec!["turtle"];
    args.extend(files.iter().map(String::as_str));
    let g = run_python("dcat_parse.py", &args);
    assert_eq!(g["datasets"], total, "every active dataset once: {g:#}");
    assert_eq!(g["catalogs"], 1);
    assert_eq!(g["datasets_linked_from_catalog"], total);
    for lacking in [
        "datasets_without_title",
        "datasets_without_description",
        "datasets_without_distribution",
        "datasets_without_publisher",
        "distributions_without_access_url",
        "agents_without_name",
        "publishers_not_agents",
    ] {
        assert_eq!(g[lacking], json!([]), "{lacking}: {g:#}");
    }
    assert_eq!(
        g["catalog_lacks"],
        json!({"title": [], "description": [], "publisher": []})
    );
    assert_eq!(g["distributions"], total);
    assert_eq!(g["titles_tagged_zh"], true);
    // 65 departments publish, plus the catalog's own publisher.
    assert_eq!(g["agents"], 66, "{g:#}");
    let s = &g["sample"];
    assert_eq!(
        s["access_url"],
        format!(
            "{}/v1/datasets/{}/records",
            node.base(),
            s["identifier"].as_str().unwrap()
        )
    );
    assert!(
        s["access_rights"]
            .as_str()
            .unwrap()
            .starts_with("http://publications.europa.eu/resource/authority/access-right/")
    );
    assert_eq!(
        s["issued_datatype"],
        "http://www.w3.org/2001/XMLSchema#dateTime"
    );

    // JSON-LD: one big page, the same datasets.
    let r = api.get("/v1/catalog.jsonld?per_page=10000");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/ld+json")
    );
    let file = node.dir.join("catalog.jsonld");
    std::fs::write(&file, &r.body).unwrap();
    let g2 = run_python("dcat_parse.py", &["json-ld", file.to_str().unwrap()]);
    assert_eq!(g2["datasets"], total);
    assert_eq!(g2["datasets_without_description"], json!([]));
    assert_eq!(g2["distributions_without_access_url"], json!([]));

    // Bad paging is a 4xx naming the problem.
    let r = api.get("/v1/catalog.ttl?per_page=0");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("per_page"), "{}", r.body);
    let r = api.get("/v1/catalog.ttl?page=999");
    assert_eq!(r.status, 404);
    assert!(r.message().contains("last page"), "{}", r.body);
    let r = api.get("/v1/catalog.ttl?pages=2");
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn admins_bulk_import_datasets_of_any_department() {
    let node = DemoNode::start();
    let line = |id: &str, dept: &str| {
        json!({"id": id, "dept": dept, "title": "测试导入数据集", "theme": "其他",
               "format": "file", "share_type": "unconditional", "update_cycle": "yearly",
               "fields": []})
        .to_string()
    };
    let body = [
        line("IMPORT-1", "320600-YJJ"),
        line("IMPORT-2", "320600-JTJ"),
        line("IMPORT-3", "NO-SUCH-DEPT"),
    ]
    .join("\n");
    let admin = node.client("admin");
    let r = admin.send(
        admin
            .req(reqwest::Method::POST, "/v1/datasets/bulk")
            .header("content-type", "application/x-ndjson")
            .body(body.clone()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(report["created"], 2, "{report:#}");
    assert_eq!(report["failed"], 1, "{report:#}");
    assert!(report.to_string().contains("NO-SUCH-DEPT"), "{report:#}");
    // A steward still imports only its own department's.
    let steward = node.client("yjj-steward");
    let r = steward.send(
        steward
            .req(reqwest::Method::POST, "/v1/datasets/bulk")
            .header("content-type", "application/x-ndjson")
            .body(line("IMPORT-4", "320600-JTJ")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["created"], 0, "{}", r.body);
    assert!(
        r.body.contains("may only register datasets of 320600-YJJ"),
        "{}",
        r.body
    );
}
