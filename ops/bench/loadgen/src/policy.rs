//! `yiwang-bench policy`: access-decision latency (issue 5) — yiwang's read decision
//! (`PolicyEngine::plan_read`: casbin decision, grants, columns, masking, row filter) vs
//! casbin's uncached `enforce` on the same model and rules, in one run, over a catalog
//! of D departments, N datasets and G active grants built in memory through the
//! catalog's own commands.

use std::time::{Duration, Instant};

use anyhow::Result;
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use clap::Args;
use yiwang_catalog::model::*;
use yiwang_catalog::{CatalogState, Command, SharedState};
use yiwang_policies::{PolicyEngine, Principal};

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// Departments
    #[arg(long, default_value_t = 65)]
    departments: usize,
    /// Datasets (spread over the departments; a third each unconditional,
    /// conditional and none)
    #[arg(long, default_value_t = 100_000)]
    datasets: usize,
    /// Active grants (random consumer department × conditional or unconditional dataset)
    #[arg(long, default_value_t = 100_000)]
    grants: usize,
    /// Decisions measured per system
    #[arg(long, default_value_t = 200_000)]
    decisions: usize,
    /// Append the JSON result to this file
    #[arg(long)]
    jsonl: Option<std::path::PathBuf>,
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn dept(i: usize) -> String {
    format!("3206{i:02}-D{i:02}")
}

fn dataset(i: usize, departments: usize) -> DatasetInput {
    let share = match i % 3 {
        0 => ShareType::Unconditional,
        1 => ShareType::Conditional,
        _ => ShareType::None,
    };
    let field = |name: &str, s: Sensitivity, m: Option<Masking>| Field {
        name: name.into(),
        title: name.into(),
        field_type: FieldType::String,
        sensitivity: s,
        masking: m,
    };
    DatasetInput {
        id: format!("{}-{:05}", dept(i % departments), i / departments),
        dept: dept(i % departments),
        title: format!("数据集 {i}"),
        summary: String::new(),
        keywords: vec![],
        theme: "综合".into(),
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
            field("uscc", Sensitivity::Public, None),
            field("name", Sensitivity::Internal, None),
            field(
                "legal_rep_id",
                Sensitivity::Sensitive,
                Some(Masking::IdCard),
            ),
            field("phone", Sensitivity::Sensitive, Some(Masking::Phone)),
        ],
        source: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p / 100.0) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e6
}

fn summary(
    name: &str,
    mut lat: Vec<Duration>,
    allowed: usize,
    total: Duration,
) -> serde_json::Value {
    lat.sort_unstable();
    serde_json::json!({
        "system": name,
        "decisions": lat.len(),
        "allowed": allowed,
        "decisions_per_s": (lat.len() as f64 / total.as_secs_f64()).round(),
        "us_p50": (percentile(&lat, 50.0) * 100.0).round() / 100.0,
        "us_p99": (percentile(&lat, 99.0) * 100.0).round() / 100.0,
        "us_p999": (percentile(&lat, 99.9) * 100.0).round() / 100.0,
        "us_max": (lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e6) * 100.0).round() / 100.0,
    })
}

pub async fn run(a: PolicyArgs) -> Result<()> {
    let at = "2026-11-01T00:00:00.000Z".to_string();
    let now = "2026-11-05T00:00:00.000Z".to_string();
    let started = Instant::now();
    let mut s = CatalogState::default();
    let check = |r: yiwang_catalog::ApplyResult| r.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"));
    check(
        s.apply(Command::RegisterDepartments {
            at: at.clone(),
            departments: (0..a.departments)
                .map(|i| Department {
                    code: dept(i),
                    name: format!("部门{i}"),
                    region: "南通市".into(),
                    created_at: String::new(),
                })
                .collect(),
        })
        .0,
    )?;
    for chunk in (0..a.datasets).collect::<Vec<_>>().chunks(5000) {
        check(
            s.apply(Command::RegisterDatasets {
                at: at.clone(),
                datasets: chunk.iter().map(|i| dataset(*i, a.departments)).collect(),
            })
            .0,
        )?;
    }
    // Two principals per department: its system and its steward.
    let principal = |d: usize, role: &str| Principal {
        id: format!("spiffe://yiwang.local/dept/{}/{role}", dept(d)),
        dept: dept(d),
    };
    let mut bindings = Vec::new();
    for d in 0..a.departments {
        bindings.push(RoleBinding {
            principal: principal(d, "system").id,
            role: Role::System,
        });
        bindings.push(RoleBinding {
            principal: principal(d, "steward").id,
            role: Role::Steward,
        });
    }
    check(s.apply(Command::BindRoles { bindings }).0)?;
    let ids: Vec<String> = s.datasets.keys().cloned().collect();
    let shared_ids: Vec<&String> = ids
        .iter()
        .filter(|id| s.datasets[*id].share_type != ShareType::None)
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut made = 0;
    let mut n = 0;
    while made < a.grants {
        n += 1;
        let id = shared_ids[rng.below(shared_ids.len())].clone();
        let owner = s.datasets[&id].dept.clone();
        let consumer = rng.below(a.departments);
        if dept(consumer) == owner {
            continue;
        }
        let req = format!("R{n}");
        let ok = s
            .apply(Command::CreateRequest {
                request: AccessRequest {
                    id: req.clone(),
                    consumer: principal(consumer, "system").id,
                    consumer_dept: dept(consumer),
                    dataset: id,
                    provider_dept: String::new(),
                    fields: vec!["uscc".into(), "legal_rep_id".into()],
                    purpose: "基准测试".into(),
                    days: 365,
                    state: RequestState::Pending,
                    created_at: at.clone(),
                    decide_by: None,
                    decided_by: None,
                    decided_at: None,
                    reason: None,
                    grant_id: None,
                },
            })
            .0
            .is_ok();
        if !ok {
            continue; // a pending request for the same pair already exists
        }
        check(
            s.apply(Command::ApproveRequest {
                id: req,
                by: String::new(),
                at: at.clone(),
                grant_id: format!("G{n}"),
                fields: None,
                row_filter: None,
                days: None,
            })
            .0,
        )?;
        made += 1;
    }
    let active = s.grants.values().filter(|g| g.is_active_at(&now)).count();
    eprintln!(
        "policy bench: {} departments, {} datasets, {active} active grants built in {:.1} s",
        s.departments.len(),
        s.datasets.len(),
        started.elapsed().as_secs_f64()
    );

    // The same random questions for both: a department's system or steward reading a
    // random dataset.
    let questions: Vec<(Principal, String)> = (0..a.decisions)
        .map(|_| {
            let d = rng.below(a.departments);
            let who = principal(
                d,
                if rng.below(4) == 0 {
                    "steward"
                } else {
                    "system"
                },
            );
            (who, ids[rng.below(ids.len())].clone())
        })
        .collect();

    let shared = SharedState::default();
    let datasets: std::collections::HashMap<String, Dataset> =
        s.datasets.clone().into_iter().collect();
    let built = Instant::now();
    shared.replace(s.clone());
    let engine = PolicyEngine::new(shared, vec![])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "policy bench: yiwang engine loaded in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    // casbin alone: the same model, policy rows and grouping rows, uncached enforce.
    let built = Instant::now();
    let model = DefaultModel::from_str(yiwang_policies::MODEL).await?;
    let mut casbin = Enforcer::new(model, MemoryAdapter::default()).await?;
    casbin.enable_log(false);
    let rows: Vec<Vec<String>> = yiwang_policies::POLICY
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("p,"))
        .map(|l| l.split(',').skip(1).map(|x| x.trim().to_string()).collect())
        .collect();
    casbin.add_policies(rows).await?;
    let g: Vec<Vec<String>> = s
        .roles
        .iter()
        .flat_map(|(p, rs)| {
            rs.iter()
                .map(move |r| vec![p.clone(), r.as_str().to_string()])
        })
        .collect();
    casbin.add_named_grouping_policies("g", g).await?;
    let g2: std::collections::BTreeSet<Vec<String>> = s
        .grants
        .values()
        .filter(|g| g.revoked_at.is_none())
        .map(|g| vec![g.consumer_dept.clone(), g.dataset.clone()])
        .collect();
    casbin
        .add_named_grouping_policies("g2", g2.into_iter().collect())
        .await?;
    eprintln!(
        "policy bench: casbin loaded in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    let mut results = Vec::new();
    for round in 0..2 {
        // casbin's enforce, uncached.
        let mut lat = Vec::with_capacity(questions.len());
        let mut allowed = 0;
        let t = Instant::now();
        for (who, id) in &questions {
            let d = &datasets[id];
            let s = Instant::now();
            let ok = casbin.enforce((
                who.id.as_str(),
                who.dept.as_str(),
                "read",
                d.id.as_str(),
                d.dept.as_str(),
                d.share_type.as_str(),
            ))?;
            lat.push(s.elapsed());
            allowed += usize::from(ok);
        }
        let casbin_result = summary("casbin enforce (uncached)", lat, allowed, t.elapsed());
        // yiwang: the whole read decision.
        let mut lat = Vec::with_capacity(questions.len());
        let mut allowed = 0;
        let t = Instant::now();
        for (who, id) in &questions {
            let d = &datasets[id];
            let s = Instant::now();
            let ok = engine.plan_read(who, d, None, &now).await.is_ok();
            lat.push(s.elapsed());
            allowed += usize::from(ok);
        }
        let ours = summary(
            "yiwang plan_read (decision + grants + columns + masking)",
            lat,
            allowed,
            t.elapsed(),
        );
        if round == 1 {
            // The first round warms caches; report the second.
            results.push(casbin_result);
            results.push(ours);
        }
    }
    let out = serde_json::json!({
        "departments": a.departments,
        "datasets": a.datasets,
        "active_grants": active,
        "results": results,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let Some(p) = a.jsonl {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)?;
        writeln!(f, "{out}")?;
    }
    Ok(())
}
