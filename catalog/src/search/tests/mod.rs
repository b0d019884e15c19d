//! Tests of the search index against real tantivy indexes in temporary directories:
//! fixtures here, what searches return in `queries.rs`, writing, reopening and recovery
//! in `lifecycle.rs`.

mod lifecycle;
mod queries;

use tempfile::TempDir;

use super::{IndexDoc, SearchIndex, SearchQuery, SearchResult};
use crate::model::{
    Dataset, DatasetStatus, Field, FieldType, Format, Sensitivity, ShareType, UpdateCycle,
};

const YJJ: &str = "320600-YJJ";
const JTJ: &str = "320600-JTJ";
const GDGS: &str = "320600-GDGS";
const SCJ: &str = "320600-SCJ";
const HBJ: &str = "320600-HBJ";

#[allow(clippy::too_many_arguments)]
fn doc(
    id: &str,
    dept: &str,
    dept_name: &str,
    title: &str,
    summary: &str,
    keywords: &[&str],
    theme: &str,
    share_type: ShareType,
) -> IndexDoc {
    IndexDoc {
        id: id.to_string(),
        dept: dept.to_string(),
        dept_name: dept_name.to_string(),
        title: title.to_string(),
        summary: summary.to_string(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        theme: theme.to_string(),
        share_type,
        update_cycle: UpdateCycle::Monthly,
        field_titles: vec!["统一社会信用代码".into(), "credit_code".into()],
        published_at: "2024-01-01T00:00:00Z".to_string(),
    }
}

/// The scenario datasets plus enough enterprise-related filler for paging.
fn corpus() -> Vec<IndexDoc> {
    use ShareType::{Conditional, None, Unconditional};
    let mut docs = vec![
        doc(
            "YJJ-0001",
            YJJ,
            "南通市应急管理局",
            "危险化学品企业名录",
            "全市危险化学品生产、经营、储存企业的名称、地址、许可证编号和经营状态。",
            &["危险化学品", "安全生产许可"],
            "安全生产",
            Unconditional,
        ),
        doc(
            "YJJ-0002",
            YJJ,
            "南通市应急管理局",
            "安全生产事故调查报告",
            "生产安全事故的调查结论，其中部分事故涉及危险化学品泄漏。",
            &["事故"],
            "安全生产",
            None,
        ),
        doc(
            "JTJ-0001",
            JTJ,
            "南通市交通运输局",
            "危险货物运输车辆卡口记录",
            "危险货物运输车辆通过全市卡口的时间、车牌和所属企业。",
            &["危险货物", "卡口"],
            "交通运输",
            Conditional,
        ),
        doc(
            "GDGS-0001",
            GDGS,
            "国网南通供电公司",
            "企业分时用电量",
            "重点企业每小时的用电量（千瓦时）。",
            &["用电", "能耗"],
            "能源",
            Conditional,
        ),
        doc(
            "HBJ-0001",
            HBJ,
            "南通市生态环境局",
            "建设项目环境影响评价审批结果",
            "建设项目环评文件的审批结论与批复文号。",
            &["审批"],
            "生态环境",
            Unconditional,
        ),
    ];
    let themes = ["市场监管", "安全生产", "能源"];
    for i in 0..30 {
        let share_type = [Unconditional, Conditional, None][i % 3];
        docs.push(doc(
            &format!("SCJ-{i:04}"),
            if i % 2 == 0 { SCJ } else { JTJ },
            if i % 2 == 0 {
                "南通市市场监督管理局"
            } else {
                "南通市交通运输局"
            },
            &format!("企业登记信息第{i}批"),
            "企业名称、统一社会信用代码、法定代表人和注册地址。",
            &["企业"],
            themes[i % 3],
            share_type,
        ));
    }
    docs
}

fn open_with(docs: Vec<IndexDoc>) -> (TempDir, SearchIndex) {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path()).expect("open");
    index.rebuild(docs.into_iter(), 1).expect("rebuild");
    (dir, index)
}

fn search(index: &SearchIndex, q: &str) -> SearchResult {
    index
        .search(&SearchQuery {
            q: q.to_string(),
            ..SearchQuery::default()
        })
        .expect("search")
}

fn ids(result: &SearchResult) -> Vec<&str> {
    result.hits.iter().map(|h| h.id.as_str()).collect()
}

fn assert_facets_sum_to_total(result: &SearchResult) {
    let facets = &result.facets;
    for (name, counts) in [
        ("dept", &facets.dept),
        ("share_type", &facets.share_type),
        ("theme", &facets.theme),
    ] {
        let sum: u64 = counts.values().sum();
        assert_eq!(sum, result.total, "{name} facet counts {counts:?}");
    }
}

#[test]
fn search_index_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SearchIndex>();
}

#[test]
fn from_dataset_takes_field_titles_and_names() {
    let d = Dataset {
        id: "YJJ-0009".into(),
        dept: YJJ.into(),
        title: "危险化学品企业名录".into(),
        summary: String::new(),
        keywords: vec!["危化品".into()],
        theme: "安全生产".into(),
        format: Format::Table,
        share_type: ShareType::Unconditional,
        share_condition: String::new(),
        open_type: String::new(),
        update_cycle: UpdateCycle::Monthly,
        fields: vec![Field {
            name: "legal_rep_id".into(),
            title: "法定代表人身份证号".into(),
            field_type: FieldType::String,
            sensitivity: Sensitivity::Sensitive,
            masking: None,
        }],
        source: None,
        published_at: "2024-01-01T00:00:00Z".into(),
        updated_at: "2024-01-01T00:00:00Z".into(),
        version: 1,
        status: DatasetStatus::Active,
    };
    let doc = IndexDoc::from_dataset(&d, "南通市应急管理局");
    assert_eq!(doc.field_titles, vec!["法定代表人身份证号", "legal_rep_id"]);
    assert_eq!(doc.dept_name, "南通市应急管理局");
}

#[test]
fn query_parameters_tolerate_empty_values() {
    let q: SearchQuery =
        serde_json::from_str(r#"{"q":"企业","share_type":"","dept":" ","update_cycle":"daily"}"#)
            .expect("parse");
    assert_eq!(q.share_type, None);
    assert_eq!(q.dept, None);
    assert_eq!(q.update_cycle, Some(UpdateCycle::Daily));
    assert_eq!(q.limit, super::DEFAULT_LIMIT);
    let bad = serde_json::from_str::<SearchQuery>(r#"{"share_type":"public"}"#);
    assert!(bad.is_err());
}
