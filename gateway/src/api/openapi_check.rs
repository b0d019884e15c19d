//! Keeps `openapi.json` (served verbatim at `GET /v1/openapi.json`) in step with the
//! router: it must parse, be OpenAPI 3.0, describe every route with its methods, offer
//! `consistency` on every GET that passes the read barrier, and every `$ref` in it must
//! resolve. `ROUTES` itself is checked against the source of `router()` in `mod.rs`, so
//! a route added there without a description here fails a test.

use std::collections::BTreeSet;

use serde_json::Value;
use yiwang_raft_store::network::{PATH_APPEND, PATH_SNAPSHOT, PATH_VOTE};

use crate::cluster::PATH_FORWARD;

const DOC: &str = include_str!("openapi.json");
/// The router's source, to check `ROUTES` against.
const ROUTER_SRC: &str = include_str!("mod.rs");
/// The read-barrier middleware's source, to find the paths it skips.
const CONTEXT_SRC: &str = include_str!("context.rs");

/// Every route `router()` in `mod.rs` registers, with its methods
/// (`routes_match_the_router` checks it against the source).
const ROUTES: &[(&str, &[&str])] = &[
    ("/v1/datasets/bulk", &["post"]),
    ("/v1/departments/bulk", &["post"]),
    (PATH_APPEND, &["post"]),
    (PATH_VOTE, &["post"]),
    (PATH_SNAPSHOT, &["post"]),
    (PATH_FORWARD, &["post"]),
    ("/raft/status", &["get"]),
    (super::audit::PATH_PEER_AUDIT, &["post"]),
    ("/v1/departments", &["get", "post"]),
    ("/v1/departments/{code}", &["get"]),
    ("/v1/datasets", &["get", "post"]),
    ("/v1/datasets/{id}", &["get", "put", "delete"]),
    ("/v1/datasets/{id}/records", &["get"]),
    ("/v1/search", &["get"]),
    ("/v1/search/synonyms", &["get", "put"]),
    ("/v1/search/rebuild", &["post"]),
    ("/v1/catalog.ttl", &["get"]),
    ("/v1/catalog.jsonld", &["get"]),
    ("/api/3/action/{name}", &["get", "post"]),
    ("/api/action/{name}", &["get", "post"]),
    ("/v1/query", &["post"]),
    ("/v1/sources/{source}/tables/{table}/columns", &["get"]),
    ("/v1/access-requests", &["get", "post"]),
    ("/v1/access-requests/{id}", &["get"]),
    ("/v1/access-requests/{id}/approve", &["post"]),
    ("/v1/access-requests/{id}/reject", &["post"]),
    ("/v1/access-requests/{id}/withdraw", &["post"]),
    ("/v1/grants", &["get"]),
    ("/v1/grants/{id}", &["get", "delete"]),
    ("/v1/roles", &["get", "post", "delete"]),
    ("/v1/whoami", &["get"]),
    ("/v1/authz/explain", &["get"]),
    ("/v1/audit", &["get"]),
    ("/v1/audit/summary", &["get"]),
    ("/v1/audit/verify", &["get"]),
    ("/v1/cluster", &["get"]),
    ("/v1/cluster/init", &["post"]),
    ("/v1/cluster/learners", &["post"]),
    ("/v1/cluster/voters", &["post"]),
    ("/v1/cluster/remove", &["post"]),
    ("/v1/cluster/backup", &["get"]),
    ("/v1/openapi.json", &["get"]),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Value {
    serde_json::from_str(DOC).expect("openapi.json is valid JSON")
}

#[test]
fn openapi_is_version_3_0() {
    let doc = doc();
    let version = doc["openapi"].as_str().expect("`openapi` is a string");
    assert!(
        version.starts_with("3.0"),
        "openapi is '{version}', expected 3.0.x"
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
}

#[test]
fn openapi_describes_every_route_and_method() {
    let doc = doc();
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    for (path, methods) in ROUTES {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("route {path} is missing from openapi.json"));
        let mut got: Vec<&str> = METHODS
            .iter()
            .copied()
            .filter(|m| item.get(*m).is_some())
            .collect();
        got.sort_unstable();
        let mut expected = methods.to_vec();
        expected.sort_unstable();
        assert_eq!(
            got, expected,
            "methods of {path} in openapi.json differ from the router"
        );
    }
    for path in paths.keys() {
        assert!(
            ROUTES.iter().any(|(p, _)| p == path),
            "openapi.json describes {path}, which the router does not serve"
        );
    }
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().expect("$ref is a string"));
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[test]
fn openapi_refs_resolve() {
    let doc = doc();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    let mut schema_refs = 0;
    for r in refs {
        let rest = r
            .strip_prefix("#/components/")
            .unwrap_or_else(|| panic!("$ref '{r}' does not point into #/components/"));
        let (kind, name) = rest
            .split_once('/')
            .unwrap_or_else(|| panic!("malformed $ref '{r}'"));
        assert!(
            doc["components"][kind].get(name).is_some(),
            "$ref '{r}' points to a missing component"
        );
        if kind == "schemas" {
            schema_refs += 1;
        }
    }
    assert!(schema_refs > 0, "no $ref points to a component schema");
    let err = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"];
    for f in ["code", "message", "request_id"] {
        assert!(err.get(f).is_some(), "Error schema lacks error.{f}");
    }
}

/// The path constants `router()` uses, by name. A new constant fails the test until it
/// is added here (and to `ROUTES`).
fn path_constant(name: &str) -> &'static str {
    match name {
        "PATH_APPEND" => PATH_APPEND,
        "PATH_VOTE" => PATH_VOTE,
        "PATH_SNAPSHOT" => PATH_SNAPSHOT,
        "PATH_FORWARD" => PATH_FORWARD,
        "PATH_PEER_AUDIT" => super::audit::PATH_PEER_AUDIT,
        other => panic!("router() uses the path constant {other}: add it to path_constant()"),
    }
}

/// The body of `fn <name>` in `src`, without line comments and whitespace.
fn fn_body(src: &str, signature: &str) -> String {
    let start = src
        .find(signature)
        .unwrap_or_else(|| panic!("source has no `{signature}`"));
    let rest = &src[start..];
    let end = rest
        .find("\n}\n")
        .unwrap_or_else(|| panic!("cannot find the end of `{signature}`"));
    rest[..end]
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Splits `s`, which starts just after an opening parenthesis, into the text up to the
/// matching `)` and the rest after it.
fn call_args(s: &str) -> (&str, &str) {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return (&s[..i], &s[i + 1..]),
            ')' => depth -= 1,
            _ => {}
        }
    }
    panic!("unbalanced parentheses in router(): {s}");
}

/// Splits `s` at `sep` where it is outside parentheses.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut depth, mut from) = (Vec::new(), 0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&s[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[from..]);
    parts
}

/// The routes `router()` registers, read from its source: `.route(<path>, <method
/// router>)` with a string literal or a path constant, and method routers chained as
/// `get(h).post(h)`.
fn router_routes() -> BTreeSet<(String, Vec<String>)> {
    let code = fn_body(ROUTER_SRC, "pub fn router(");
    for unsupported in [
        ".nest(",
        ".nest_service(",
        ".route_service(",
        ".fallback_service(",
    ] {
        assert!(
            !code.contains(unsupported),
            "router() uses {unsupported}: teach routes_match_the_router to read it"
        );
    }
    let mut routes = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find(".route(") {
        let (args, after) = call_args(&rest[i + ".route(".len()..]);
        rest = after;
        // rustfmt may leave a trailing comma.
        let args: Vec<&str> = split_top(args, ',')
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let [path, method_router] = args[..] else {
            panic!("unexpected .route(…) arguments in router(): {args:?}");
        };
        let path = match path.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
            Some(literal) => literal.to_string(),
            None => path_constant(path.rsplit("::").next().unwrap_or(path)).to_string(),
        };
        let mut methods: Vec<String> = split_top(method_router, '.')
            .into_iter()
            .map(|m| {
                let name = &m[..m.find('(').unwrap_or(m.len())];
                assert!(
                    METHODS.contains(&name),
                    "route {path}: '{name}' is not a method router this test knows"
                );
                name.to_string()
            })
            .collect();
        methods.sort_unstable();
        assert!(
            routes.insert((path.clone(), methods)),
            "route {path} twice in router()"
        );
    }
    assert!(!routes.is_empty(), "found no .route(…) in router()");
    routes
}

#[test]
fn routes_match_the_router() {
    let from_source = router_routes();
    let listed: BTreeSet<(String, Vec<String>)> = ROUTES
        .iter()
        .map(|(p, ms)| {
            let mut ms: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
            ms.sort_unstable();
            (p.to_string(), ms)
        })
        .collect();
    assert_eq!(listed.len(), ROUTES.len(), "ROUTES lists a route twice");
    let missing: Vec<_> = from_source.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&from_source).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ROUTES differs from router() in mod.rs: not in ROUTES {missing:?}; not in router() {extra:?}"
    );
}

/// Client paths the read-barrier middleware lets through without a barrier, read from
/// `context::consistency` (`path == "…"`).
fn barrier_exempt() -> BTreeSet<String> {
    let code = fn_body(CONTEXT_SRC, "pub async fn consistency(");
    let exempt: BTreeSet<String> = code
        .split("path==\"")
        .skip(1)
        .map(|s| s[..s.find('"').expect("closing quote")].to_string())
        .collect();
    assert!(
        !exempt.is_empty(),
        "found no `path == \"…\"` in context::consistency; update barrier_exempt()"
    );
    exempt
}

#[test]
fn openapi_offers_consistency_on_every_get() {
    let doc = doc();
    let consistency = serde_json::json!({"$ref": "#/components/parameters/Consistency"});
    let exempt = barrier_exempt();
    for (path, item) in doc["paths"].as_object().expect("`paths` is an object") {
        let Some(get) = item.get("get") else { continue };
        if !path.starts_with("/v1/") || exempt.contains(path) {
            continue;
        }
        let offered = [&get["parameters"], &item["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .any(|p| *p == consistency);
        assert!(
            offered,
            "GET {path} passes the read barrier but does not list the Consistency parameter"
        );
    }
    let about = doc["info"]["description"].as_str().unwrap_or_default();
    assert!(
        about.contains("consistency"),
        "info.description does not describe the consistency parameter"
    );
}
