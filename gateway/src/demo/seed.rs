//! Seeding the demo catalog through Raft: departments, roles, the generic datasets of
//! 65 departments and the six scenario datasets backed by SQLite. Idempotent: only what
//! is missing is proposed, so an interrupted seed completes on the next start.

use anyhow::{Result, anyhow, bail};
use yiwang_adapters::demo::{ScenarioTable, scenario_tables};
use yiwang_catalog::model::{DatasetInput, Format, RoleBinding, ShareType, SourceRef, UpdateCycle};
use yiwang_catalog::{Command, Outcome, clock, demo};

use super::principals::DemoPrincipal;
use crate::node::Node;

struct ScenarioMeta {
    id: &'static str,
    dept: &'static str,
    table: &'static str,
    summary: &'static str,
    keywords: &'static [&'static str],
    theme: &'static str,
    share_type: ShareType,
    share_condition: &'static str,
    update_cycle: UpdateCycle,
}

const SCENARIO: [ScenarioMeta; 6] = [
    ScenarioMeta {
        id: "320600-YJJ-00001",
        dept: demo::SCENARIO_YJJ,
        table: "hazchem_enterprises",
        summary: "全市危险化学品生产、储存、经营企业名录，含统一社会信用代码、安全生产许可证、生产状态及法定代表人信息，用于跨部门安全生产监管协同。",
        keywords: &[
            "危险化学品",
            "危化品",
            "企业名录",
            "安全生产许可证",
            "责令关停",
        ],
        theme: "安全生产",
        share_type: ShareType::Unconditional,
        share_condition: "",
        update_cycle: UpdateCycle::Monthly,
    },
    ScenarioMeta {
        id: "320600-YJJ-00002",
        dept: demo::SCENARIO_YJJ,
        table: "enforcement_inspections",
        summary: "应急管理部门对危险化学品企业开展安全生产执法检查的记录，含检查发现问题和处罚金额。",
        keywords: &["执法检查", "安全生产", "行政处罚"],
        theme: "安全生产",
        share_type: ShareType::None,
        share_condition: "依据《安全生产违法行为行政处罚办法》，执法检查过程记录仅供本部门内部使用，不予共享",
        update_cycle: UpdateCycle::Daily,
    },
    ScenarioMeta {
        id: "320600-JTJ-00001",
        dept: demo::SCENARIO_JTJ,
        table: "hazmat_truck_checkpoints",
        summary: "全市道路卡口采集的危险货物运输车辆通行记录，含车牌、通行时间、收货企业及地址、危险货物类别和驾驶员信息。",
        keywords: &["危险货物", "运输车辆", "卡口", "过车记录", "危化品运输"],
        theme: "交通运输",
        share_type: ShareType::Conditional,
        share_condition: "仅限安全生产监管、执法办案使用，需经交通运输局审核同意；驾驶员身份信息按最小必要原则提供",
        update_cycle: UpdateCycle::Realtime,
    },
    ScenarioMeta {
        id: "320600-JTJ-00002",
        dept: demo::SCENARIO_JTJ,
        table: "driver_qualifications",
        summary: "道路危险货物运输驾驶员从业资格证信息。",
        keywords: &["驾驶员", "从业资格", "危险货物运输"],
        theme: "交通运输",
        share_type: ShareType::None,
        share_condition: "依据《中华人民共和国个人信息保护法》第二十八条，涉及敏感个人信息，不予共享",
        update_cycle: UpdateCycle::Weekly,
    },
    ScenarioMeta {
        id: "320600-GDGS-00001",
        dept: demo::SCENARIO_GDGS,
        table: "enterprise_hourly_power",
        summary: "工业企业用户分时用电量，按小时统计，可用于研判企业实际生产经营状态。",
        keywords: &["用电量", "分时用电", "企业用电", "电量"],
        theme: "能源",
        share_type: ShareType::Conditional,
        share_condition: "仅限政府部门履行监管职责使用，需经供电公司审核同意",
        update_cycle: UpdateCycle::Daily,
    },
    ScenarioMeta {
        id: "320600-GDGS-00002",
        dept: demo::SCENARIO_GDGS,
        table: "resident_power_accounts",
        summary: "居民用电户户名、证件号码、用电地址及月度用电量明细。",
        keywords: &["居民用电", "用电户"],
        theme: "能源",
        share_type: ShareType::None,
        share_condition: "涉及居民个人信息，依法不予共享",
        update_cycle: UpdateCycle::Monthly,
    },
];

/// The six datasets whose records live in the scenario databases.
pub fn scenario_datasets() -> Result<Vec<DatasetInput>> {
    let tables = scenario_tables();
    SCENARIO
        .iter()
        .map(|m| {
            let t: &ScenarioTable = tables
                .iter()
                .find(|t| t.table == m.table)
                .ok_or_else(|| anyhow!("scenario table {} missing", m.table))?;
            Ok(DatasetInput {
                id: m.id.into(),
                dept: m.dept.into(),
                title: t.title.into(),
                summary: m.summary.into(),
                keywords: m.keywords.iter().map(|k| k.to_string()).collect(),
                theme: m.theme.into(),
                format: Format::Table,
                share_type: m.share_type,
                share_condition: m.share_condition.into(),
                open_type: "不予开放".into(),
                update_cycle: m.update_cycle,
                fields: t.columns.clone(),
                source: Some(SourceRef {
                    id: t.source_id.into(),
                    table: t.table.into(),
                }),
            })
        })
        .collect()
}

async fn propose(node: &Node, cmd: Command) -> Result<Outcome> {
    node.propose(cmd)
        .await
        .map_err(|e| anyhow!("{}", e.message))
}

/// Seeds whatever part of the demo catalog is missing. Returns how many datasets were
/// added.
pub async fn seed(node: &Node, principals: &[DemoPrincipal]) -> Result<usize> {
    let (have_depts, have_datasets): (
        std::collections::BTreeSet<String>,
        std::collections::BTreeSet<String>,
    ) = {
        let s = node.state.read();
        (
            s.departments.keys().cloned().collect(),
            s.datasets.keys().cloned().collect(),
        )
    };
    let missing_depts: Vec<_> = demo::departments()
        .into_iter()
        .filter(|d| !have_depts.contains(&d.code))
        .collect();
    if !missing_depts.is_empty() {
        let out = propose(
            node,
            Command::RegisterDepartments {
                at: clock::now(),
                departments: missing_depts,
            },
        )
        .await?;
        if let Outcome::Departments { results } = out
            && let Some(Err(e)) = results.into_iter().find(|r| r.is_err())
        {
            bail!("demo department rejected: {e}");
        }
    }
    let bindings: Vec<RoleBinding> = principals
        .iter()
        .map(|p| RoleBinding {
            principal: p.spiffe_id.clone(),
            role: p.role,
        })
        .filter(|b| !node.state.read().has_role(&b.principal, b.role))
        .collect();
    if !bindings.is_empty() {
        propose(node, Command::BindRoles { bindings }).await?;
    }
    let mut missing: Vec<DatasetInput> = scenario_datasets()?;
    missing.extend(demo::datasets());
    missing.retain(|d| !have_datasets.contains(&d.id));
    let total = missing.len();
    let mut added = 0;
    for chunk in missing.chunks(node.config.limits.bulk_batch) {
        let out = propose(
            node,
            Command::RegisterDatasets {
                at: clock::now(),
                datasets: chunk.to_vec(),
            },
        )
        .await?;
        if let Outcome::Datasets { results } = out {
            for r in results {
                match r {
                    Ok(_) => added += 1,
                    Err(e) => bail!("demo dataset rejected: {e}"),
                }
            }
        }
        if total > 0 {
            eprint!("\r  seeding catalog: {added}/{total} datasets");
        }
    }
    if total > 0 {
        eprintln!();
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn scenario_and_generic_datasets_fit_together() {
        let scenario = scenario_datasets().unwrap();
        assert_eq!(scenario.len(), 6);
        let mut all = scenario.clone();
        all.extend(demo::datasets());
        let mut ids = BTreeSet::new();
        let mut titles = BTreeSet::new();
        for d in &all {
            yiwang_catalog::validate::dataset(d).unwrap_or_else(|e| panic!("{}: {e}", d.id));
            assert!(ids.insert(d.id.clone()), "duplicate id {}", d.id);
            assert!(
                titles.insert((d.dept.clone(), d.title.clone())),
                "duplicate title {} in {}",
                d.title,
                d.dept
            );
        }
        let depts: BTreeSet<String> = demo::departments().into_iter().map(|d| d.code).collect();
        assert!(all.iter().all(|d| depts.contains(&d.dept)));
        let shares: BTreeSet<ShareType> = scenario.iter().map(|d| d.share_type).collect();
        assert_eq!(shares.len(), 3, "the scenario covers all three share types");
    }
}
