//! Keeps `openapi.json` (served verbatim at `GET /v1/openapi.json`) in step with the
//! router: it must parse, be OpenAPI 3.0, describe every route with its methods, and
//! every `$ref` in it must resolve.

use serde_json::Value;
use yiwang_raft_store::network::{PATH_APPEND, PATH_SNAPSHOT, PATH_VOTE};

const DOC: &str = include_str!("openapi.json");

/// Every route `router()` in `mod.rs` registers, with its methods. Keep in step with it.
const ROUTES: &[(&str, &[&str])] = &[
    ("/v1/datasets/bulk", &["post"]),
    ("/v1/departments/bulk", &["post"]),
    (PATH_APPEND, &["post"]),
    (PATH_VOTE, &["post"]),
    (PATH_SNAPSHOT, &["post"]),
    ("/v1/departments", &["get", "post"]),
    ("/v1/departments/{code}", &["get"]),
    ("/v1/datasets", &["get", "post"]),
    ("/v1/datasets/{id}", &["get", "put", "delete"]),
    ("/v1/datasets/{id}/records", &["get"]),
    ("/v1/search", &["get"]),
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
    ("/v1/audit/verify", &["get"]),
    ("/v1/cluster", &["get"]),
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
