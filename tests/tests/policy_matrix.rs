//! The decision matrix, through the real HTTPS API: share type × consumer role ×
//! same/other department × grant state × field sensitivity. Every cell is a records
//! read of one field; the expected outcome comes from the rules written out below
//! (docs/access-control.md), independently of the engine. Zero unexpected allows, and
//! no other mismatch either.
//!
//! Expired grants need time to pass: the grants are made at real time, some for one
//! day, and the matrix is checked with the node restarted under `faketime +2d`
//! (Debian's libfaketime; ops/test.sh installs it).

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};
use yiwang_tests::{Api, DemoNode, binary};

const PROVIDER: &str = "320600-YJJ";
const CONSUMER: &str = "320600-DSJ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Share {
    Unconditional,
    Conditional,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum GrantState {
    NoGrant,
    Pending,
    Approved,
    /// Approved for fewer fields (and, on conditional datasets, a row filter).
    Narrowed,
    Expired,
    Revoked,
}

const STATES: [GrantState; 6] = [
    GrantState::NoGrant,
    GrantState::Pending,
    GrantState::Approved,
    GrantState::Narrowed,
    GrantState::Expired,
    GrantState::Revoked,
];

/// The dataset's fields: name, sensitivity, masking.
const FIELDS: [(&str, &str, Option<&str>); 4] = [
    ("uscc", "public", None),
    ("name", "internal", None),
    ("legal_rep_id", "sensitive", Some("id_card")),
    ("contact_phone", "sensitive", Some("phone")),
];
/// What a narrowed grant keeps.
const NARROWED: [&str; 2] = ["uscc", "legal_rep_id"];

/// A principal of the matrix: certificate name, department, role (None: no role).
struct Who {
    cert: &'static str,
    dept: &'static str,
    role: Option<&'static str>,
}

const WHO: [Who; 10] = [
    Who {
        cert: "yjj-system",
        dept: PROVIDER,
        role: Some("system"),
    },
    Who {
        cert: "yjj-steward",
        dept: PROVIDER,
        role: Some("steward"),
    },
    Who {
        cert: "yjj-auditor",
        dept: PROVIDER,
        role: Some("dept_auditor"),
    },
    Who {
        cert: "yjj-member",
        dept: PROVIDER,
        role: None,
    },
    Who {
        cert: "dsj-system",
        dept: CONSUMER,
        role: Some("system"),
    },
    Who {
        cert: "dsj-steward",
        dept: CONSUMER,
        role: Some("steward"),
    },
    Who {
        cert: "dsj-deptaudit",
        dept: CONSUMER,
        role: Some("dept_auditor"),
    },
    Who {
        cert: "auditor",
        dept: CONSUMER,
        role: Some("auditor"),
    },
    Who {
        cert: "admin",
        dept: CONSUMER,
        role: Some("admin"),
    },
    Who {
        cert: "dsj-member",
        dept: CONSUMER,
        role: None,
    },
];

/// The expected outcome of reading `field`: `Some(masked)` if allowed, `None` if
/// refused (403).
fn expected(share: Share, state: GrantState, who: &Who, field: &str) -> Option<bool> {
    let sensitive = FIELDS
        .iter()
        .any(|(f, s, _)| *f == field && *s == "sensitive");
    // Principals of the providing department read its datasets whole.
    if who.dept == PROVIDER {
        return Some(false);
    }
    // Across departments only systems read.
    if who.role != Some("system") {
        return None;
    }
    let granted = match state {
        GrantState::Approved => true,
        GrantState::Narrowed => NARROWED.contains(&field),
        _ => false,
    };
    match share {
        Share::None => None,
        Share::Unconditional => Some(sensitive && !granted),
        Share::Conditional => granted.then_some(false),
    }
}

fn dataset_id(share: Share, state: GrantState) -> String {
    let s = match share {
        Share::Unconditional => 1,
        Share::Conditional => 2,
        Share::None => 3,
    };
    format!("{PROVIDER}-9{s}{:03}", state as usize)
}

fn dataset(share: Share, state: GrantState) -> Value {
    let share_type = match share {
        Share::Unconditional => "unconditional",
        Share::Conditional => "conditional",
        Share::None => "none",
    };
    let fields: Vec<Value> = FIELDS
        .iter()
        .map(|(name, sensitivity, masking)| {
            let mut f =
                json!({"name": name, "title": name, "type": "string", "sensitivity": sensitivity});
            if let Some(m) = masking {
                f["masking"] = json!(m);
            }
            f
        })
        .collect();
    let mut d = json!({
        "id": dataset_id(share, state), "dept": PROVIDER,
        "title": format!("矩阵测试 {share_type} {state:?}"), "theme": "安全生产",
        "format": "table", "share_type": share_type, "update_cycle": "daily",
        "fields": fields,
        "source": {"id": "yjj-db", "table": "hazchem_enterprises"}
    });
    if share != Share::Unconditional {
        d["share_condition"] = json!("《安全生产法》第三十八条：仅限监管执法使用");
    }
    d
}

fn issue(node: &DemoNode, name: &str, dept: &str) {
    let certs = node.certs();
    let out = Command::new(binary())
        .args(["cert", "issue", "--ca"])
        .arg(&certs)
        .args(["--dept", dept, "--name", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_cell_of_the_decision_matrix() {
    let mut demo = DemoNode::start();
    // Principals the demo does not have: members without a role, and a steward and a
    // department auditor of the consumer's department.
    let admin = demo.client("admin");
    for name in ["yjj-member", "dsj-steward", "dsj-deptaudit", "dsj-member"] {
        let w = WHO.iter().find(|w| w.cert == name).unwrap();
        issue(&demo, w.cert, w.dept);
        if let Some(role) = w.role {
            let principal = format!("spiffe://yiwang.local/dept/{}/{}", w.dept, w.cert);
            let r = admin.post("/v1/roles", &json!({"principal": principal, "role": role}));
            assert_eq!(r.status, 201, "{}", r.body);
        }
    }

    // The datasets, one per share type and grant state.
    let steward = demo.client("yjj-steward");
    let consumer = demo.client("dsj-system");
    let own = demo.client("yjj-system");
    let first = own.read(
        "/v1/datasets/320600-YJJ-00001/records?limit=1&fields=uscc",
        "p",
    );
    let some_uscc = first.json()["rows"][0]["uscc"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cells = Vec::new();
    for share in [Share::Unconditional, Share::Conditional, Share::None] {
        for state in STATES {
            if share == Share::None && state != GrantState::NoGrant {
                continue;
            }
            let r = steward.post("/v1/datasets", &dataset(share, state));
            assert_eq!(r.status, 201, "{}", r.body);
            cells.push((share, state));
        }
    }
    // The grants.
    let mut filtered = BTreeMap::new();
    for &(share, state) in &cells {
        let id = dataset_id(share, state);
        if state == GrantState::NoGrant {
            if share == Share::None {
                // A grant on a `none` dataset cannot even be asked for.
                let r = consumer.post(
                    "/v1/access-requests",
                    &json!({"dataset": id, "purpose": "矩阵测试", "days": 30}),
                );
                assert_eq!(r.status, 403, "{}", r.body);
            }
            continue;
        }
        let r = consumer.post(
            "/v1/access-requests",
            &json!({"dataset": id, "purpose": "矩阵测试", "days": 30}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let req = r.json()["id"].as_str().unwrap().to_string();
        let approve = |body: Value| {
            let r = steward.post(&format!("/v1/access-requests/{req}/approve"), &body);
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()["grant"]["id"].as_str().unwrap().to_string()
        };
        match state {
            GrantState::Pending | GrantState::NoGrant => {}
            GrantState::Approved => {
                approve(json!({}));
            }
            GrantState::Narrowed => {
                let mut body = json!({"fields": NARROWED, "days": 20});
                if share == Share::Conditional {
                    body["row_filter"] = json!(format!("uscc = '{some_uscc}'"));
                    filtered.insert(id.clone(), some_uscc.clone());
                }
                approve(body);
            }
            GrantState::Expired => {
                approve(json!({"days": 1}));
            }
            GrantState::Revoked => {
                let grant = approve(json!({}));
                let r = steward.delete(&format!("/v1/grants/{grant}"));
                assert_eq!(r.status, 200, "{}", r.body);
            }
        }
    }

    // Two days later (the node's clock, through libfaketime): one-day grants expired.
    let (config, port, admin_port) = demo.changed_config("matrix.toml", |_| {});
    let mut cmd = Command::new("faketime");
    cmd.args(["-f", "+2d"])
        .arg(binary())
        .args(["serve", "--config"])
        .arg(&config);
    let mut node = DemoNode::serve_command(&demo.dir, cmd, port, admin_port)
        .expect("faketime (Debian package faketime) must be installed: ops/test.sh installs it");
    demo.hand_over_dir(&mut node);
    let grants = node.client("dsj-system").get("/v1/grants?active=false");
    let expired_id = dataset_id(Share::Conditional, GrantState::Expired);
    assert!(
        grants.body.contains(&expired_id),
        "the node's clock did not move on: {}",
        grants.body
    );
    let active = node.client("dsj-system").get("/v1/grants?active=true");
    assert!(!active.body.contains(&expired_id), "{}", active.body);

    let clients: Vec<(&Who, Api)> = WHO.iter().map(|w| (w, node.client(w.cert))).collect();
    let mut checked = 0;
    let mut unexpected_allows = Vec::new();
    let mut mismatches = Vec::new();
    for &(share, state) in &cells {
        let id = dataset_id(share, state);
        for (who, api) in &clients {
            for (field, sensitivity, _) in FIELDS {
                let want = expected(share, state, who, field);
                let r = api.read(
                    &format!("/v1/datasets/{id}/records?limit=20&fields={field}"),
                    "矩阵测试",
                );
                checked += 1;
                let cell = format!(
                    "{share:?} × {} ({:?}, {}) × {state:?} × {field} ({sensitivity})",
                    who.cert,
                    who.role,
                    if who.dept == PROVIDER {
                        "same dept"
                    } else {
                        "other dept"
                    }
                );
                let got = match r.status {
                    200 => {
                        let masked = r
                            .header("x-masked-fields")
                            .is_some_and(|m| m.split(',').any(|f| f == field));
                        let rows = r.json()["rows"].as_array().unwrap().clone();
                        assert!(!rows.is_empty(), "{cell}: no rows");
                        for row in &rows {
                            let v = row[field].as_str().unwrap_or_default();
                            if !v.is_empty() {
                                assert_eq!(masked, v.contains('*'), "{cell}: {row}");
                            }
                        }
                        if let Some(u) = filtered.get(&id)
                            && who.dept != PROVIDER
                        {
                            // The grant's row filter: only that company's rows.
                            let all = api.read(
                                &format!("/v1/datasets/{id}/records?limit=20&fields=uscc"),
                                "矩阵测试",
                            );
                            for row in all.json()["rows"].as_array().unwrap() {
                                assert_eq!(row["uscc"], u.as_str(), "{cell}: row filter");
                            }
                        }
                        Some(masked)
                    }
                    403 => None,
                    other => panic!("{cell}: unexpected {other}: {}", r.body),
                };
                if got != want {
                    if got.is_some() && want.is_none() {
                        unexpected_allows.push(cell.clone());
                    }
                    mismatches.push(format!("{cell}: expected {want:?}, got {got:?}"));
                }
            }
        }
    }
    assert_eq!(checked, cells.len() * WHO.len() * FIELDS.len());
    assert!(
        unexpected_allows.is_empty(),
        "{} unexpected allows of {checked} cells:\n{}",
        unexpected_allows.len(),
        unexpected_allows.join("\n")
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches of {checked} cells:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    eprintln!("decision matrix: {checked} cells checked, 0 unexpected allows, 0 mismatches");
}
