//! Decisions against a real casbin enforcer and a real catalog state.

use yiwang_catalog::model::*;
use yiwang_catalog::{CatalogState, Command, SharedState};

use crate::{Action, PolicyEngine, PolicyError, Principal};

const T0: &str = "2026-11-01T00:00:00.000Z";
const NOW: &str = "2026-11-05T00:00:00.000Z";
const YJJ: &str = "320600-YJJ";
const JTJ: &str = "320600-JTJ";
const GAJ: &str = "320600-GAJ";

fn who(dept: &str, name: &str) -> Principal {
    Principal {
        id: format!("spiffe://yiwang.local/dept/{dept}/{name}"),
        dept: dept.into(),
    }
}

fn dataset(id: &str, dept: &str, share: ShareType) -> DatasetInput {
    DatasetInput {
        id: id.into(),
        dept: dept.into(),
        title: "卡口记录".into(),
        summary: String::new(),
        keywords: vec![],
        theme: "交通运输".into(),
        format: Format::Table,
        share_type: share,
        share_condition: if share == ShareType::Unconditional {
            String::new()
        } else {
            "依法".into()
        },
        open_type: String::new(),
        update_cycle: UpdateCycle::Daily,
        fields: vec![
            Field {
                name: "plate".into(),
                title: "车牌".into(),
                field_type: FieldType::String,
                sensitivity: Sensitivity::Public,
                masking: None,
            },
            Field {
                name: "driver_id_no".into(),
                title: "驾驶员身份证号".into(),
                field_type: FieldType::String,
                sensitivity: Sensitivity::Sensitive,
                masking: Some(Masking::IdCard),
            },
        ],
        source: None,
    }
}

fn apply(s: &mut CatalogState, c: Command) {
    s.apply(c).0.expect("command applies");
}

fn state() -> CatalogState {
    let mut s = CatalogState::default();
    apply(
        &mut s,
        Command::RegisterDepartments {
            at: T0.into(),
            departments: [YJJ, JTJ, GAJ]
                .iter()
                .map(|c| Department {
                    code: c.to_string(),
                    name: c.to_string(),
                    region: "南通市".into(),
                    created_at: String::new(),
                })
                .collect(),
        },
    );
    apply(
        &mut s,
        Command::RegisterDatasets {
            at: T0.into(),
            datasets: vec![
                dataset("DS-U", JTJ, ShareType::Unconditional),
                dataset("DS-C", JTJ, ShareType::Conditional),
                dataset("DS-N", JTJ, ShareType::None),
            ],
        },
    );
    let mut bindings = vec![];
    for (d, n, r) in [
        (GAJ, "system", Role::System),
        (JTJ, "steward", Role::Steward),
        (JTJ, "system", Role::System),
        (YJJ, "auditor", Role::DeptAuditor),
        (YJJ, "admin", Role::Admin),
    ] {
        bindings.push(RoleBinding {
            principal: who(d, n).id,
            role: r,
        });
    }
    apply(&mut s, Command::BindRoles { bindings });
    s
}

fn grant(
    s: &mut CatalogState,
    req: &str,
    grant: &str,
    fields: Option<Vec<&str>>,
    filter: Option<&str>,
) {
    apply(
        s,
        Command::CreateRequest {
            request: AccessRequest {
                id: req.into(),
                consumer: who(GAJ, "system").id,
                consumer_dept: GAJ.into(),
                dataset: "DS-C".into(),
                provider_dept: String::new(),
                fields: vec![],
                purpose: "案件侦办".into(),
                days: 10,
                state: RequestState::Pending,
                created_at: T0.into(),
                decide_by: None,
                decided_by: None,
                decided_at: None,
                reason: None,
                grant_id: None,
            },
        },
    );
    apply(
        s,
        Command::ApproveRequest {
            id: req.into(),
            by: who(JTJ, "steward").id,
            at: T0.into(),
            grant_id: grant.into(),
            fields: fields.map(|f| f.into_iter().map(String::from).collect()),
            row_filter: filter.map(String::from),
            days: None,
        },
    );
}

async fn engine(s: CatalogState) -> (PolicyEngine, SharedState) {
    let shared = SharedState::default();
    shared.replace(s);
    (
        PolicyEngine::new(shared.clone(), vec![]).await.unwrap(),
        shared,
    )
}

fn ds(shared: &SharedState, id: &str) -> Dataset {
    shared.read().datasets[id].clone()
}

#[tokio::test]
async fn unconditional_reads_mask_sensitive_fields() {
    let (e, s) = engine(state()).await;
    let plan = e
        .plan_read(&who(GAJ, "system"), &ds(&s, "DS-U"), None, NOW)
        .await
        .unwrap();
    assert_eq!(plan.masked_fields(), vec!["driver_id_no"]);
    assert_eq!(
        plan.decision.rule.as_deref(),
        Some("p, system, read, unconditional, any")
    );
    // The own department sees everything in clear, whatever its role.
    let plan = e
        .plan_read(&who(JTJ, "steward"), &ds(&s, "DS-N"), None, NOW)
        .await
        .unwrap();
    assert!(plan.masked_fields().is_empty());
    assert_eq!(plan.columns.len(), 2);
}

#[tokio::test]
async fn conditional_needs_an_active_grant_and_only_its_fields() {
    let (e, s) = engine(state()).await;
    let err = e
        .plan_read(&who(GAJ, "system"), &ds(&s, "DS-C"), None, NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Denied(m) if m.contains("holds no grant")),
        "{err}"
    );

    let mut st = s.read().clone();
    grant(
        &mut st,
        "R1",
        "G1",
        Some(vec!["plate"]),
        Some("plate like '苏F%'"),
    );
    s.replace(st);
    e.reload().await.unwrap();
    let plan = e
        .plan_read(&who(GAJ, "system"), &ds(&s, "DS-C"), None, NOW)
        .await
        .unwrap();
    assert_eq!(
        plan.columns
            .iter()
            .map(|c| c.field.name.as_str())
            .collect::<Vec<_>>(),
        vec!["plate"]
    );
    assert_eq!(plan.decision.grant.as_deref(), Some("G1"));
    assert_eq!(plan.row_filter.unwrap().to_string(), "plate like '苏F%'");
    let err = e
        .plan_read(
            &who(GAJ, "system"),
            &ds(&s, "DS-C"),
            Some(&["driver_id_no".into()]),
            NOW,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Denied(m) if m.contains("driver_id_no")),
        "{err}"
    );
    let err = e
        .plan_read(
            &who(GAJ, "system"),
            &ds(&s, "DS-C"),
            Some(&["nope".into()]),
            NOW,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Invalid(m) if m.contains("nope")),
        "{err}"
    );
    // After expiry (10 days) the grant no longer serves.
    let err = e
        .plan_read(
            &who(GAJ, "system"),
            &ds(&s, "DS-C"),
            None,
            "2026-11-12T00:00:00.000Z",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Denied(m) if m.contains("no longer active")),
        "{err}"
    );
}

#[tokio::test]
async fn revocation_reaches_the_enforcer_incrementally() {
    let mut st = state();
    grant(&mut st, "R1", "G1", None, None);
    let (e, s) = engine(st).await;
    e.plan_read(&who(GAJ, "system"), &ds(&s, "DS-C"), None, NOW)
        .await
        .unwrap();
    let mut st = s.read().clone();
    let (r, changes) = st.apply(Command::RevokeGrant {
        id: "G1".into(),
        by: "x".into(),
        at: NOW.into(),
    });
    r.unwrap();
    s.replace(st);
    e.apply(&changes).await.unwrap();
    assert!(
        e.plan_read(&who(GAJ, "system"), &ds(&s, "DS-C"), None, NOW)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn none_never_leaves_and_roles_gate_actions() {
    let (e, s) = engine(state()).await;
    let err = e
        .plan_read(&who(GAJ, "system"), &ds(&s, "DS-N"), None, NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Denied(m) if m.contains("share_type none")),
        "{err}"
    );
    // A steward of another department reads nothing of JTJ's, even unconditional data.
    assert!(
        e.plan_read(&who(YJJ, "auditor"), &ds(&s, "DS-U"), None, NOW)
            .await
            .is_err()
    );
    let u = ds(&s, "DS-U");
    assert!(
        e.decide(&who(JTJ, "steward"), Action::Write, Some(&u), JTJ)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !e.decide(&who(JTJ, "system"), Action::Write, Some(&u), JTJ)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !e.decide(&who(GAJ, "system"), Action::Decide, Some(&u), JTJ)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        e.decide(&who(YJJ, "admin"), Action::Manage, None, "*")
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !e.decide(&who(JTJ, "steward"), Action::Manage, None, "*")
            .await
            .unwrap()
            .allowed
    );
    // Department auditors audit their own department only.
    assert!(
        e.decide(&who(YJJ, "auditor"), Action::Audit, None, YJJ)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !e.decide(&who(YJJ, "auditor"), Action::Audit, None, JTJ)
            .await
            .unwrap()
            .allowed
    );
    // Role changes apply incrementally.
    let mut st = s.read().clone();
    let (r, changes) = st.apply(Command::UnbindRole {
        binding: RoleBinding {
            principal: who(JTJ, "steward").id,
            role: Role::Steward,
        },
    });
    r.unwrap();
    s.replace(st);
    e.apply(&changes).await.unwrap();
    assert!(
        !e.decide(&who(JTJ, "steward"), Action::Write, Some(&u), JTJ)
            .await
            .unwrap()
            .allowed
    );
}

/// xorshift64: a deterministic sequence for the property test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What the rules (policy.csv, docs/access-control.md) say about reading `field` of
/// `dataset`, written out independently of the engine: `Some(masked)` or `None`.
fn oracle(s: &CatalogState, p: &Principal, d: &Dataset, field: &str, now: &str) -> Option<bool> {
    if p.dept == d.dept {
        return Some(false);
    }
    if !s.has_role(&p.id, Role::System) {
        return None;
    }
    let active: Vec<&Grant> = s
        .grants
        .values()
        .filter(|g| g.consumer_dept == p.dept && g.dataset == d.id)
        .filter(|g| g.revoked_at.is_none() && g.expires_at.as_str() > now)
        .collect();
    let named = active.iter().any(|g| g.fields.iter().any(|f| f == field));
    let sensitive = d
        .fields
        .iter()
        .any(|f| f.name == field && f.sensitivity == Sensitivity::Sensitive);
    match d.share_type {
        ShareType::None => None,
        ShareType::Unconditional => Some(sensitive && !named),
        ShareType::Conditional => named.then_some(false),
    }
}

/// Random sequences of catalog commands — requests, approvals that narrow fields, add
/// row filters and shorten durations, rejections, withdrawals, revocations, role
/// changes, share-type changes, retirements — with time moving on so that grants
/// expire; after every step, every principal × dataset × field is decided by the
/// engine (kept up to date incrementally, as on a node) and compared with the rules.
#[tokio::test]
async fn no_command_sequence_yields_an_allow_the_rules_forbid() {
    let principals = [
        who(GAJ, "system"),
        who(GAJ, "steward"),
        who(GAJ, "nobody"),
        who(JTJ, "steward"),
        who(JTJ, "system"),
        who(YJJ, "auditor"),
        who(YJJ, "admin"),
        who(YJJ, "system"),
    ];
    let roles = [
        Role::System,
        Role::Steward,
        Role::Admin,
        Role::Auditor,
        Role::DeptAuditor,
    ];
    let shares = [
        ShareType::Unconditional,
        ShareType::Conditional,
        ShareType::None,
    ];
    let datasets = ["DS-U", "DS-C", "DS-N"];
    let fields = ["plate", "driver_id_no"];
    let (mut decisions, mut allows, mut applied) = (0u64, 0u64, 0u64);
    for seed in 1..=24u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut s = state();
        let (engine, shared) = engine(s.clone()).await;
        let mut clock = yiwang_catalog::clock::parse(T0).unwrap();
        let (mut requests, mut grants) = (Vec::<String>::new(), Vec::<String>::new());
        for step in 0..80 {
            clock += time::Duration::hours(rng.below(30) as i64);
            let at = yiwang_catalog::clock::format(clock);
            let by = who(JTJ, "steward").id;
            let cmd = match rng.below(10) {
                0..=2 => {
                    let id = format!("R{seed}-{step}");
                    requests.push(id.clone());
                    let consumer = rng.pick(&principals).clone();
                    let ds = rng.pick(&datasets).to_string();
                    let f: Vec<String> = match rng.below(3) {
                        0 => vec![],
                        1 => vec!["plate".into()],
                        _ => vec!["driver_id_no".into()],
                    };
                    Command::CreateRequest {
                        request: AccessRequest {
                            id,
                            consumer: consumer.id,
                            consumer_dept: consumer.dept,
                            dataset: ds,
                            provider_dept: String::new(),
                            fields: f,
                            purpose: "核查".into(),
                            days: 1 + rng.below(4) as u32,
                            state: RequestState::Pending,
                            created_at: at.clone(),
                            decide_by: None,
                            decided_by: None,
                            decided_at: None,
                            reason: None,
                            grant_id: None,
                        },
                    }
                }
                3..=4 if !requests.is_empty() => {
                    let id = rng.pick(&requests).clone();
                    let grant_id = format!("G{seed}-{step}");
                    grants.push(grant_id.clone());
                    Command::ApproveRequest {
                        id,
                        by,
                        at: at.clone(),
                        grant_id,
                        fields: match rng.below(3) {
                            0 => Some(vec!["plate".into()]),
                            _ => None,
                        },
                        row_filter: (rng.below(3) == 0).then(|| "plate = '苏F12345'".into()),
                        days: (rng.below(2) == 0).then(|| 1 + rng.below(3) as u32),
                    }
                }
                5 if !requests.is_empty() => match rng.below(2) {
                    0 => Command::RejectRequest {
                        id: rng.pick(&requests).clone(),
                        by,
                        at: at.clone(),
                        reason: "不符合共享条件".into(),
                    },
                    _ => Command::WithdrawRequest {
                        id: rng.pick(&requests).clone(),
                        by: rng.pick(&principals).id.clone(),
                        at: at.clone(),
                    },
                },
                6 if !grants.is_empty() => Command::RevokeGrant {
                    id: rng.pick(&grants).clone(),
                    by,
                    at: at.clone(),
                },
                7 => {
                    let binding = RoleBinding {
                        principal: rng.pick(&principals).id.clone(),
                        role: *rng.pick(&roles),
                    };
                    if rng.below(2) == 0 {
                        Command::BindRoles {
                            bindings: vec![binding],
                        }
                    } else {
                        Command::UnbindRole { binding }
                    }
                }
                8 => {
                    let id = rng.pick(&datasets);
                    Command::UpdateDataset {
                        at: at.clone(),
                        dataset: dataset(id, JTJ, *rng.pick(&shares)),
                        expected_version: None,
                    }
                }
                _ => {
                    if rng.below(8) == 0 {
                        Command::RetireDataset {
                            at: at.clone(),
                            id: rng.pick(&datasets).to_string(),
                        }
                    } else {
                        continue;
                    }
                }
            };
            let (result, changes) = s.apply(cmd);
            if result.is_ok() {
                applied += 1;
            }
            shared.replace(s.clone());
            engine.apply(&changes).await.unwrap();
            // Decide now and a little later (grants expire in between).
            for later in [0, 20] {
                let now = yiwang_catalog::clock::format(clock + time::Duration::hours(later));
                for p in &principals {
                    for id in datasets {
                        let d = s.datasets[id].clone();
                        for f in fields {
                            let want = oracle(&s, p, &d, f, &now);
                            let got =
                                match engine.plan_read(p, &d, Some(&[f.to_string()]), &now).await {
                                    Ok(plan) => Some(plan.columns[0].mask.is_some()),
                                    Err(PolicyError::Denied(_)) => None,
                                    Err(e) => panic!("seed {seed} step {step}: {e}"),
                                };
                            decisions += 1;
                            allows += u64::from(got.is_some());
                            assert!(
                                !(got.is_some() && want.is_none()),
                                "seed {seed} step {step}: {} may not read {f} of {id} ({:?}) at {now}, but the engine allowed it",
                                p.id,
                                d.share_type
                            );
                            assert_eq!(
                                got, want,
                                "seed {seed} step {step}: {} reading {f} of {id} ({:?}) at {now}",
                                p.id, d.share_type
                            );
                        }
                    }
                }
            }
        }
    }
    // The sequences did exercise the rules.
    assert!(applied > 300, "only {applied} commands applied");
    assert!(
        allows > 1000 && allows < decisions,
        "{allows} allows of {decisions}"
    );
}
