//! The catalog in CKAN's terms, for the CKAN Action API subset (`/api/3/action/…`):
//! datasets as CKAN packages, departments as organizations, and CKAN's search
//! parameters (`fq`, `sort`, `facet.field`) translated into a [`SearchQuery`].
//!
//! The mapping:
//! - package `id` and `name` = dataset id; `title`; `notes` = summary; `owner_org` and
//!   `organization` = the providing department; `tags` = keywords; `groups` = the theme;
//!   `metadata_created`/`metadata_modified` = published/updated time; `state` =
//!   `active`, or `deleted` for a retired dataset; `extras` carry share type, share
//!   condition, open type, update cycle and format; one resource, the records endpoint.
//! - organization `id` and `name` = department code; `title` = department name.
//!
//! Supported `fq` fields: `organization`/`owner_org`, `groups`/`theme`, `share_type`,
//! `update_cycle` (`field:value` or `field:"value"`, joined by spaces or `AND`; a leading
//! `+` is accepted; `dataset_type:dataset` and `state:active` are accepted and change
//! nothing). Facet fields: `organization`, `groups` (or `theme`), `share_type`;
//! CKAN's default facets that yiwang does not count (`tags`, `res_format`,
//! `license_id`) come back empty.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::model::{Dataset, DatasetStatus, Department, ShareType, UpdateCycle};
use crate::search::{Facets, SearchSort};

/// Filters of a `package_search`, parsed from `fq`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FilterQuery {
    pub dept: Option<String>,
    pub theme: Option<String>,
    pub share_type: Option<ShareType>,
    pub update_cycle: Option<UpdateCycle>,
}

/// Parses CKAN's `fq` (a Solr filter query) for the fields yiwang filters on. The error
/// names the offending clause and the supported fields.
pub fn parse_fq(fq: &str) -> Result<FilterQuery, String> {
    let mut out = FilterQuery::default();
    for clause in split_clauses(fq)? {
        let clause = clause.strip_prefix('+').unwrap_or(&clause).to_string();
        let Some((field, value)) = clause.split_once(':') else {
            return Err(format!("fq clause '{clause}' is not field:value"));
        };
        let value = unquote(value.trim());
        if value.is_empty() {
            return Err(format!("fq clause '{clause}' has no value"));
        }
        match field.trim() {
            // What CKAN harvesters send to mean "all live datasets": always true here.
            "dataset_type" if value == "dataset" => {}
            "state" if value == "active" => {}
            "organization" | "owner_org" => out.dept = Some(value),
            "groups" | "theme" => out.theme = Some(value),
            "share_type" => {
                out.share_type = Some(ShareType::parse(&value).ok_or_else(|| {
                    format!("share_type '{value}' is not unconditional, conditional or none")
                })?)
            }
            "update_cycle" => {
                out.update_cycle = Some(
                    UpdateCycle::ALL
                        .into_iter()
                        .find(|u| u.as_str() == value)
                        .ok_or_else(|| format!("update_cycle '{value}' is not known"))?,
                )
            }
            other => {
                return Err(format!(
                    "fq field '{other}' is not supported; use organization, owner_org, groups, theme, share_type or update_cycle"
                ));
            }
        }
    }
    Ok(out)
}

/// Splits `fq` into clauses at whitespace outside quotes, dropping `AND`.
fn split_clauses(fq: &str) -> Result<Vec<String>, String> {
    let mut clauses = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in fq.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    clauses.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(format!("fq '{fq}' has an unclosed quote"));
    }
    if !current.is_empty() {
        clauses.push(current);
    }
    for clause in &clauses {
        if clause == "OR" || clause == "NOT" {
            return Err(format!(
                "fq operator {clause} is not supported; clauses are ANDed"
            ));
        }
    }
    Ok(clauses.into_iter().filter(|c| c != "AND").collect())
}

fn unquote(value: &str) -> String {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_string()
}

/// Parses CKAN's `sort`. Supported: `score desc` (the default; CKAN's default `score desc,
/// metadata_modified desc` too), `metadata_created desc|asc`, `name asc`.
pub fn parse_sort(sort: &str) -> Result<SearchSort, String> {
    let first = sort.split(',').next().unwrap_or_default();
    let words: Vec<&str> = first.split_whitespace().collect();
    match words.as_slice() {
        [] | ["score"] | ["score", "desc"] | ["relevance"] => Ok(SearchSort::Relevance),
        ["metadata_created", "desc"] => Ok(SearchSort::Newest),
        ["metadata_created"] | ["metadata_created", "asc"] => Ok(SearchSort::Oldest),
        ["name"] | ["name", "asc"] | ["id"] | ["id", "asc"] => Ok(SearchSort::Id),
        _ => Err(format!(
            "sort '{sort}' is not supported; use 'score desc', 'metadata_created desc', 'metadata_created asc' or 'name asc'"
        )),
    }
}

/// CKAN facet fields yiwang does not count; requesting them gives an empty facet.
const UNCOUNTED_FACETS: [&str; 3] = ["tags", "res_format", "license_id"];

/// Checks the requested facet fields.
pub fn check_facet_fields(fields: &[String]) -> Result<(), String> {
    for f in fields {
        if !matches!(
            f.as_str(),
            "organization" | "groups" | "theme" | "share_type"
        ) && !UNCOUNTED_FACETS.contains(&f.as_str())
        {
            return Err(format!(
                "facet.field '{f}' is not supported; use organization, groups, share_type (tags, res_format and license_id are empty)"
            ));
        }
    }
    Ok(())
}

/// `facets` and `search_facets` of a `package_search` result for the requested fields,
/// each with at most `limit` values, most frequent first. `dept_name` gives an
/// organization's display name.
pub fn facets(
    counts: &Facets,
    fields: &[String],
    limit: usize,
    dept_name: impl Fn(&str) -> Option<String>,
) -> (Value, Value) {
    let mut facets = serde_json::Map::new();
    let mut search_facets = serde_json::Map::new();
    let empty = BTreeMap::new();
    for field in fields {
        let source = match field.as_str() {
            "organization" => &counts.dept,
            "groups" | "theme" => &counts.theme,
            "share_type" => &counts.share_type,
            _ => &empty,
        };
        let mut items: Vec<(&String, &u64)> = source.iter().collect();
        items.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        items.truncate(limit);
        facets.insert(
            field.clone(),
            Value::Object(
                items
                    .iter()
                    .map(|(k, v)| ((*k).clone(), json!(v)))
                    .collect(),
            ),
        );
        let items: Vec<Value> = items
            .iter()
            .map(|(name, count)| {
                let display = if field == "organization" {
                    dept_name(name).unwrap_or_else(|| (*name).clone())
                } else {
                    (*name).clone()
                };
                json!({"name": name, "display_name": display, "count": count})
            })
            .collect();
        search_facets.insert(field.clone(), json!({"title": field, "items": items}));
    }
    (Value::Object(facets), Value::Object(search_facets))
}

/// A department as a CKAN organization.
pub fn organization(d: &Department, package_count: usize) -> Value {
    json!({
        "id": d.code,
        "name": d.code,
        "title": d.name,
        "display_name": d.name,
        "description": format!("{}（{}）", d.name, d.region),
        "type": "organization",
        "is_organization": true,
        "state": "active",
        "approval_status": "approved",
        "image_url": "",
        "created": d.created_at,
        "package_count": package_count,
        "extras": [{"key": "region", "value": d.region}],
    })
}

/// A dataset as a CKAN package. `dept` is its department (absent only in a damaged
/// catalog); `base_url` is this API's `https://host:port`, for the resource URL.
pub fn package(d: &Dataset, dept: Option<&Department>, base_url: &str) -> Value {
    let tags: Vec<Value> = d
        .keywords
        .iter()
        .map(|k| json!({"name": k, "display_name": k, "state": "active", "vocabulary_id": null}))
        .collect();
    let groups: Vec<Value> = if d.theme.is_empty() {
        Vec::new()
    } else {
        vec![json!({"name": d.theme, "title": d.theme, "display_name": d.theme})]
    };
    let organization = dept.map(|o| {
        json!({
            "id": o.code,
            "name": o.code,
            "title": o.name,
            "type": "organization",
            "is_organization": true,
            "state": "active",
            "description": "",
            "image_url": "",
            "created": o.created_at,
        })
    });
    let resource = json!({
        "id": format!("{}-records", d.id),
        "package_id": d.id,
        "name": "records",
        "description": "记录接口：需客户端证书，按共享类型和授权返回字段与行",
        "url": format!("{base_url}/v1/datasets/{}/records", d.id),
        "format": "JSON",
        "mimetype": "application/json",
        "state": "active",
        "position": 0,
        "created": d.published_at,
        "last_modified": d.updated_at,
    });
    let extras: Vec<Value> = [
        ("share_type", d.share_type.as_str().to_string()),
        ("share_condition", d.share_condition.clone()),
        ("open_type", d.open_type.clone()),
        ("update_cycle", d.update_cycle.as_str().to_string()),
        (
            "format",
            serde_json::to_value(d.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| json!({"key": k, "value": v}))
    .collect();
    json!({
        "id": d.id,
        "name": d.id,
        "title": d.title,
        "notes": d.summary,
        "type": "dataset",
        "state": if d.status == DatasetStatus::Active { "active" } else { "deleted" },
        "private": false,
        "owner_org": d.dept,
        "organization": organization,
        "author": dept.map(|o| o.name.clone()),
        "maintainer": dept.map(|o| o.name.clone()),
        "metadata_created": d.published_at,
        "metadata_modified": d.updated_at,
        "version": d.version.to_string(),
        "license_id": null,
        "url": format!("{base_url}/v1/datasets/{}", d.id),
        "tags": tags,
        "num_tags": d.keywords.len(),
        "groups": groups,
        "extras": extras,
        "resources": [resource],
        "num_resources": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fq_fields_and_quotes() {
        let f =
            parse_fq(r#"+organization:320600-YJJ AND groups:"安全 生产" share_type:conditional"#)
                .unwrap();
        assert_eq!(f.dept.as_deref(), Some("320600-YJJ"));
        assert_eq!(f.theme.as_deref(), Some("安全 生产"));
        assert_eq!(f.share_type, Some(ShareType::Conditional));
        assert_eq!(parse_fq("").unwrap(), FilterQuery::default());
        assert_eq!(
            parse_fq("+dataset_type:dataset +state:active").unwrap(),
            FilterQuery::default()
        );
        assert!(parse_fq("state:deleted").unwrap_err().contains("state"));
    }

    #[test]
    fn fq_errors_name_the_problem() {
        assert!(
            parse_fq("res_format:CSV")
                .unwrap_err()
                .contains("res_format")
        );
        assert!(parse_fq("share_type:open").unwrap_err().contains("open"));
        assert!(
            parse_fq("organization:a OR organization:b")
                .unwrap_err()
                .contains("OR")
        );
        assert!(parse_fq(r#"groups:"x"#).unwrap_err().contains("quote"));
        assert!(
            parse_fq("organization")
                .unwrap_err()
                .contains("field:value")
        );
    }

    #[test]
    fn sorts() {
        assert_eq!(
            parse_sort("score desc, metadata_modified desc").unwrap(),
            SearchSort::Relevance
        );
        assert_eq!(
            parse_sort("metadata_created desc").unwrap(),
            SearchSort::Newest
        );
        assert_eq!(parse_sort("name asc").unwrap(), SearchSort::Id);
        assert!(
            parse_sort("title_string asc")
                .unwrap_err()
                .contains("title_string")
        );
    }

    #[test]
    fn facets_are_ordered_by_count_and_limited() {
        let mut counts = Facets::default();
        counts.dept.insert("A".into(), 1);
        counts.dept.insert("B".into(), 5);
        counts.dept.insert("C".into(), 3);
        let fields = vec!["organization".to_string(), "tags".to_string()];
        let (f, sf) = facets(&counts, &fields, 2, |c| Some(format!("{c}局")));
        assert_eq!(f["organization"], json!({"B": 5, "C": 3}));
        assert_eq!(f["tags"], json!({}));
        assert_eq!(sf["organization"]["items"][0]["display_name"], "B局");
        assert!(check_facet_fields(&["license_id".into()]).is_ok());
        assert!(check_facet_fields(&["maintainer".into()]).is_err());
    }
}
