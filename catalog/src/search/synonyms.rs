//! Query-time expansion of abbreviations and synonyms common in government catalogs.
//!
//! jieba keeps an abbreviation such as 危化品 as one word, while the full form 危险化学品
//! is segmented into 危险 / 化学 / 化学品, so the two never share a term. Rather than
//! teaching the index, the query is widened: when the user's text contains one member of
//! a group below, the other members are added as optional, lower-boosted clauses (see
//! `query.rs`). Keeping this at query time means the table can change without
//! re-indexing.
//!
//! Admins extend the built-in [`GROUPS`] with their own groups (`PUT
//! /v1/search/synonyms`); those live in the replicated catalog and are passed to every
//! search, so a change takes effect on every node as soon as it is applied, without a
//! restart.
//!
//! Deliberately absent: 企业 ↔ 公司. 企业 is in a large share of all dataset titles and
//! 公司 is in department names (供电公司), so either direction would flood results with
//! datasets that merely come from a company-named department.

/// Groups of interchangeable terms. Every member of a group expands to all the others.
const GROUPS: &[&[&str]] = &[
    // Hazardous goods and safety.
    &["危化品", "危险化学品"],
    &["危货", "危险货物"],
    &["安监", "安全生产监督管理"],
    // Transport.
    &["车辆", "车"],
    &["卡口", "过车"],
    &["网约车", "网络预约出租汽车"],
    // Power.
    &["用电", "电量"],
    // Social security, health, housing.
    &["医保", "医疗保险"],
    &["社保", "社会保险"],
    &["公积金", "住房公积金"],
    &["低保", "最低生活保障"],
    &["新农合", "新型农村合作医疗"],
    &["新农保", "新型农村社会养老保险"],
    &["五保户", "五保供养", "特困供养"],
    &["失业金", "失业保险金"],
    &["公租房", "公共租赁住房"],
    // Services and places, as clerks and citizens name them.
    &["养老院", "敬老院", "养老机构", "养老服务机构"],
    &["药房", "药店", "药品零售"],
    &["菜市场", "农贸市场", "集贸市场"],
    &["公厕", "公共厕所", "公共卫生间"],
    &["宾馆", "旅馆", "酒店"],
    &["驾校", "驾驶员培训"],
    &["网吧", "上网服务营业场所"],
    &["出租车", "出租汽车", "巡游车"],
    &["律所", "律师事务所"],
    &["个体户", "个体工商户"],
    &["非遗", "非物质文化遗产"],
    &["规上企业", "规模以上企业"],
    // Market regulation: the former 工商 bureaus are now 市场监督管理.
    &["营业执照", "工商登记"],
    &["市监", "市场监管", "市场监督管理"],
    // Environment.
    &["环评", "环境影响评价"],
    // Department short names used in everyday speech.
    &["人社", "人力资源和社会保障"],
    &["住建", "住房和城乡建设"],
    &["卫健", "卫生健康"],
    &["发改", "发展和改革"],
    &["城管", "城市管理"],
];

/// The expansions for a query: members of every group (built-in, then `extra`) that the
/// query mentions, other than the ones it already contains.
///
/// A member "is mentioned" when it occurs in the query text; a one-character member (车)
/// only when it is a whole query term, or else every word containing the character would
/// trigger it. `query_terms` are the query's segmented terms.
pub(super) fn expansions(
    query_text: &str,
    query_terms: &[String],
    extra: &[Vec<String>],
) -> Vec<String> {
    // Query terms are lowercased by the analyzer; compare Latin members the same way.
    let text = query_text.to_lowercase();
    let mentions = |member: &str| {
        let member = member.to_lowercase();
        if member.chars().count() > 1 {
            text.contains(&member)
        } else {
            query_terms.contains(&member)
        }
    };
    let builtin = GROUPS
        .iter()
        .map(|g| g.iter().map(|m| m.to_string()).collect::<Vec<String>>());
    let mut out: Vec<String> = Vec::new();
    for group in builtin.chain(extra.iter().cloned()) {
        if !group.iter().any(|m| mentions(m)) {
            continue;
        }
        for member in group {
            if !mentions(&member) && !out.contains(&member) {
                out.push(member);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::expansions;

    fn terms(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn expands_both_directions() {
        assert_eq!(
            expansions("危化品", &terms(&["危化品"]), &[]),
            vec!["危险化学品"]
        );
        assert_eq!(
            expansions(
                "危险化学品企业",
                &terms(&["危险", "化学", "化学品", "企业"]),
                &[]
            ),
            vec!["危化品"]
        );
    }

    #[test]
    fn one_character_member_needs_a_whole_term() {
        assert!(expansions("火车站", &terms(&["火车", "火车站"]), &[]).is_empty());
        assert_eq!(expansions("车", &terms(&["车"]), &[]), vec!["车辆"]);
    }

    #[test]
    fn contained_forms_are_not_repeated() {
        // 住房公积金 contains 公积金: nothing to add.
        assert!(expansions("住房公积金", &terms(&["住房", "公积金"]), &[]).is_empty());
    }

    #[test]
    fn admin_groups_extend_the_builtin_ones() {
        let extra = vec![terms(&["一码通", "健康码"])];
        assert_eq!(
            expansions("健康码", &terms(&["健康码"]), &extra),
            vec!["一码通"]
        );
        assert!(expansions("健康码", &terms(&["健康码"]), &[]).is_empty());
        // Latin members match whatever the case.
        let extra = vec![terms(&["ETC", "电子不停车收费"])];
        assert_eq!(
            expansions("etc 办理", &terms(&["etc", "办理"]), &extra),
            vec!["电子不停车收费"]
        );
    }

    #[test]
    fn no_expansion_for_company() {
        assert!(expansions("企业", &terms(&["企业"]), &[]).is_empty());
    }
}
