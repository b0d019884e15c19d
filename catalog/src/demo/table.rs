//! The shapes of the static demo tables.
//!
//! A department's catalog is written as a list of [`Res`] rows: one row per
//! information resource the department really holds, with the qualifiers ([`Variant`])
//! under which real catalogs also publish it (变更记录, 年度统计, 公示信息 …). The
//! builder in [`super::build`] turns every row into one base dataset plus one dataset
//! per variant.

use crate::model::{Format, UpdateCycle};

/// The theme list (分类) used by the demo catalog, after the subject classes of
/// municipal 政务信息资源目录.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Theme {
    PublicSafety,
    WorkSafety,
    Transport,
    Energy,
    MarketRegulation,
    Environment,
    SocialSecurity,
    Health,
    EducationCulture,
    UrbanRural,
    NaturalResources,
    Agriculture,
    FinanceTax,
    Legal,
    CivilAffairs,
    Credit,
    Weather,
    GovAffairs,
    Tourism,
    Employment,
}

impl Theme {
    pub(super) const ALL: [Theme; 20] = [
        Theme::PublicSafety,
        Theme::WorkSafety,
        Theme::Transport,
        Theme::Energy,
        Theme::MarketRegulation,
        Theme::Environment,
        Theme::SocialSecurity,
        Theme::Health,
        Theme::EducationCulture,
        Theme::UrbanRural,
        Theme::NaturalResources,
        Theme::Agriculture,
        Theme::FinanceTax,
        Theme::Legal,
        Theme::CivilAffairs,
        Theme::Credit,
        Theme::Weather,
        Theme::GovAffairs,
        Theme::Tourism,
        Theme::Employment,
    ];

    pub(super) const fn as_str(self) -> &'static str {
        match self {
            Theme::PublicSafety => "公共安全",
            Theme::WorkSafety => "安全生产",
            Theme::Transport => "交通运输",
            Theme::Energy => "能源",
            Theme::MarketRegulation => "市场监管",
            Theme::Environment => "生态环境",
            Theme::SocialSecurity => "社会保障",
            Theme::Health => "医疗卫生",
            Theme::EducationCulture => "教育文化",
            Theme::UrbanRural => "城乡建设",
            Theme::NaturalResources => "自然资源",
            Theme::Agriculture => "农业农村",
            Theme::FinanceTax => "财税金融",
            Theme::Legal => "法律服务",
            Theme::CivilAffairs => "民政服务",
            Theme::Credit => "信用服务",
            Theme::Weather => "气象服务",
            Theme::GovAffairs => "综合政务",
            Theme::Tourism => "文化旅游",
            Theme::Employment => "就业创业",
        }
    }
}

/// Share type of a resource together with its condition or legal basis, so that a
/// conditional or unshared row cannot be written without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Share {
    /// 无条件共享.
    U,
    /// 有条件共享, with the condition.
    C(&'static str),
    /// 不予共享, with the legal basis.
    N(&'static str),
}

/// A qualifier under which a resource is also published as a dataset of its own.
///
/// Record-level variants (`Change`, `Cancel`, `Verify`) keep the first two
/// fields of the base resource, which by convention of the tables identify the subject
/// (e.g. 统一社会信用代码 + 企业名称); statistical variants aggregate the base resource
/// by period and district.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    /// 变更记录: every change of a registered subject, before and after.
    Change,
    /// 注销记录: subjects whose registration or licence was cancelled.
    Cancel,
    /// 公示信息: the publicly disclosable fields, as published to the public.
    Publicity,
    /// 核验接口: a yes/no verification API that never returns the records.
    Verify,
    /// 年度统计: yearly totals by district.
    AnnualStats,
    /// 按区县汇总: totals per district and period.
    ByDistrict,
    /// 月度报表: monthly totals with month-on-month change.
    MonthlyReport,
}

impl Variant {
    /// The words appended to the base title's stem.
    pub(super) fn suffix(self) -> &'static str {
        match self {
            Variant::Change => "变更记录",
            Variant::Cancel => "注销记录",
            Variant::Publicity => "公示信息",
            Variant::Verify => "核验接口",
            Variant::AnnualStats => "年度统计",
            Variant::ByDistrict => "按区县汇总",
            Variant::MonthlyReport => "月度报表",
        }
    }

    /// The keyword added to the base keywords.
    pub(super) fn keyword(self) -> &'static str {
        match self {
            Variant::Change => "变更",
            Variant::Cancel => "注销",
            Variant::Publicity => "公示",
            Variant::Verify => "核验",
            Variant::AnnualStats => "年度统计",
            Variant::ByDistrict => "区县",
            Variant::MonthlyReport => "月报",
        }
    }
}

/// One information resource of a department, as a row of a static table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Res {
    /// 名称, unique within the department together with its variants' titles.
    pub title: &'static str,
    pub theme: Theme,
    pub share: Share,
    pub cycle: UpdateCycle,
    pub format: Format,
    /// Three to five keywords; a variant adds one more.
    pub kw: &'static [&'static str],
    /// Coverage and purpose, one clause without a final 。, used in the summary.
    pub about: &'static str,
    /// Names from the data-element dictionary ([`super::elements`]); the first two
    /// identify the subject.
    pub fields: &'static [&'static str],
    pub vars: &'static [Variant],
}
