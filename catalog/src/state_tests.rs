use super::*;

const T0: &str = "2026-11-01T00:00:00.000Z";
const T1: &str = "2026-11-02T00:00:00.000Z";

fn dept(code: &str) -> Department {
    Department {
        code: code.into(),
        name: format!("{code} 部门"),
        region: "南通市".into(),
        created_at: String::new(),
    }
}

fn field(name: &str, s: Sensitivity) -> Field {
    Field {
        name: name.into(),
        title: name.into(),
        field_type: FieldType::String,
        sensitivity: s,
        masking: (s == Sensitivity::Sensitive).then_some(Masking::IdCard),
    }
}

fn input(id: &str, dept: &str, share: ShareType) -> DatasetInput {
    DatasetInput {
        id: id.into(),
        dept: dept.into(),
        title: "危险货物运输车辆卡口记录".into(),
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
            field("plate", Sensitivity::Public),
            field("driver_id_no", Sensitivity::Sensitive),
        ],
        source: None,
    }
}

fn seeded() -> CatalogState {
    let mut s = CatalogState::default();
    let (r, _) = s.apply(Command::RegisterDepartments {
        at: T0.into(),
        departments: vec![dept("320600-JTJ"), dept("320600-GAJ")],
    });
    r.unwrap();
    let (r, _) = s.apply(Command::RegisterDatasets {
        at: T0.into(),
        datasets: vec![input("JTJ-1", "320600-JTJ", ShareType::Conditional)],
    });
    r.unwrap();
    s
}

fn request(id: &str) -> AccessRequest {
    AccessRequest {
        id: id.into(),
        consumer: "spiffe://yiwang.local/dept/320600-GAJ/system".into(),
        consumer_dept: "320600-GAJ".into(),
        dataset: "JTJ-1".into(),
        provider_dept: String::new(),
        fields: vec![],
        purpose: "案件侦办".into(),
        days: 30,
        state: RequestState::Pending,
        created_at: T0.into(),
        decide_by: None,
        decided_by: None,
        decided_at: None,
        reason: None,
        grant_id: None,
    }
}

fn approve(id: &str, grant: &str, fields: Option<Vec<&str>>) -> Command {
    Command::ApproveRequest {
        id: id.into(),
        by: "spiffe://yiwang.local/dept/320600-JTJ/steward".into(),
        at: T1.into(),
        grant_id: grant.into(),
        fields: fields.map(|f| f.into_iter().map(String::from).collect()),
        row_filter: None,
        days: None,
    }
}

#[test]
fn bulk_registration_reports_each_item_and_keeps_the_good_ones() {
    let mut s = seeded();
    let mut bad = input("JTJ-3", "320600-JTJ", ShareType::Unconditional);
    bad.title = String::new();
    let (r, changes) = s.apply(Command::RegisterDatasets {
        at: T1.into(),
        datasets: vec![
            input("JTJ-2", "320600-JTJ", ShareType::Unconditional),
            bad,
            input("JTJ-1", "320600-JTJ", ShareType::Unconditional),
            input("X-1", "320600-NOPE", ShareType::Unconditional),
        ],
    });
    let Ok(Outcome::Datasets { results }) = r else {
        panic!("{r:?}")
    };
    assert!(results[0].is_ok());
    assert!(matches!(&results[1], Err(CatalogError::Invalid { field, .. }) if field == "title"));
    assert!(matches!(&results[2], Err(CatalogError::Conflict { .. })));
    assert!(matches!(&results[3], Err(CatalogError::Invalid { field, .. }) if field == "dept"));
    assert_eq!(changes, vec![Change::Dataset("JTJ-2".into())]);
    assert_eq!(s.datasets.len(), 2);
    assert_eq!(
        s.datasets["JTJ-1"].share_type,
        ShareType::Conditional,
        "duplicate must not overwrite"
    );
}

#[test]
fn update_bumps_version_and_refuses_dept_change_and_stale_versions() {
    let mut s = seeded();
    let mut changed = input("JTJ-1", "320600-JTJ", ShareType::Conditional);
    changed.title = "卡口过车记录".into();
    let (r, _) = s.apply(Command::UpdateDataset {
        at: T1.into(),
        dataset: changed.clone(),
        expected_version: Some(1),
    });
    let Ok(Outcome::Dataset { dataset }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(dataset.version, 2);
    assert_eq!(dataset.published_at, T0);
    assert_eq!(dataset.updated_at, T1);
    let (r, c) = s.apply(Command::UpdateDataset {
        at: T1.into(),
        dataset: changed.clone(),
        expected_version: Some(1),
    });
    assert!(matches!(r, Err(CatalogError::Conflict { .. })));
    assert!(c.is_empty());
    changed.dept = "320600-GAJ".into();
    let before = s.clone();
    let (r, _) = s.apply(Command::UpdateDataset {
        at: T1.into(),
        dataset: changed,
        expected_version: None,
    });
    assert!(matches!(r, Err(CatalogError::Invalid { field, .. }) if field == "dept"));
    assert_eq!(s, before);
}

#[test]
fn retire_keeps_the_dataset_but_blocks_further_changes() {
    let mut s = seeded();
    let (r, _) = s.apply(Command::RetireDataset {
        at: T1.into(),
        id: "JTJ-1".into(),
    });
    r.unwrap();
    assert_eq!(s.datasets["JTJ-1"].status, DatasetStatus::Retired);
    let (r, _) = s.apply(Command::RetireDataset {
        at: T1.into(),
        id: "JTJ-1".into(),
    });
    assert!(matches!(r, Err(CatalogError::Conflict { .. })));
    let (r, _) = s.apply(Command::CreateRequest {
        request: request("R1"),
    });
    assert!(matches!(r, Err(CatalogError::Conflict { .. })));
}

#[test]
fn request_approve_grant_revoke() {
    let mut s = seeded();
    let (r, _) = s.apply(Command::CreateRequest {
        request: request("R1"),
    });
    let Ok(Outcome::Request { request: req }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        req.fields,
        vec!["plate", "driver_id_no"],
        "empty fields means all fields"
    );
    assert_eq!(req.provider_dept, "320600-JTJ");

    // Approval may only narrow the request.
    let mut wider = s.clone();
    let (r, _) = wider.apply(approve("R1", "G1", Some(vec!["plate", "nope"])));
    assert!(matches!(r, Err(CatalogError::Invalid { field, .. }) if field == "fields[1]"));

    let (r, changes) = s.apply(approve("R1", "G1", Some(vec!["plate"])));
    let Ok(Outcome::Approved { request, grant }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(request.state, RequestState::Approved);
    assert_eq!(grant.fields, vec!["plate"]);
    assert_eq!(grant.expires_at, "2026-12-02T00:00:00.000Z");
    assert_eq!(changes.len(), 2);
    assert_eq!(s.active_grants("320600-GAJ", "JTJ-1", T1).count(), 1);
    assert_eq!(
        s.active_grants("320600-GAJ", "JTJ-1", "2026-12-03T00:00:00.000Z")
            .count(),
        0
    );

    // Deciding twice is a conflict.
    let (r, _) = s.apply(Command::RejectRequest {
        id: "R1".into(),
        by: "x".into(),
        at: T1.into(),
        reason: "no".into(),
    });
    assert!(matches!(r, Err(CatalogError::Conflict { .. })));

    let (r, _) = s.apply(Command::RevokeGrant {
        id: "G1".into(),
        by: "x".into(),
        at: T1.into(),
    });
    r.unwrap();
    assert_eq!(s.active_grants("320600-GAJ", "JTJ-1", T1).count(), 0);
    let (r, _) = s.apply(Command::RevokeGrant {
        id: "G1".into(),
        by: "x".into(),
        at: T1.into(),
    });
    assert!(matches!(r, Err(CatalogError::Conflict { .. })));
}

#[test]
fn reject_needs_a_reason_and_own_or_none_datasets_cannot_be_requested() {
    let mut s = seeded();
    s.apply(Command::CreateRequest {
        request: request("R1"),
    })
    .0
    .unwrap();
    let (r, _) = s.apply(Command::RejectRequest {
        id: "R1".into(),
        by: "x".into(),
        at: T1.into(),
        reason: " ".into(),
    });
    assert!(matches!(r, Err(CatalogError::Invalid { field, .. }) if field == "reason"));
    let mut own = request("R2");
    own.consumer_dept = "320600-JTJ".into();
    assert!(matches!(
        s.apply(Command::CreateRequest { request: own }).0,
        Err(CatalogError::Conflict { .. })
    ));
    s.apply(Command::RegisterDatasets {
        at: T0.into(),
        datasets: vec![input("JTJ-9", "320600-JTJ", ShareType::None)],
    })
    .0
    .unwrap();
    let mut none = request("R3");
    none.dataset = "JTJ-9".into();
    assert!(matches!(
        s.apply(Command::CreateRequest { request: none }).0,
        Err(CatalogError::Conflict { .. })
    ));
}

#[test]
fn approve_validates_row_filter_against_fields() {
    let mut s = seeded();
    s.apply(Command::CreateRequest {
        request: request("R1"),
    })
    .0
    .unwrap();
    let mut bad = approve("R1", "G1", None);
    if let Command::ApproveRequest { row_filter, .. } = &mut bad {
        *row_filter = Some("unknown_col = 1".into());
    }
    let (r, _) = s.apply(bad);
    assert!(matches!(r, Err(CatalogError::Invalid { field, .. }) if field == "row_filter"));
    let mut good = approve("R1", "G1", None);
    if let Command::ApproveRequest { row_filter, .. } = &mut good {
        *row_filter = Some("plate like '苏F%'".into());
    }
    s.apply(good).0.unwrap();
}

#[test]
fn roles_bind_to_known_departments_only() {
    let mut s = seeded();
    let ok = RoleBinding {
        principal: "spiffe://yiwang.local/dept/320600-GAJ/system".into(),
        role: Role::System,
    };
    let bad = RoleBinding {
        principal: "spiffe://yiwang.local/dept/320600-XXX/system".into(),
        role: Role::System,
    };
    let (r, _) = s.apply(Command::BindRoles {
        bindings: vec![ok.clone(), bad],
    });
    assert!(
        matches!(r, Err(CatalogError::Invalid { field, .. }) if field == "bindings[1].principal")
    );
    assert!(s.roles.is_empty(), "a failed batch binds nothing");
    s.apply(Command::BindRoles {
        bindings: vec![ok.clone()],
    })
    .0
    .unwrap();
    assert!(s.has_role(&ok.principal, Role::System));
    s.apply(Command::UnbindRole {
        binding: ok.clone(),
    })
    .0
    .unwrap();
    assert!(!s.has_role(&ok.principal, Role::System));
    assert!(matches!(
        s.apply(Command::UnbindRole { binding: ok }).0,
        Err(CatalogError::NotFound { .. })
    ));
}

#[test]
fn apply_is_deterministic() {
    let cmds = vec![
        Command::CreateRequest {
            request: request("R1"),
        },
        approve("R1", "G1", None),
        Command::RetireDataset {
            at: T1.into(),
            id: "JTJ-1".into(),
        },
    ];
    let mut a = seeded();
    let mut b = seeded();
    for c in cmds {
        let ra = a.apply(c.clone());
        let rb = b.apply(c);
        assert_eq!(ra, rb);
    }
    assert_eq!(a, b);
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(serde_json::from_str::<CatalogState>(&json).unwrap(), a);
}

#[test]
fn dataset_ids_and_department_codes_never_collide() {
    // They share casbin's `g2` namespace, where one equal to the other would link them.
    let mut s = seeded();
    let (r, _) = s.apply(Command::RegisterDatasets {
        at: T1.into(),
        datasets: vec![input("320600-GAJ", "320600-JTJ", ShareType::Conditional)],
    });
    assert!(format!("{r:?}").contains("department code"), "{r:?}");
    assert!(!s.datasets.contains_key("320600-GAJ"));
    let (r, _) = s.apply(Command::RegisterDepartments {
        at: T1.into(),
        departments: vec![dept("JTJ-1")],
    });
    assert!(format!("{r:?}").contains("already a dataset id"), "{r:?}");
    assert!(!s.departments.contains_key("JTJ-1"));
}
