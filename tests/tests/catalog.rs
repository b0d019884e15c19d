//! Catalog writes through Raft: register, update, retire, bulk import, and the bad
//! inputs that must change nothing.

use serde_json::{Value, json};
use yiwang_tests::{DemoNode, cli};

fn dataset(id: &str, dept: &str) -> Value {
    json!({
        "id": id,
        "dept": dept,
        "title": "公共法律服务机构名录",
        "summary": "全市律师事务所、公证处、司法鉴定机构等公共法律服务机构的名称、地址和联系方式。",
        "keywords": ["法律服务", "律师事务所"],
        "theme": "法律服务",
        "format": "table",
        "share_type": "unconditional",
        "update_cycle": "monthly",
        "fields": [
            {"name": "org_name", "title": "机构名称", "type": "string", "sensitivity": "public"},
            {"name": "contact_phone", "title": "联系电话", "type": "string", "sensitivity": "sensitive", "masking": "phone"}
        ]
    })
}

#[test]
fn steward_registers_updates_and_retires_own_datasets_only() {
    let node = DemoNode::start();
    let steward = node.client("gaj-steward");
    let list = steward.get("/v1/departments").json();
    assert_eq!(list["total"], 65);
    assert!(
        steward.get("/v1/datasets?limit=1").json()["total"]
            .as_u64()
            .unwrap()
            >= 1000
    );

    let r = steward.post("/v1/datasets", &dataset("320600-GAJ-90001", "320600-GAJ"));
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(created["version"], 1);
    assert_eq!(created["status"], "active");
    assert!(created["published_at"].as_str().unwrap().ends_with('Z'));

    // Duplicate id → 409; another department's dataset → 403; a system is no steward.
    assert_eq!(
        steward
            .post("/v1/datasets", &dataset("320600-GAJ-90001", "320600-GAJ"))
            .status,
        409
    );
    let r = steward.post("/v1/datasets", &dataset("320600-JTJ-90001", "320600-JTJ"));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = node
        .client("gaj-system")
        .post("/v1/datasets", &dataset("320600-GAJ-90002", "320600-GAJ"));
    assert_eq!(r.status, 403, "{}", r.body);

    // Update with optimistic concurrency.
    let mut changed = dataset("320600-GAJ-90001", "320600-GAJ");
    changed["title"] = json!("公共法律服务机构名录（2026版）");
    let r = steward.put("/v1/datasets/320600-GAJ-90001?version=1", &changed);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["version"], 2);
    let r = steward.put("/v1/datasets/320600-GAJ-90001?version=1", &changed);
    assert_eq!(r.status, 409, "stale version: {}", r.body);
    let r = node
        .client("jtj-steward")
        .put("/v1/datasets/320600-GAJ-90001", &changed);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        steward.get("/v1/datasets/320600-GAJ-90001").json()["title"],
        "公共法律服务机构名录（2026版）"
    );

    // Retire: stays visible (for audit), no longer listed as active, no further change.
    assert_eq!(
        node.client("jtj-steward")
            .delete("/v1/datasets/320600-GAJ-90001")
            .status,
        403
    );
    let r = steward.delete("/v1/datasets/320600-GAJ-90001");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "retired");
    assert_eq!(
        steward.get("/v1/datasets/320600-GAJ-90001").json()["status"],
        "retired"
    );
    assert_eq!(steward.delete("/v1/datasets/320600-GAJ-90001").status, 409);
    let active = steward
        .get("/v1/datasets?dept=320600-GAJ&limit=1000")
        .json();
    assert!(
        !active["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "320600-GAJ-90001")
    );
}

#[test]
fn bad_dataset_input_names_the_field_and_changes_nothing() {
    let node = DemoNode::start();
    let steward = node.client("gaj-steward");
    let before = steward.get("/v1/datasets?limit=1&status=all").json()["total"].clone();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = dataset("320600-GAJ-90009", "320600-GAJ");
        f(&mut d);
        d
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (with(&|d| d["title"] = json!("")), 400, "title"),
        (with(&|d| d["title"] = json!(42)), 400, "title"),
        (
            with(&|d| {
                d.as_object_mut().unwrap().remove("theme");
            }),
            400,
            "theme",
        ),
        (
            with(&|d| d["share_type"] = json!("sometimes")),
            400,
            "share_type",
        ),
        (
            with(&|d| d["share_type"] = json!("conditional")),
            400,
            "share_condition",
        ),
        (
            with(&|d| d["fields"][0]["name"] = json!("drop table")),
            400,
            "fields[0].name",
        ),
        (
            with(&|d| d["fields"][1]["name"] = json!("org_name")),
            400,
            "fields[1].name",
        ),
        (
            with(&|d| d["fields"][0]["type"] = json!("blob")),
            400,
            "fields[0].type",
        ),
        (with(&|d| d["unknown_key"] = json!(1)), 400, "unknown_key"),
        (with(&|d| d["id"] = json!("../../etc")), 400, "id"),
    ];
    for (body, status, needle) in cases {
        let r = steward.post("/v1/datasets", &body);
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(
            r.message().contains(needle),
            "message should name '{needle}': {}",
            r.body
        );
    }
    // An unknown department: a steward of it cannot exist, so the refusal is 403.
    let r = steward.post("/v1/datasets", &with(&|d| d["dept"] = json!("320600-NOPE")));
    assert!(r.status == 403 || r.status == 400, "{}", r.body);
    // Malformed JSON and an oversized body.
    let r = steward.send(
        steward
            .req(reqwest::Method::POST, "/v1/datasets")
            .header("content-type", "application/json")
            .body("{\"id\": "),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.code(), "invalid_json");
    let big = "x".repeat(2 << 20);
    let r = steward.send(
        steward
            .req(reqwest::Method::POST, "/v1/datasets")
            .header("content-type", "application/json")
            .body(big),
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.code(), "payload_too_large");
    assert_eq!(
        steward.get("/v1/datasets?limit=1&status=all").json()["total"],
        before,
        "nothing was written"
    );
    // Departments: admin only, validated.
    let admin = node.client("admin");
    let r = steward.post(
        "/v1/departments",
        &json!({"code": "320600-XYZ", "name": "新部门", "region": "南通市"}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = admin.post(
        "/v1/departments",
        &json!({"code": "bad code", "name": "新部门", "region": "南通市"}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("code"), "{}", r.body);
    let r = admin.post(
        "/v1/departments",
        &json!({"code": "320600-XYZ", "name": "南通市新部门", "region": "南通市"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        admin.get("/v1/departments/320600-XYZ").json()["name"],
        "南通市新部门"
    );
    assert_eq!(
        admin
            .post(
                "/v1/departments",
                &json!({"code": "320600-XYZ", "name": "x", "region": "y"})
            )
            .status,
        409
    );
}

#[test]
fn bulk_import_commits_valid_lines_and_reports_each_line() {
    let node = DemoNode::start();
    let steward = node.client("gaj-steward");
    let mut lines = Vec::new();
    for i in 0..1200 {
        lines.push(
            serde_json::to_string(&dataset(&format!("320600-GAJ-8{i:04}"), "320600-GAJ")).unwrap(),
        );
    }
    lines.insert(3, "{not json".into());
    let mut bad = dataset("320600-GAJ-79999", "320600-GAJ");
    bad["title"] = json!("");
    lines.insert(10, serde_json::to_string(&bad).unwrap());
    lines.insert(
        20,
        serde_json::to_string(&dataset("320600-JTJ-79999", "320600-JTJ")).unwrap(),
    );
    lines.push(serde_json::to_string(&dataset("320600-GAJ-80000", "320600-GAJ")).unwrap());
    let body = lines.join("\n");
    let r = steward.send(
        steward
            .req(reqwest::Method::POST, "/v1/datasets/bulk")
            .header("content-type", "application/x-ndjson")
            .body(body.clone()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(report["created"], 1200);
    assert_eq!(report["failed"], 4);
    let results = report["results"].as_array().unwrap();
    let failed: Vec<(u64, String)> = results
        .iter()
        .filter(|x| x["status"] == "failed")
        .map(|x| {
            (
                x["line"].as_u64().unwrap(),
                x["error"]["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            (4, "invalid_json".into()),
            (11, "invalid_input".into()),
            (21, "forbidden".into()),
            (1204, "conflict".into())
        ]
    );
    assert_eq!(steward.get("/v1/datasets/320600-GAJ-81199").status, 200);
    assert_eq!(steward.get("/v1/datasets/320600-GAJ-79999").status, 404);

    // The same through the CLI, with progress and a summary; a re-import fails every
    // line with a conflict and exits 1.
    let file = node.dir.join("again.jsonl");
    std::fs::write(&file, lines[..50].join("\n")).unwrap();
    let (code, stdout, stderr) = cli(
        &node,
        "gaj-steward",
        &["dataset", "import", file.to_str().unwrap(), "--chunk", "20"],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("imported 50/50 lines"), "{stderr}");
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["created"], 0);
    assert_eq!(summary["failed"], 50);

    // Departments in bulk, as admin.
    let depts = "{\"code\":\"320600-AA\",\"name\":\"甲\",\"region\":\"南通市\"}\n{\"code\":\"bad code\",\"name\":\"乙\",\"region\":\"南通市\"}\n";
    let dfile = node.dir.join("depts.jsonl");
    std::fs::write(&dfile, depts).unwrap();
    let (code, stdout, stderr) = cli(
        &node,
        "admin",
        &["department", "import", dfile.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert_eq!(
        node.client("admin").get("/v1/departments/320600-AA").status,
        200
    );
}
