//! `GET /v1/catalog.ttl` and `GET /v1/catalog.jsonld`: the catalog as DCAT-AP, paged
//! (`?page=1&per_page=1000`; at most 10,000 datasets a page). Each page is a complete
//! graph (see `yiwang_catalog::dcat`); the `Link` header and the graph's Hydra view
//! name the first, previous, next and last pages. Active datasets only, by id.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use yiwang_catalog::dcat;
use yiwang_catalog::model::{Dataset, DatasetStatus, Department};

use super::{ApiError, Caller, Query};
use crate::node::Node;

const DEFAULT_PER_PAGE: usize = 1000;
const MAX_PER_PAGE: usize = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

#[derive(Clone, Copy)]
enum Syntax {
    Turtle,
    JsonLd,
}

impl Syntax {
    fn ext(self) -> &'static str {
        match self {
            Syntax::Turtle => "ttl",
            Syntax::JsonLd => "jsonld",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Syntax::Turtle => "text/turtle; charset=utf-8",
            Syntax::JsonLd => "application/ld+json",
        }
    }
}

pub async fn turtle(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Query(p): Query<PageParams>,
) -> Result<Response, ApiError> {
    export(&node, p, Syntax::Turtle).await
}

pub async fn jsonld(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Query(p): Query<PageParams>,
) -> Result<Response, ApiError> {
    export(&node, p, Syntax::JsonLd).await
}

async fn export(node: &Node, p: PageParams, syntax: Syntax) -> Result<Response, ApiError> {
    let per_page = p.per_page.unwrap_or(DEFAULT_PER_PAGE);
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("per_page must be between 1 and {MAX_PER_PAGE}"),
        ));
    }
    let number = p.page.unwrap_or(1);
    if number == 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "page numbers start at 1",
        ));
    }
    let base = format!("https://{}", node.config.advertise_addr());
    // Copy the page out of the catalog and let go of it: building and writing the graph
    // takes a while for large pages, and must not hold up the state machine.
    let (page, datasets, departments) = {
        let s = node.state.read();
        let active = || {
            s.datasets
                .values()
                .filter(|d| d.status == DatasetStatus::Active)
        };
        let total = active().count();
        let page = dcat::Page {
            number,
            per_page,
            total,
        };
        if number > page.last() {
            return Err(ApiError::not_found(format!(
                "page {number} is past the last page, {}",
                page.last()
            )));
        }
        let datasets: Vec<Dataset> = active()
            .skip((number - 1) * per_page)
            .take(per_page)
            .cloned()
            .collect();
        let departments: BTreeMap<String, Department> = datasets
            .iter()
            .filter_map(|d| s.departments.get_key_value(&d.dept))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (page, datasets, departments)
    };
    let total = page.total;
    let base2 = base.clone();
    let body = tokio::task::spawn_blocking(move || {
        let refs: Vec<&Dataset> = datasets.iter().collect();
        let graph = dcat::graph(&base2, syntax.ext(), page, &refs, &departments);
        match syntax {
            Syntax::Turtle => dcat::to_turtle(&graph),
            Syntax::JsonLd => dcat::to_jsonld(&graph).to_string(),
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("DCAT export failed: {e}")))?;

    let url = |n: usize| {
        format!(
            "<{base}/v1/catalog.{}?page={n}&per_page={per_page}>",
            syntax.ext()
        )
    };
    let mut links = vec![
        format!("{}; rel=\"first\"", url(1)),
        format!("{}; rel=\"last\"", url(page.last())),
    ];
    if number > 1 {
        links.push(format!("{}; rel=\"prev\"", url(number - 1)));
    }
    if number < page.last() {
        links.push(format!("{}; rel=\"next\"", url(number + 1)));
    }
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(syntax.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        headers.insert(header::LINK, v);
    }
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        headers.insert("x-total-count", v);
    }
    Ok(response)
}
