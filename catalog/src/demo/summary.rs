//! The wording of dataset summaries (摘要).
//!
//! Each table row carries its own coverage-and-purpose clause; the sentence around it is
//! picked from a few templates by a hash of the title, so that neighbouring datasets do
//! not all read alike while the output stays deterministic.

use crate::model::UpdateCycle;

use super::table::Variant;

/// What a summary may mention.
pub(super) struct Parts<'a> {
    pub dept_name: &'a str,
    pub title: &'a str,
    /// The title without its trailing 信息/数据/记录/名录.
    pub stem: &'a str,
    /// Titles of the leading fields, joined with 、.
    pub field_list: &'a str,
    /// Titles of the identifying fields, joined with 和.
    pub key_list: &'a str,
    pub cycle: UpdateCycle,
    pub about: &'a str,
    /// The area statistics cover: 全市 or 辖区.
    pub area: &'a str,
    /// The unit statistics are broken down by: 区县 or 镇（街道）.
    pub subarea: &'a str,
}

/// Summary of a base resource.
pub(super) fn base(p: &Parts<'_>) -> String {
    let (dept, title, stem, fields, about) = (p.dept_name, p.title, p.stem, p.field_list, p.about);
    let cycle = cycle_words(p.cycle);
    match pick(title, 4) {
        0 => format!("{dept}{cycle}更新的{title}，包括{fields}等信息项。{about}。"),
        1 => format!("汇集{dept}业务系统中的{stem}数据，主要信息项有{fields}。{about}。"),
        2 => format!(
            "本资源记录{stem}的{fields}等内容，由{dept}负责采集维护，{cycle}更新。{about}。"
        ),
        _ => format!("{about}。数据由{dept}提供，包含{fields}等信息项，{cycle}更新。"),
    }
}

/// Summary of a dataset derived from a resource under a qualifier.
pub(super) fn variant(v: Variant, p: &Parts<'_>) -> String {
    let (dept, stem, key, area, sub) = (p.dept_name, p.stem, p.key_list, p.area, p.subarea);
    let second = pick(p.title, 2) == 1;
    match (v, second) {
        (Variant::Change, false) => format!(
            "记录{stem}的历次变更事项及变更前后内容，由{dept}每日更新，可用于追溯历史状态和开展变更比对。"
        ),
        (Variant::Change, true) => format!(
            "{stem}发生变更时形成的记录，包括{key}、变更事项、变更前后内容和变更日期，数据来源于{dept}。"
        ),
        (Variant::Cancel, false) => format!(
            "{dept}办理的{stem}注销情况，包括{key}、注销日期、注销原因和注销文号，可用于核查主体或证照状态。"
        ),
        (Variant::Cancel, true) => format!(
            "汇总已注销的{stem}，记录注销原因和日期，便于各部门及时更新业务数据、避免使用失效信息。"
        ),
        (Variant::Publicity, false) => {
            format!("{stem}中依法可以公开的部分，按规定向社会公示，由{dept}提供。")
        }
        (Variant::Publicity, true) => {
            format!("面向社会公示的{stem}，不含个人敏感信息，可用于社会查询和信用监督。")
        }
        (Variant::Verify, false) => format!(
            "提供{stem}的在线核验服务：调用方提交{key}，返回一致性核验结果，不返回原始数据。"
        ),
        (Variant::Verify, true) => format!(
            "{dept}提供的{stem}核验接口，用于政务服务办理中的免证核验，按次调用并全程留痕。"
        ),
        (Variant::AnnualStats, false) => format!(
            "按年度统计{area}{stem}的数量及变化情况，分{sub}列示，由{dept}每年更新，供统计分析和决策参考。"
        ),
        (Variant::AnnualStats, true) => {
            format!("{stem}的年度汇总数据，反映{area}各{sub}的总量、新增量和同比变化情况。")
        }
        (Variant::ByDistrict, false) => {
            format!("按{sub}汇总的{stem}数据，反映各{sub}的数量分布，由{dept}每季度更新。")
        }
        (Variant::ByDistrict, true) => {
            format!("以{sub}为单位对{stem}进行汇总统计，便于比较各地区情况、合理配置资源。")
        }
        (Variant::MonthlyReport, false) => {
            format!("{stem}月度统计报表，包括本月数量及环比、同比变化，由{dept}每月更新。")
        }
        (Variant::MonthlyReport, true) => {
            format!("按月汇总的{stem}数据，用于跟踪月度变化趋势和开展运行监测。")
        }
    }
}

fn cycle_words(cycle: UpdateCycle) -> &'static str {
    match cycle {
        UpdateCycle::Realtime => "实时",
        UpdateCycle::Daily => "每日",
        UpdateCycle::Weekly => "每周",
        UpdateCycle::Monthly => "每月",
        UpdateCycle::Quarterly => "每季度",
        UpdateCycle::Yearly => "每年",
        UpdateCycle::Irregular => "不定期",
    }
}

/// A stable choice among `n` options for `key` (FNV-1a), so that the wording varies
/// between datasets but never between runs or platforms.
fn pick(key: &str, n: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % n
}
