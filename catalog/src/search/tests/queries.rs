//! What searches return: ranking, expansion, filters, facets, paging, highlights.

use std::collections::BTreeSet;

use super::{YJJ, assert_facets_sum_to_total, corpus, ids, open_with, search};
use crate::model::{ShareType, UpdateCycle};
use crate::search::SearchQuery;

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
        assert_eq!(
            distinct, expected,
            "pages do not cover the result for {q:?}"
        );
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
fn weird_queries_are_not_errors() {
    let (_dir, index) = open_with(corpus());
    let emoji = "😀".repeat(200);
    let long = "危险化学品".repeat(100);
    for q in [
        "\"",
        "a:b",
        ")(",
        "   ",
        "title:危险",
        "*",
        "AND OR NOT",
        "\\",
        "[1 TO 2]",
        "-企业",
        &emoji,
        &long,
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
    assert!(
        hit.highlight.contains("<em>用电量</em>"),
        "{}",
        hit.highlight
    );
    assert!(
        hit.highlight.contains("&lt;script&gt;"),
        "{}",
        hit.highlight
    );
}

/// A few entries of the real kind for Latin-letter input and typos.
fn welfare_corpus() -> Vec<crate::search::IndexDoc> {
    let mut docs = corpus();
    let mut add = |id: &str, title: &str, published: &str| {
        let mut d = corpus()[0].clone();
        d.id = id.to_string();
        d.title = title.to_string();
        d.summary = String::new();
        d.keywords = Vec::new();
        d.theme = "社会保障".to_string();
        d.field_titles = Vec::new();
        d.published_at = published.to_string();
        docs.push(d);
    };
    add("GJJ-0001", "住房公积金缴存单位名单", "2024-03-01T00:00:00Z");
    add("MZJ-0001", "最低生活保障对象名单", "2024-05-01T00:00:00Z");
    add("YB-0001", "医疗保险定点医疗机构", "2023-01-01T00:00:00Z");
    docs
}

#[test]
fn pinyin_and_initials_find_the_chinese_title() {
    let (_dir, index) = open_with(welfare_corpus());
    for q in ["gongjijin", "gong ji jin", "GJJ", "zhufanggongjijin"] {
        let result = search(&index, q);
        assert_eq!(ids(&result).first(), Some(&"GJJ-0001"), "{q}: {result:#?}");
    }
    let result = search(&index, "dbdx");
    assert!(
        result.hits.is_empty(),
        "no title has these initials: {result:#?}"
    );
    let result = search(&index, "yiliaobaoxian");
    assert_eq!(ids(&result).first(), Some(&"YB-0001"), "{result:#?}");
}

#[test]
fn a_mistyped_character_still_finds_the_title() {
    let (_dir, index) = open_with(welfare_corpus());
    // A homophone, as a pinyin input method produces it.
    let result = search(&index, "公积斤");
    assert_eq!(ids(&result).first(), Some(&"GJJ-0001"), "{result:#?}");
    // A wrong character that sounds different: the other character pairs match.
    let result = search(&index, "最低生活保账");
    assert_eq!(ids(&result).first(), Some(&"MZJ-0001"), "{result:#?}");
    // The typo tolerance does not outrank real words: the correct title stays first
    // and an unrelated query finds nothing.
    let result = search(&index, "住房公积金");
    assert_eq!(ids(&result).first(), Some(&"GJJ-0001"), "{result:#?}");
    assert!(search(&index, "航天飞机").hits.is_empty());
}

#[test]
fn sort_orders_by_publication_or_id() {
    let (_dir, index) = open_with(welfare_corpus());
    let sorted = |sort| {
        index
            .search(&SearchQuery {
                q: "名单 保险".into(),
                sort,
                ..SearchQuery::default()
            })
            .expect("search")
    };
    let newest = sorted(crate::search::SearchSort::Newest);
    assert_eq!(ids(&newest), ["MZJ-0001", "GJJ-0001", "YB-0001"]);
    let oldest = sorted(crate::search::SearchSort::Oldest);
    assert_eq!(ids(&oldest), ["YB-0001", "GJJ-0001", "MZJ-0001"]);
    let by_id = sorted(crate::search::SearchSort::Id);
    assert_eq!(ids(&by_id), ["GJJ-0001", "MZJ-0001", "YB-0001"]);
}

#[test]
fn admin_synonyms_apply_to_the_next_search() {
    let (_dir, index) = open_with(welfare_corpus());
    let with = |synonyms: Vec<Vec<String>>| {
        index
            .search(&SearchQuery {
                q: "兜底".into(),
                synonyms,
                ..SearchQuery::default()
            })
            .expect("search")
    };
    assert!(!ids(&with(vec![])).contains(&"MZJ-0001"));
    let groups = vec![vec!["兜底".to_string(), "最低生活保障".to_string()]];
    assert_eq!(ids(&with(groups)).first(), Some(&"MZJ-0001"));
}
