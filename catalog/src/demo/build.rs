//! Turns the static tables into [`DatasetInput`]s: one dataset per table row and one per
//! qualifier ([`Variant`]) the row lists.

use crate::model::{DatasetInput, Field, Format, Sensitivity, ShareType, UpdateCycle};

use super::conditions::{C_STATS, C_VERIFY};
use super::elements::{Class, Dictionary};
use super::summary::{self, Parts};
use super::table::{Res, Share, Variant};

/// Statistical variants add at most this many of the base resource's measures, which
/// keeps every dataset within ten fields.
const MAX_MEASURES: usize = 3;

/// Publicity variants keep at most this many public fields of the base resource.
const MAX_PUBLIC_FIELDS: usize = 8;

/// Title suffixes dropped before a qualifier is appended (婚姻登记信息 → 婚姻登记变更记录).
const STEM_SUFFIXES: [&str; 5] = ["信息", "数据", "记录", "名录", "名单"];

/// The administrative level a department works at, which decides what its statistics
/// cover and how they are broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    /// Municipal departments: city-wide figures by district (区县).
    City,
    /// District and county-level city governments: their own area by town (镇、街道).
    County,
}

impl Level {
    fn area(self) -> &'static str {
        match self {
            Level::City => "全市",
            Level::County => "辖区",
        }
    }

    fn subarea(self) -> &'static str {
        match self {
            Level::City => "区县",
            Level::County => "镇（街道）",
        }
    }

    /// Elements naming the unit a statistic is broken down by.
    fn breakdown(self) -> &'static [&'static str] {
        match self {
            Level::City => &["district_code", "district_name"],
            Level::County => &["town_name"],
        }
    }
}

/// One department as the builder needs it.
pub(super) struct Dept<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub level: Level,
}

/// Everything about a dataset that differs between a resource and its variants.
struct Shape {
    title: String,
    summary: String,
    keywords: Vec<String>,
    share: Share,
    cycle: UpdateCycle,
    format: Format,
    fields: Vec<Field>,
}

/// Builds the datasets of one department, numbering them from `first_serial`.
pub(super) fn department_datasets(
    dept: &Dept<'_>,
    tables: &[&[Res]],
    first_serial: u32,
    dict: &Dictionary,
) -> Vec<DatasetInput> {
    let shapes = tables.iter().flat_map(|t| t.iter()).flat_map(|res| {
        std::iter::once((res, base(res, dept, dict))).chain(
            res.vars
                .iter()
                .map(move |&v| (res, variant(res, v, dept, dict))),
        )
    });
    shapes
        .zip(first_serial..)
        .map(|((res, shape), serial)| {
            assemble(super::dataset_id(dept.code, serial), dept, res, shape)
        })
        .collect()
}

fn base(res: &Res, dept: &Dept<'_>, dict: &Dictionary) -> Shape {
    let fields = to_fields(res.fields, dict);
    let summary = summary::base(&Parts {
        dept_name: dept.name,
        title: res.title,
        stem: stem(res.title),
        field_list: &field_list(&fields),
        key_list: &key_list(&fields),
        cycle: res.cycle,
        about: res.about,
        area: dept.level.area(),
        subarea: dept.level.subarea(),
    });
    Shape {
        title: res.title.to_string(),
        summary,
        keywords: res.kw.iter().map(|k| k.to_string()).collect(),
        share: res.share,
        cycle: res.cycle,
        format: res.format,
        fields,
    }
}

fn variant(res: &Res, v: Variant, dept: &Dept<'_>, dict: &Dictionary) -> Shape {
    let base_fields = to_fields(res.fields, dict);
    let key: Vec<Field> = base_fields.iter().take(2).cloned().collect();
    let with = |names: &[&str]| to_fields(names, dict);
    let breakdown = with(dept.level.breakdown());
    let measures: Vec<Field> = base_fields
        .iter()
        .filter(|f| dict.is_public_measure(&f.name))
        .take(MAX_MEASURES)
        .cloned()
        .collect();
    // Aggregates reveal no individual record: those of openly shared records are shared
    // openly too, those of restricted records on the condition that the consumer agrees
    // the statistical caliber with the provider.
    let aggregate_share = match res.share {
        Share::U => Share::U,
        Share::C(_) | Share::N(_) => Share::C(C_STATS),
    };
    let (fields, share, cycle, format) = match v {
        Variant::Change => (
            concat([
                key.clone(),
                with(&[
                    "change_item",
                    "content_before",
                    "content_after",
                    "change_date",
                ]),
            ]),
            res.share,
            UpdateCycle::Daily,
            Format::Table,
        ),
        Variant::Cancel => (
            concat([
                key.clone(),
                with(&["cancel_date", "cancel_reason", "cancel_doc_no"]),
            ]),
            res.share,
            UpdateCycle::Daily,
            Format::Table,
        ),
        Variant::Publicity => {
            let public: Vec<Field> = base_fields
                .iter()
                .filter(|f| dict.get(&f.name).class() == Class::Public)
                .take(MAX_PUBLIC_FIELDS)
                .cloned()
                .collect();
            let cycle = match res.cycle {
                UpdateCycle::Realtime => UpdateCycle::Daily,
                c => c,
            };
            (
                concat([public, with(&["publicity_date"])]),
                Share::U,
                cycle,
                Format::Table,
            )
        }
        Variant::Verify => (
            concat([key.clone(), with(&["verify_result", "verify_time"])]),
            Share::C(C_VERIFY),
            UpdateCycle::Realtime,
            Format::Api,
        ),
        Variant::AnnualStats => (
            concat([
                with(&["stat_year"]),
                breakdown,
                with(&["total_count", "new_count", "yoy_rate"]),
                measures,
            ]),
            aggregate_share,
            UpdateCycle::Yearly,
            Format::Table,
        ),
        Variant::ByDistrict => (
            concat([
                with(&["stat_period"]),
                breakdown,
                with(&["total_count"]),
                measures,
            ]),
            aggregate_share,
            UpdateCycle::Quarterly,
            Format::Table,
        ),
        Variant::MonthlyReport => (
            concat([
                with(&["stat_month"]),
                breakdown,
                with(&["total_count", "mom_rate", "yoy_rate"]),
                measures,
            ]),
            aggregate_share,
            UpdateCycle::Monthly,
            Format::Table,
        ),
    };
    let stem = stem(res.title);
    let suffix = match (v, dept.level) {
        (Variant::ByDistrict, Level::County) => "按镇（街道）汇总",
        _ => v.suffix(),
    };
    let title = format!("{stem}{suffix}");
    let summary = summary::variant(
        v,
        &Parts {
            dept_name: dept.name,
            title: &title,
            stem,
            field_list: &field_list(&fields),
            key_list: &key_list(&key),
            cycle,
            about: res.about,
            area: dept.level.area(),
            subarea: dept.level.subarea(),
        },
    );
    let mut keywords: Vec<String> = res.kw.iter().map(|k| k.to_string()).collect();
    if !keywords.iter().any(|k| k == v.keyword()) {
        keywords.push(v.keyword().to_string());
    }
    keywords.truncate(6);
    Shape {
        title,
        summary,
        keywords,
        share,
        cycle,
        format,
        fields,
    }
}

fn assemble(id: String, dept: &Dept<'_>, res: &Res, shape: Shape) -> DatasetInput {
    let (share_type, share_condition) = match shape.share {
        Share::U => (ShareType::Unconditional, ""),
        Share::C(condition) => (ShareType::Conditional, condition),
        Share::N(basis) => (ShareType::None, basis),
    };
    let has_sensitive = shape
        .fields
        .iter()
        .any(|f| f.sensitivity == Sensitivity::Sensitive);
    DatasetInput {
        id,
        dept: dept.code.to_string(),
        title: shape.title,
        summary: shape.summary,
        keywords: shape.keywords,
        theme: res.theme.as_str().to_string(),
        format: shape.format,
        share_type,
        share_condition: share_condition.to_string(),
        open_type: open_type(share_type, has_sensitive).to_string(),
        update_cycle: shape.cycle,
        fields: shape.fields,
        source: None,
    }
}

/// The open-data attribute (开放属性) follows from sharing and sensitivity: what may
/// not be shared is not opened, and personal data is opened on conditions at most.
fn open_type(share: ShareType, has_sensitive: bool) -> &'static str {
    match (share, has_sensitive) {
        (ShareType::None, _) | (ShareType::Conditional, true) => "不予开放",
        (ShareType::Conditional, false) | (ShareType::Unconditional, true) => "有条件开放",
        (ShareType::Unconditional, false) => "无条件开放",
    }
}

fn to_fields(names: &[&str], dict: &Dictionary) -> Vec<Field> {
    names.iter().map(|n| dict.get(n).to_field()).collect()
}

fn stem(title: &str) -> &str {
    STEM_SUFFIXES
        .iter()
        .find_map(|s| title.strip_suffix(s))
        .unwrap_or(title)
}

/// Joins field lists, dropping a later field whose name is already present (a base
/// resource may itself carry 所属区县 or 同比增长率).
fn concat<const N: usize>(parts: [Vec<Field>; N]) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    for f in parts.into_iter().flatten() {
        if !out.iter().any(|g| g.name == f.name) {
            out.push(f);
        }
    }
    out
}

fn field_list(fields: &[Field]) -> String {
    let titles: Vec<&str> = fields.iter().take(4).map(|f| f.title.as_str()).collect();
    titles.join("、")
}

fn key_list(fields: &[Field]) -> String {
    let titles: Vec<&str> = fields.iter().take(2).map(|f| f.title.as_str()).collect();
    titles.join("和")
}
