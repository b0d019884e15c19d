//! The CKAN Action API subset (`/api/3/action/{name}`), so that existing CKAN clients
//! (ckanapi, portal harvesters) can discover the catalog unchanged: `package_search`,
//! `package_show`, `package_list`, `organization_list`, `organization_show` and
//! `status_show`. The mapping of datasets and departments is `yiwang_catalog::ckan`.
//!
//! As in CKAN, an action takes its parameters from the query string (GET) or from a JSON
//! or form body (POST), and every answer is the envelope
//! `{"help": …, "success": true, "result": …}` or
//! `{"help": …, "success": false, "error": {"__type": …, "message": …}}` with CKAN's
//! status codes: 404 `Not Found Error`, 409 `Validation Error`, 400 `Search Query
//! Error`, 403 `Authorization Error`, 400 for an unknown action. Requests still need a client
//! certificate, like the rest of the API.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use yiwang_catalog::ckan;
use yiwang_catalog::model::DatasetStatus;
use yiwang_catalog::search::SearchQuery;

use super::{ApiError, Caller};
use crate::node::Node;

/// CKAN's default and largest `rows` of a `package_search`.
const DEFAULT_ROWS: usize = 10;
const MAX_ROWS: usize = 1000;
/// Deepest `start` a search pages to.
const MAX_START: usize = 10_000;
/// Largest page of `package_list` and `organization_list`, and most datasets
/// `organization_show` includes.
const MAX_LIST: usize = 1000;

/// A CKAN error: its `__type`, message, and for validation errors the parameter.
struct CkanError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    field: Option<&'static str>,
}

impl CkanError {
    fn validation(field: &'static str, message: impl Into<String>) -> CkanError {
        CkanError {
            status: StatusCode::CONFLICT,
            kind: "Validation Error",
            message: message.into(),
            field: Some(field),
        }
    }

    fn search_query(message: impl Into<String>) -> CkanError {
        CkanError {
            status: StatusCode::BAD_REQUEST,
            kind: "Search Query Error",
            message: message.into(),
            field: None,
        }
    }

    fn not_found(message: impl Into<String>) -> CkanError {
        CkanError {
            status: StatusCode::NOT_FOUND,
            kind: "Not Found Error",
            message: message.into(),
            field: None,
        }
    }
}

impl From<ApiError> for CkanError {
    fn from(e: ApiError) -> CkanError {
        let kind = match e.status {
            StatusCode::NOT_FOUND => "Not Found Error",
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => "Authorization Error",
            StatusCode::CONFLICT | StatusCode::BAD_REQUEST => "Validation Error",
            _ => "Internal Server Error",
        };
        CkanError {
            status: e.status,
            kind,
            message: e.message,
            field: None,
        }
    }
}

type Params = Map<String, Value>;

/// CKAN's `help` link of an action.
fn help_url(node: &Node, name: &str) -> String {
    format!(
        "https://{}/api/3/action/help_show?name={name}",
        node.config.advertise_addr()
    )
}

/// The CKAN envelope of an error.
fn error_body(help: String, e: &CkanError) -> Value {
    let mut error = json!({"__type": e.kind, "message": e.message});
    if let Some(field) = e.field {
        error[field] = json!([e.message]);
    }
    json!({"help": help, "success": false, "error": error})
}

/// Puts the errors of the layers around the actions (identity, rate limits, the read
/// barrier, the deadline), which answer in yiwang's `{"error": {"code", "message"}}`,
/// into CKAN's envelope, keeping status and headers (`Retry-After`, `x-request-id`).
pub async fn envelope_errors(
    State(node): State<Arc<Node>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let name = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let resp = next.run(req).await;
    if resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (parts.status, "error").into_response();
    };
    let original: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if original.get("success").is_some() {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    let message = original["error"]["message"]
        .as_str()
        .unwrap_or("request refused")
        .to_string();
    let e = CkanError::from(ApiError::new(parts.status, "error", message));
    let mut out = Json(error_body(help_url(&node, &name), &e)).into_response();
    *out.status_mut() = parts.status;
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_LENGTH && k != header::CONTENT_TYPE {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

pub async fn action(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let help = help_url(&node, &name);
    let result = match params(req, &node).await {
        Ok(p) => dispatch(&node, &name, &p).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(result) => {
            Json(json!({"help": help, "success": true, "result": result})).into_response()
        }
        Err(e) => (e.status, Json(error_body(help, &e))).into_response(),
    }
}

async fn dispatch(node: &Arc<Node>, name: &str, p: &Params) -> Result<Value, CkanError> {
    match name {
        "package_search" => package_search(node, p).await,
        "package_show" => package_show(node, p),
        "package_list" => package_list(node, p),
        "organization_list" => organization_list(node, p),
        "organization_show" => organization_show(node, p),
        "status_show" => Ok(json!({
            "site_title": "一网 政务数据资源目录",
            "site_url": format!("https://{}", node.config.advertise_addr()),
            "ckan_version": "2.10",
            "locale_default": "zh_Hans_CN",
            "extensions": ["yiwang"],
        })),
        other => Err(CkanError {
            status: StatusCode::BAD_REQUEST,
            kind: "Bad request - Action name not known",
            message: format!(
                "action '{other}' is not available; yiwang serves package_search, package_show, package_list, organization_list, organization_show and status_show"
            ),
            field: None,
        }),
    }
}

/// The action's parameters: the query string for GET; a JSON object or a form for POST.
async fn params(req: Request, node: &Arc<Node>) -> Result<Params, CkanError> {
    let mut out = Params::new();
    if let Some(query) = req.uri().query() {
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            out.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    if req.method() != Method::POST {
        return Ok(out);
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = super::context::body_bytes(req, node).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(out);
    }
    if is_form {
        for (k, v) in form_urlencoded::parse(&body) {
            out.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        return Ok(out);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => {
            out.extend(map);
            Ok(out)
        }
        Ok(_) => Err(CkanError::validation(
            "body",
            "the request body must be a JSON object of parameters",
        )),
        Err(e) => Err(CkanError::validation(
            "body",
            format!("the request body is not JSON: {e}"),
        )),
    }
}

fn text<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str)
}

/// A count parameter, as a JSON number or a decimal string.
fn count(p: &Params, key: &'static str, default: usize, max: usize) -> Result<usize, CkanError> {
    let value = match p.get(key) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(default),
        Some(Value::String(s)) => s.trim().parse::<usize>().ok(),
        Some(_) => None,
    };
    match value {
        Some(n) if n <= max => Ok(n),
        Some(n) => Err(CkanError::validation(
            key,
            format!("{key} must be at most {max}, not {n}"),
        )),
        None => Err(CkanError::validation(
            key,
            format!("{key} must be a non-negative integer"),
        )),
    }
}

fn flag(p: &Params, key: &'static str) -> Result<bool, CkanError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err(CkanError::validation(
                key,
                format!("{key} must be true or false"),
            )),
        },
        Some(_) => Err(CkanError::validation(
            key,
            format!("{key} must be true or false"),
        )),
    }
}

/// `facet.field`: a JSON list (CKAN's form), as a JSON array or as a string holding one.
fn facet_fields(p: &Params) -> Result<Vec<String>, CkanError> {
    let list = match p.get("facet.field") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).map_err(|_| {
            CkanError::search_query(format!("facet.field must be a JSON list, not '{s}'"))
        })?,
        Some(v) => v.clone(),
    };
    let fields: Vec<String> = serde_json::from_value(list)
        .map_err(|_| CkanError::search_query("facet.field must be a JSON list of field names"))?;
    ckan::check_facet_fields(&fields).map_err(CkanError::search_query)?;
    Ok(fields)
}

fn base_url(node: &Node) -> String {
    format!("https://{}", node.config.advertise_addr())
}

async fn package_search(node: &Arc<Node>, p: &Params) -> Result<Value, CkanError> {
    let rows = count(p, "rows", DEFAULT_ROWS, MAX_ROWS)?;
    let start = count(p, "start", 0, MAX_START)?;
    let q = text(p, "q").unwrap_or_default().trim();
    // `*:*` is CKAN's "everything".
    let q = if q == "*:*" { "" } else { q };
    if q.chars().count() > 200 {
        return Err(CkanError::search_query("q is longer than 200 characters"));
    }
    let fq = ckan::parse_fq(text(p, "fq").unwrap_or_default()).map_err(CkanError::search_query)?;
    let sort_text = text(p, "sort").unwrap_or("score desc, metadata_modified desc");
    let sort = ckan::parse_sort(sort_text).map_err(CkanError::search_query)?;
    let fields = facet_fields(p)?;
    let facet_limit = match p.get("facet.limit") {
        Some(Value::Number(n)) if n.as_i64() == Some(-1) => usize::MAX,
        Some(Value::String(s)) if s.trim() == "-1" => usize::MAX,
        _ => count(p, "facet.limit", 50, 10_000)?,
    };
    let query = SearchQuery {
        q: q.to_string(),
        dept: fq.dept,
        share_type: fq.share_type,
        theme: fq.theme,
        update_cycle: fq.update_cycle,
        limit: rows,
        offset: start,
        sort,
        synonyms: Vec::new(),
    };
    let found = super::search::run(node, query).await?;
    let base = base_url(node);
    let s = node.state.read();
    let results: Vec<Value> = found
        .hits
        .iter()
        .filter_map(|h| s.datasets.get(&h.id))
        .map(|d| ckan::package(d, s.departments.get(&d.dept), &base))
        .collect();
    let (facets, search_facets) = ckan::facets(&found.facets, &fields, facet_limit, |code| {
        s.departments.get(code).map(|d| d.name.clone())
    });
    Ok(json!({
        "count": found.total,
        "sort": sort_text,
        "results": results,
        "facets": facets,
        "search_facets": search_facets,
    }))
}

fn required<'a>(p: &'a Params, key: &'static str) -> Result<&'a str, CkanError> {
    match text(p, key).map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(CkanError::validation(key, "Missing value")),
    }
}

fn package_show(node: &Arc<Node>, p: &Params) -> Result<Value, CkanError> {
    let id = required(p, "id")?;
    let s = node.state.read();
    let d = s
        .datasets
        .get(id)
        .ok_or_else(|| CkanError::not_found(format!("Dataset '{id}' not found")))?;
    Ok(ckan::package(
        d,
        s.departments.get(&d.dept),
        &base_url(node),
    ))
}

fn package_list(node: &Arc<Node>, p: &Params) -> Result<Value, CkanError> {
    let limit = count(p, "limit", MAX_LIST, MAX_LIST)?;
    let offset = count(p, "offset", 0, usize::MAX)?;
    let s = node.state.read();
    let names: Vec<&String> = s
        .datasets
        .values()
        .filter(|d| d.status == DatasetStatus::Active)
        .map(|d| &d.id)
        .skip(offset)
        .take(limit)
        .collect();
    Ok(json!(names))
}

/// Active datasets per department.
fn package_counts(s: &yiwang_catalog::CatalogState) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for d in s.datasets.values() {
        if d.status == DatasetStatus::Active {
            *counts.entry(d.dept.as_str()).or_insert(0) += 1;
        }
    }
    counts
}

fn organization_list(node: &Arc<Node>, p: &Params) -> Result<Value, CkanError> {
    let all_fields = flag(p, "all_fields")?;
    let limit = count(p, "limit", MAX_LIST, MAX_LIST)?;
    let offset = count(p, "offset", 0, usize::MAX)?;
    let only: Option<Vec<String>> = match p.get("organizations") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        Some(Value::String(s)) => Some(
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        ),
        Some(_) => {
            return Err(CkanError::validation(
                "organizations",
                "organizations must be a list of names",
            ));
        }
    };
    let s = node.state.read();
    let counts = package_counts(&s);
    let mut orgs: Vec<&yiwang_catalog::model::Department> = s
        .departments
        .values()
        .filter(|d| only.as_ref().is_none_or(|o| o.contains(&d.code)))
        .collect();
    let sort = text(p, "sort").unwrap_or("name asc").trim().to_string();
    let count_of = |code: &str| counts.get(code).copied().unwrap_or(0);
    match sort.split_whitespace().collect::<Vec<_>>().as_slice() {
        [] | ["name"] | ["name", "asc"] => {}
        ["name", "desc"] => orgs.reverse(),
        ["title"] | ["title", "asc"] => orgs.sort_by(|a, b| a.name.cmp(&b.name)),
        ["title", "desc"] => orgs.sort_by(|a, b| b.name.cmp(&a.name)),
        ["package_count"] | ["package_count", "desc"] => {
            orgs.sort_by_key(|d| std::cmp::Reverse(count_of(&d.code)))
        }
        ["package_count", "asc"] => orgs.sort_by_key(|d| count_of(&d.code)),
        _ => {
            return Err(CkanError::validation(
                "sort",
                format!(
                    "sort '{sort}' is not supported; use name, title or package_count with asc or desc"
                ),
            ));
        }
    }
    let page = orgs.into_iter().skip(offset).take(limit);
    let list: Vec<Value> = if all_fields {
        page.map(|d| ckan::organization(d, count_of(&d.code)))
            .collect()
    } else {
        page.map(|d| json!(d.code)).collect()
    };
    Ok(Value::Array(list))
}

fn organization_show(node: &Arc<Node>, p: &Params) -> Result<Value, CkanError> {
    let id = required(p, "id")?;
    let include = flag(p, "include_datasets")?;
    let s = node.state.read();
    let d = s
        .departments
        .get(id)
        .ok_or_else(|| CkanError::not_found(format!("Organization '{id}' not found")))?;
    let count = package_counts(&s)
        .get(d.code.as_str())
        .copied()
        .unwrap_or(0);
    let mut org = ckan::organization(d, count);
    if include {
        let base = base_url(node);
        let packages: Vec<Value> = s
            .datasets
            .values()
            .filter(|x| x.dept == d.code && x.status == DatasetStatus::Active)
            .take(MAX_LIST)
            .map(|x| ckan::package(x, Some(d), &base))
            .collect();
        org["packages"] = Value::Array(packages);
    }
    Ok(org)
}
