//! Tests of the search index against real tantivy indexes in temporary directories.

use std::collections::BTreeSet;

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
fn full_name_finds_the_hazardous_chemicals_register_first() {
    let (_dir, index) = open_with(corpus());
    let result = search(&index, "危险化学品");
    assert_eq!(ids(&result).first(), Some(&"YJJ-0001"), "{result:#?}");
    // The accident reports mention 危险化学品 in the summary only: found, ranked lower.
    assert!(ids(&result).contains(&"YJJ-0002"));
    let top = &result.hits[0];
    assert_eq!(top.dept_name, "南通市应急管理局");
    assert_eq!(top.share_type, ShareType::Unconditional);
    assert!(top.score > 0.0);
    assert!(
        top.highlight.contains("<em>危险化学品</em>"),
        "{}",
        top.highlight
    );
}

#[test]
fn matching_more_words_ranks_higher() {
    let (_dir, index) = open_with(corpus());
    let result = search(&index, "危险化学品");
    let rank = |id: &str| ids(&result).iter().position(|x| *x == id);
    // The accident reports contain 危险化学品 (all of 危险, 化学, 化学品) in the summary;
    // the truck records only share 危险, although in the title.
    assert!(rank("YJJ-0002") < rank("JTJ-0001"), "{result:#?}");

    let result = search(&index, "危险化学品企业 用电 卡口");
    assert_eq!(ids(&result).first(), Some(&"YJJ-0001"), "{result:#?}");
    assert!(ids(&result)[..4].contains(&"JTJ-0001"));
    assert!(ids(&result)[..4].contains(&"GDGS-0001"));
}

#[test]
fn abbreviation_is_expanded() {
    let (_dir, index) = open_with(corpus());
    let result = search(&index, "危化品");
    assert_eq!(ids(&result).first(), Some(&"YJJ-0001"), "{result:#?}");
    // The expansion needs the whole word: 危险货物 alone does not match 危化品.
    assert!(!ids(&result).contains(&"JTJ-0001"), "{result:#?}");

    let result = search(&index, "环评");
    assert_eq!(ids(&result).first(), Some(&"HBJ-0001"), "{result:#?}");
    let result = search(&index, "过车");
    assert_eq!(ids(&result).first(), Some(&"JTJ-0001"), "{result:#?}");
}

#[test]
fn exact_id_query_finds_the_dataset() {
    let (_dir, index) = open_with(corpus());
    let result = search(&index, "GDGS-0001");
    assert_eq!(ids(&result).first(), Some(&"GDGS-0001"), "{result:#?}");
}

#[test]
fn department_name_and_field_titles_are_searchable() {
    let (_dir, index) = open_with(corpus());
    let result = search(&index, "供电公司");
    assert_eq!(ids(&result), vec!["GDGS-0001"]);
    let result = search(&index, "credit_code");
    assert_eq!(result.total, 35);
}

#[test]
fn share_type_filter_narrows_hits_and_facets() {
    let (_dir, index) = open_with(corpus());
    let all = search(&index, "企业");
    assert!(all.facets.share_type.len() == 3, "{:?}", all.facets);
    assert_facets_sum_to_total(&all);

    let conditional = index
        .search(&SearchQuery {
            q: "企业".into(),
            share_type: Some(ShareType::Conditional),
            limit: 100,
            ..SearchQuery::default()
        })
        .expect("search");
    assert!(conditional.total > 0 && conditional.total < all.total);
    assert!(
        conditional
            .hits
            .iter()
            .all(|h| h.share_type == ShareType::Conditional)
    );
    assert_eq!(conditional.hits.len() as u64, conditional.total);
    assert_eq!(
        conditional.facets.share_type.keys().collect::<Vec<_>>(),
        vec!["conditional"]
    );
    assert_eq!(all.facets.share_type["conditional"], conditional.total);
    assert_facets_sum_to_total(&conditional);
}

#[test]
fn dept_theme_and_cycle_filters_are_exact() {
    let (_dir, index) = open_with(corpus());
    let by_dept = index
        .search(&SearchQuery {
            dept: Some(YJJ.into()),
            ..SearchQuery::default()
        })
        .expect("search");
    // No text: all of the department's datasets, ordered by id.
    assert_eq!(ids(&by_dept), vec!["YJJ-0001", "YJJ-0002"]);
    assert_eq!(by_dept.facets.dept.keys().collect::<Vec<_>>(), vec![YJJ]);
    assert!(by_dept.hits[0].highlight.starts_with("全市危险化学品"));
    assert_eq!(by_dept.hits[0].score, 0.0);

    let by_theme = index
        .search(&SearchQuery {
            theme: Some("安全生产".into()),
            limit: 100,
            ..SearchQuery::default()
        })
        .expect("search");
    assert_eq!(by_theme.facets.theme.len(), 1);
    assert_eq!(by_theme.total, 2 + 10);
    assert_facets_sum_to_total(&by_theme);

    // A theme is filtered as a whole value, not by its words.
    let partial = index
        .search(&SearchQuery {
            theme: Some("安全".into()),
            ..SearchQuery::default()
        })
        .expect("search");
    assert_eq!(partial.total, 0);

    let yearly = index
        .search(&SearchQuery {
            update_cycle: Some(UpdateCycle::Yearly),
            ..SearchQuery::default()
        })
        .expect("search");
    assert_eq!(yearly.total, 0);
    assert!(yearly.facets.dept.is_empty());
}

#[test]
fn pages_are_disjoint_and_cover_the_result() {
    let (_dir, index) = open_with(corpus());
    for q in ["企业", ""] {
        let whole = index
            .search(&SearchQuery {
                q: q.into(),
                limit: 100,
                ..SearchQuery::default()
            })
            .expect("search");
        assert_eq!(whole.hits.len() as u64, whole.total);
        assert_facets_sum_to_total(&whole);

        let mut seen: Vec<String> = Vec::new();
        let mut offset = 0;
        loop {
            let page = index
                .search(&SearchQuery {
                    q: q.into(),
                    limit: 7,
                    offset,
                    ..SearchQuery::default()
                })
                .expect("search");
            assert_eq!(page.total, whole.total, "total is the same on every page");
            if page.hits.is_empty() {
                break;
            }
            seen.extend(page.hits.iter().map(|h| h.id.clone()));
            offset += 7;
        }
        let distinct: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "pages overlap for {q:?}");
        let expected: BTreeSet<&String> = whole.hits.iter().map(|h| &h.id).collect();
        assert_eq!(distinct, expected, "pages do not cover the result for {q:?}");
    }
}

#[test]
fn limit_is_capped_and_zero_returns_counts_only() {
    let (_dir, index) = open_with(corpus());
    let capped = index
        .search(&SearchQuery {
            limit: 10_000,
            offset: usize::MAX,
            ..SearchQuery::default()
        })
        .expect("search");
    assert!(capped.hits.is_empty());
    assert_eq!(capped.total, 35);

    let counts_only = index
        .search(&SearchQuery {
            q: "企业".into(),
            limit: 0,
            ..SearchQuery::default()
        })
        .expect("search");
    assert!(counts_only.hits.is_empty());
    assert!(counts_only.total > 0);
    assert_facets_sum_to_total(&counts_only);
}

#[test]
fn upsert_replaces_and_delete_removes() {
    let (_dir, index) = open_with(corpus());
    let before = index.num_docs();

    let mut changed = corpus().remove(0);
    changed.title = "危险化学品经营许可证名录".into();
    index.upsert(&changed).expect("upsert");
    // Staged, not yet visible.
    let staged = search(&index, "YJJ-0001");
    assert_eq!(staged.hits[0].title, "危险化学品企业名录");
    index.commit(2).expect("commit");

    assert_eq!(index.num_docs(), before);
    let result = search(&index, "YJJ-0001");
    let matching: Vec<_> = result.hits.iter().filter(|h| h.id == "YJJ-0001").collect();
    assert_eq!(matching.len(), 1, "no duplicate after upsert");
    assert_eq!(matching[0].title, "危险化学品经营许可证名录");

    index.delete("YJJ-0001").expect("delete");
    index.commit(3).expect("commit");
    assert_eq!(index.num_docs(), before - 1);
    assert!(!ids(&search(&index, "危险化学品")).contains(&"YJJ-0001"));
    assert_eq!(index.applied_marker(), Some(3));
}

#[test]
fn committed_document_is_immediately_searchable() {
    let (_dir, index) = open_with(corpus());
    let new = doc(
        "MZJ-0001",
        "320600-MZJ",
        "南通市民政局",
        "最低生活保障对象名单",
        "享受城乡最低生活保障的家庭。",
        &[],
        "社会救助",
        ShareType::None,
    );
    index.upsert(&new).expect("upsert");
    index.commit(7).expect("commit");
    // Found by the full name and through the abbreviation 低保.
    assert_eq!(ids(&search(&index, "最低生活保障")).first(), Some(&"MZJ-0001"));
    assert_eq!(ids(&search(&index, "低保")).first(), Some(&"MZJ-0001"));
}

#[test]
fn reopening_keeps_documents_and_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = SearchIndex::open(dir.path()).expect("open");
        assert!(index.opened_fresh());
        assert_eq!(index.applied_marker(), None);
        assert_eq!(index.rebuild(corpus().into_iter(), 42).expect("rebuild"), 35);
    }
    let index = SearchIndex::open(dir.path()).expect("reopen");
    assert!(!index.opened_fresh());
    assert_eq!(index.applied_marker(), Some(42));
    assert_eq!(index.num_docs(), 35);
    assert_eq!(ids(&search(&index, "危险化学品")).first(), Some(&"YJJ-0001"));
}

#[test]
fn second_writer_is_refused_without_wiping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = SearchIndex::open(dir.path()).expect("open");
    first.rebuild(corpus().into_iter(), 5).expect("rebuild");
    assert!(SearchIndex::open(dir.path()).is_err());
    drop(first);
    let again = SearchIndex::open(dir.path()).expect("reopen");
    assert!(!again.opened_fresh());
    assert_eq!(again.num_docs(), 35);
}

#[test]
fn corrupted_index_is_recreated_fresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = SearchIndex::open(dir.path()).expect("open");
        index.rebuild(corpus().into_iter(), 9).expect("rebuild");
    }
    std::fs::write(dir.path().join("meta.json"), b"\x00garbage{{").expect("corrupt");
    let index = SearchIndex::open(dir.path()).expect("open corrupted");
    assert!(index.opened_fresh());
    assert_eq!(index.applied_marker(), None);
    assert_eq!(index.num_docs(), 0);
    // And it is usable.
    index.rebuild(corpus().into_iter(), 10).expect("rebuild");
    assert_eq!(index.num_docs(), 35);
}

#[test]
fn foreign_directory_is_not_wiped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let precious = dir.path().join("catalog.redb");
    std::fs::write(&precious, b"not an index").expect("write");
    assert!(SearchIndex::open(dir.path()).is_err());
    assert!(precious.exists());
}

#[test]
fn rebuild_replaces_everything() {
    let (_dir, index) = open_with(corpus());
    let only = corpus().remove(3);
    assert_eq!(index.rebuild(std::iter::once(only), 11).expect("rebuild"), 1);
    assert_eq!(index.num_docs(), 1);
    assert_eq!(index.applied_marker(), Some(11));
    assert_eq!(search(&index, "").total, 1);
}

#[test]
fn weird_queries_are_not_errors() {
    let (_dir, index) = open_with(corpus());
    let emoji = "😀".repeat(200);
    let long = "危险化学品".repeat(100);
    for q in [
        "\"", "a:b", ")(", "   ", "title:危险", "*", "AND OR NOT", "\\", "[1 TO 2]", "-企业",
        &emoji, &long,
    ] {
        let result = search(&index, q);
        assert_facets_sum_to_total(&result);
    }
    // Only spaces is an empty query: everything.
    assert_eq!(search(&index, "   ").total, 35);
    // Nothing searchable in it: nothing found.
    assert_eq!(search(&index, &emoji).total, 0);
    // Query syntax is text: `-企业` still finds 企业.
    assert!(search(&index, "-企业").total > 0);
}

#[test]
fn highlight_is_escaped_and_marks_matches() {
    let mut d = corpus().remove(3);
    d.summary = "企业<script>用电量</script>".into();
    let (_dir, index) = open_with(vec![d]);
    let hit = &search(&index, "用电量").hits[0];
    assert!(hit.highlight.contains("<em>用电量</em>"), "{}", hit.highlight);
    assert!(hit.highlight.contains("&lt;script&gt;"), "{}", hit.highlight);
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

#[test]
#[ignore]
fn zz_scratch_scale() {
    use std::time::Instant;
    let path = std::env::var("CATALOG_JSONL").expect("CATALOG_JSONL");
    let copies: usize = std::env::var("COPIES").ok().and_then(|c| c.parse().ok()).unwrap_or(1);
    let text = std::fs::read_to_string(path).expect("read");
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let docs = (0..copies).flat_map(|c| rows.iter().map(move |r| (c, r))).map(|(c, r)| {
        let open = s(r, "open_attr");
        IndexDoc {
            id: format!("{}-{c}", s(r, "id")),
            dept: s(r, "department"),
            dept_name: s(r, "department"),
            title: s(r, "title"),
            summary: s(r, "description"),
            keywords: r.get("tags").and_then(|t| t.as_array()).map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default(),
            theme: s(r, "theme"),
            share_type: if open.contains("有条件") { ShareType::Conditional } else if open.is_empty() { ShareType::None } else { ShareType::Unconditional },
            update_cycle: UpdateCycle::Monthly,
            field_titles: vec![],
            published_at: s(r, "published"),
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path()).expect("open");
    let t = Instant::now();
    let n = index.rebuild(docs, 1).expect("rebuild");
    println!("indexed {n} in {:?}", t.elapsed());
    let wait: u64 = std::env::var("MERGE_WAIT").ok().and_then(|c| c.parse().ok()).unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_secs(wait));
    index.commit(2).expect("commit");
    {
        use tantivy::collector::Count;
        use tantivy::query::AllQuery;
        let tindex = tantivy::Index::open_in_dir(dir.path()).expect("open");
        let reader = tindex.reader().expect("reader");
        let searcher = reader.searcher();
        println!("segments {}", searcher.segment_readers().len());
        let time = |name: &str, f: &dyn Fn()| {
            let mut v = Vec::new();
            for _ in 0..15 { let t = Instant::now(); f(); v.push(t.elapsed()); }
            v.sort();
            println!("{name}: median {:?}", v[7]);
        };
        time("count", &|| { searcher.search(&AllQuery, &Count).unwrap(); });
        time("facets", &|| { searcher.search(&AllQuery, &super::facets::FacetCollector).unwrap(); });
        time("topdocs by id", &|| { searcher.search(&AllQuery, &tantivy::collector::TopDocs::with_limit(20).order_by_string_fast_field("id", tantivy::Order::Asc)).unwrap(); });
    }
    for q in ["人口", "危险化学品", "危化品", "企业", "医保", "公交 线路", "学校 名单 信息", "", "信息", "统计局 2019年 人口 普查 数据 信息"] {
        let mut times = Vec::new();
        let mut total = 0;
        for _ in 0..50 {
            let t = Instant::now();
            let limit = std::env::var("LIMIT").ok().and_then(|c| c.parse().ok()).unwrap_or(20);
            let r = index.search(&SearchQuery { q: q.into(), limit, ..SearchQuery::default() }).expect("search");
            times.push(t.elapsed());
            total = r.total;
            if times.len() == 1 {
                println!("{q:?}: top {:?}", r.hits.iter().take(3).map(|h| (&h.title, h.score)).collect::<Vec<_>>());
            }
        }
        times.sort();
        println!("{q:?}: total {total} median {:?} p98 {:?} max {:?}", times[25], times[48], times[49]);
    }
}
