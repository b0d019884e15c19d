//! The access workflow end to end: request, decide, read under the grant, revoke.

use serde_json::json;
use yiwang_tests::{DemoNode, cli};

const TRUCKS: &str = "320600-JTJ-00001";
const PURPOSE: &str = "night-check";

fn records(id: &str) -> String {
    format!("/v1/datasets/{id}/records")
}

#[test]
fn request_approve_read_revoke() {
    let node = DemoNode::start();
    let consumer = node.client("dsj-system");
    let steward = node.client("jtj-steward");

    assert_eq!(consumer.read(&records(TRUCKS), PURPOSE).status, 403);
    // The CLI explains the denial (exit 3) and an allowed read (exit 0).
    let (code, out, e) = cli(&node, "dsj-system", &["authz", "explain", TRUCKS]);
    assert_eq!(code, 3, "{out}{e}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["allowed"], false, "{v}");
    assert!(!v["reason"].as_str().unwrap().is_empty(), "{v}");
    let (code, out, e) = cli(
        &node,
        "dsj-system",
        &["authz", "explain", "320600-YJJ-00001", "--action", "read"],
    );
    assert_eq!(code, 0, "{out}{e}");
    // An unknown principal (no such department) is a 404 naming it.
    let r = node.client("admin").get(&format!(
        "/v1/authz/explain?dataset={TRUCKS}&principal=spiffe://yiwang.local/dept/999999-NONE/x"
    ));
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.message().contains("999999-NONE"), "{}", r.body);

    let r = consumer.post(
        "/v1/access-requests",
        &json!({"dataset": TRUCKS, "fields": ["plate", "pass_time", "consignee_uscc", "driver_id_no"], "purpose": "核查夜间危险货物运输", "days": 30}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let req = r.json();
    let id = req["id"].as_str().unwrap().to_string();
    assert_eq!(req["state"], "pending");
    assert_eq!(req["provider_dept"], "320600-JTJ");
    // The provider has 10 working days to decide: 12 to 14 calendar days later.
    let created = req["created_at"].as_str().unwrap();
    let decide_by = req["decide_by"].as_str().unwrap();
    assert!(decide_by > created, "{req}");
    let days = |t: &str| {
        let d = &t[..10];
        let (y, m, dd): (i64, i64, i64) = (
            d[..4].parse().unwrap(),
            d[5..7].parse().unwrap(),
            d[8..10].parse().unwrap(),
        );
        // Days since 1970 (civil calendar).
        let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m + 2) / 5 + dd - 1;
        era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy
    };
    let span = days(decide_by) - days(created);
    assert!(
        (12..=14).contains(&span),
        "10 working days are 12 to 14 calendar days: {req}"
    );
    // A second request for the same dataset while this one is pending is refused.
    let again = consumer.post(
        "/v1/access-requests",
        &json!({"dataset": TRUCKS, "fields": ["plate"], "purpose": "再次申请", "days": 7}),
    );
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.message().contains(&id), "{}", again.body);

    // The steward sees it among pending requests; a steward of another department
    // cannot decide it, and neither can the consumer.
    let pending = steward.get("/v1/access-requests?state=pending").json();
    assert!(
        pending["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str())
    );
    let r = node
        .client("yjj-steward")
        .post(&format!("/v1/access-requests/{id}/approve"), &json!({}));
    assert!(r.status == 403 || r.status == 404, "{}", r.body);
    let r = consumer.post(&format!("/v1/access-requests/{id}/approve"), &json!({}));
    assert_eq!(r.status, 403, "{}", r.body);

    // Approval can only narrow — fields and duration — and a row filter must name
    // real fields.
    let r = steward.post(
        &format!("/v1/access-requests/{id}/approve"),
        &json!({"days": 31}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("shorten"), "{}", r.body);
    let r = steward.post(
        &format!("/v1/access-requests/{id}/approve"),
        &json!({"fields": ["plate", "phone"]}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = steward.post(
        &format!("/v1/access-requests/{id}/approve"),
        &json!({"row_filter": "nope = 1"}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("nope"), "{}", r.body);

    let r = steward.post(
        &format!("/v1/access-requests/{id}/approve"),
        &json!({"fields": ["plate", "pass_time", "consignee_uscc"], "row_filter": "pass_time >= '2026-10-01'", "days": 7}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let grant = r.json()["grant"].clone();
    let grant_id = grant["id"].as_str().unwrap().to_string();
    assert_eq!(
        grant["fields"],
        json!(["plate", "pass_time", "consignee_uscc"])
    );
    assert_eq!(grant["consumer_dept"], "320600-DSJ");

    // Deciding twice is a conflict.
    let r = steward.post(
        &format!("/v1/access-requests/{id}/reject"),
        &json!({"reason": "late"}),
    );
    assert_eq!(r.status, 409, "{}", r.body);

    // Now the read works, right away, with only the granted fields.
    let r = consumer.read(&format!("{}?limit=5", records(TRUCKS)), PURPOSE);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(
        body["columns"],
        json!(["plate", "pass_time", "consignee_uscc"])
    );
    assert_eq!(body["rows"].as_array().unwrap().len(), 5);
    let r = consumer.read(&format!("{}?fields=driver_id_no", records(TRUCKS)), PURPOSE);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.message().contains("driver_id_no"), "{}", r.body);
    // Filtering on a field outside the grant is refused, so it cannot leak.
    let r = consumer.read(
        &format!(
            "{}?filter=driver_phone%20like%20%27138%25%27",
            records(TRUCKS)
        ),
        PURPOSE,
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // Explain says which rule and grant.
    let ex = consumer
        .get(&format!("/v1/authz/explain?dataset={TRUCKS}"))
        .json();
    assert_eq!(ex["allowed"], true);
    assert_eq!(ex["rule"], "p, system, read, conditional, grant");
    assert_eq!(ex["grant"], grant_id.as_str());

    // Grants are listed for both sides; a steward revokes and the next read is refused.
    let grants = consumer.get("/v1/grants").json();
    assert!(
        grants["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == grant_id.as_str())
    );
    let r = consumer.delete(&format!("/v1/grants/{grant_id}"));
    assert_eq!(r.status, 403, "the consumer cannot revoke: {}", r.body);
    let r = steward.delete(&format!("/v1/grants/{grant_id}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["revoked_at"].is_string());
    assert_eq!(consumer.read(&records(TRUCKS), PURPOSE).status, 403);
}

#[test]
fn reject_withdraw_and_bad_requests() {
    let node = DemoNode::start();
    let consumer = node.client("gaj-system");
    let steward = node.client("gdgs-steward");
    let power = "320600-GDGS-00001";

    let ask = |body: serde_json::Value| consumer.post("/v1/access-requests", &body);
    // Bad input is refused with the field named; nothing is created.
    for (body, status, needle) in [
        (json!({"dataset": power, "purpose": ""}), 400, "purpose"),
        (
            json!({"dataset": power, "purpose": "x", "days": 0}),
            400,
            "days",
        ),
        (
            json!({"dataset": power, "purpose": "x", "fields": ["nope"]}),
            400,
            "nope",
        ),
        (json!({"dataset": power}), 400, "purpose"),
        (json!({"dataset": power, "purpose": 5}), 400, "purpose"),
        (json!({"dataset": "NOPE-1", "purpose": "x"}), 404, "NOPE-1"),
        (
            json!({"dataset": "320600-GDGS-00002", "purpose": "x"}),
            403,
            "share_type none",
        ),
    ] {
        let r = ask(body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.message().contains(needle), "{body}: {}", r.body);
    }
    assert_eq!(steward.get("/v1/access-requests").json()["total"], 0);

    let id = ask(json!({"dataset": power, "purpose": "排查用电异常"})).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = steward.post(
        &format!("/v1/access-requests/{id}/reject"),
        &json!({"reason": " "}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = steward.post(&format!("/v1/access-requests/{id}/reject"), &json!({}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("reason"), "{}", r.body);
    let r = steward.post(
        &format!("/v1/access-requests/{id}/reject"),
        &json!({"reason": "用途与数据无关"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "rejected");
    assert_eq!(r.json()["reason"], "用途与数据无关");

    let id2 = ask(json!({"dataset": power, "purpose": "again"})).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Only the requester withdraws.
    assert_eq!(
        node.client("gaj-steward")
            .post(&format!("/v1/access-requests/{id2}/withdraw"), &json!({}))
            .status,
        403
    );
    let r = consumer.post(&format!("/v1/access-requests/{id2}/withdraw"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "withdrawn");
    assert_eq!(
        steward
            .post(&format!("/v1/access-requests/{id2}/approve"), &json!({}))
            .status,
        409
    );

    // A dataset retired while a request waits: the request can no longer be approved,
    // and no new one can be made.
    let id3 = ask(json!({"dataset": power, "purpose": "退役前申请"})).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = steward.delete(&format!("/v1/datasets/{power}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = steward.post(&format!("/v1/access-requests/{id3}/approve"), &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.message().contains("no longer active"), "{}", r.body);
    let r = ask(json!({"dataset": power, "purpose": "退役后申请"}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.message().contains("retired"), "{}", r.body);
}
