//! HTTP-JSON API sources: paged JSON over HTTPS.
//!
//! A table is a path segment: the scan GETs `<base_url>/<table>?limit=<page_size>` and
//! follows the page's `next` (field name configurable) until it is null or absent.
//! `next` is either a URL (absolute, on the same scheme, host and port as `base_url`,
//! or a path starting with `/`) or an opaque cursor, sent back as
//! `<base_url>/<table>?limit=<n>&cursor=<next>`. The rows of a page are the JSON
//! objects in its `items` field (name configurable; a page that is a bare array is a
//! single last page). Object members are matched to fields by name and converted by
//! the field's type (dates and times from their text).
//!
//! Only HTTPS: the server's certificate must chain to `ca_file` (PEM; point it at the
//! system bundle for a public CA), and `cert`/`key` give a client certificate for
//! mutual TLS. The client uses rustls with the ring provider and keeps connections
//! per source. Each page must arrive within the time limit; an unreachable API is
//! [`AdapterError::Unavailable`], an answer other than 2xx is [`AdapterError::Source`]
//! naming the status.
//!
//! Pushdown: projection (only the fields asked for are converted) and the limit
//! (paging stops once enough rows have come, and a page asks for no more than are
//! still needed). Filters are applied by DataFusion.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use futures::future::BoxFuture;
use reqwest::Url;
use serde_json::Value as Json;
use yiwang_catalog::model::{Field, FieldType};

use crate::arrow::{BatchBuilder, Cell, arrow_schema, parse_date, parse_datetime};
use crate::error::AdapterError;
use crate::exec::{BatchSender, ScanContext, SourceExec, spawn_scan};
use crate::provider::{check_fields, checked_table};
use crate::records;
use crate::source::{ReadRequest, ReadResult, Source};
use crate::tls::client_config;

/// How long connecting (TCP and TLS) may take before the API counts as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest page body accepted.
const MAX_PAGE_BYTES: usize = 64 << 20;
/// Most pages one scan follows; a guard against an API whose `next` never ends.
const MAX_PAGES: usize = 100_000;

/// The configuration of an HTTP-JSON source, paths already resolved.
#[derive(Debug, Clone)]
pub struct HttpJsonOptions {
    pub base_url: String,
    pub ca_file: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub page_size: usize,
    pub timeout_ms: u64,
    pub items_field: String,
    pub next_field: String,
}

/// A paged JSON API.
pub struct HttpJsonSource {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    /// Without a trailing `/`.
    base: Url,
    client: reqwest::Client,
    page_size: usize,
    timeout_ms: u64,
    items_field: String,
    next_field: String,
}

impl HttpJsonSource {
    /// Reads the CA (and client certificate) now: a bad TLS setup is a configuration
    /// error at startup. Nothing is requested until the first scan.
    pub fn new(id: impl Into<String>, options: HttpJsonOptions) -> Result<Self, AdapterError> {
        let id = id.into();
        let config_error = |what: String| AdapterError::Config(format!("source '{id}': {what}"));
        let base = Url::parse(options.base_url.trim_end_matches('/'))
            .map_err(|_| config_error("base_url is not a URL".to_string()))?;
        if base.scheme() != "https" || base.host().is_none() {
            return Err(config_error("base_url must be an https:// URL".to_string()));
        }
        if !base.username().is_empty() || base.password().is_some() || base.query().is_some() {
            return Err(config_error(
                "base_url must not hold credentials or a query".to_string(),
            ));
        }
        let Some(ca_file) = &options.ca_file else {
            return Err(config_error(
                "ca_file is required (the CA that signs the API's certificate)".to_string(),
            ));
        };
        let tls = client_config(ca_file, options.cert.as_deref(), options.key.as_deref())
            .map_err(config_error)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| config_error(format!("cannot build the HTTPS client: {e}")))?;
        if options.page_size == 0 || options.timeout_ms == 0 {
            return Err(config_error(
                "page_size and timeout_ms must be at least 1".to_string(),
            ));
        }
        Ok(HttpJsonSource {
            inner: Arc::new(Inner {
                id,
                base,
                client,
                page_size: options.page_size,
                timeout_ms: options.timeout_ms,
                items_field: options.items_field,
                next_field: options.next_field,
            }),
        })
    }
}

/// Adds headers to every request to an HTTP-JSON source (set once by the gateway).
static TRACE_HEADERS: OnceLock<fn(&mut reqwest::header::HeaderMap)> = OnceLock::new();

/// Lets the process add W3C trace context (`traceparent`) to the requests it makes to
/// HTTP-JSON sources, so that a source's own traces join the caller's. The first call
/// wins.
pub fn set_trace_headers(add: fn(&mut reqwest::header::HeaderMap)) {
    let _ = TRACE_HEADERS.set(add);
}

impl Source for HttpJsonSource {
    fn kind(&self) -> &'static str {
        "http_json"
    }

    fn read(&self, req: ReadRequest) -> BoxFuture<'static, Result<ReadResult, AdapterError>> {
        records::read_with(self, &self.inner.id, req)
    }

    /// The members of the first page's items, in order of first appearance, typed by
    /// their values (text that is a date or a time counts as one).
    fn list_columns(
        &self,
        table: &str,
    ) -> BoxFuture<'static, Result<Vec<(String, FieldType)>, AdapterError>> {
        let inner = Arc::clone(&self.inner);
        let table = table.to_string();
        Box::pin(async move {
            checked_table(&table, '"')?;
            let url = inner.page_url(&table, inner.page_size, None);
            let (items, _) = inner.page(&url).await?;
            let mut columns: Vec<(String, Vec<&Json>)> = Vec::new();
            for item in &items {
                let Json::Object(members) = item else {
                    continue;
                };
                for (name, value) in members {
                    match columns.iter_mut().find(|(n, _)| n == name) {
                        Some((_, values)) => values.push(value),
                        None => columns.push((name.clone(), vec![value])),
                    }
                }
            }
            Ok(columns
                .into_iter()
                .map(|(name, values)| (name, infer(&values)))
                .collect())
        })
    }

    fn table_provider(
        &self,
        table: &str,
        fields: &[Field],
    ) -> Result<Arc<dyn TableProvider>, AdapterError> {
        checked_table(table, '"')?;
        check_fields(fields)?;
        Ok(Arc::new(HttpJsonTable {
            inner: Arc::clone(&self.inner),
            table: table.to_string(),
            fields: fields.to_vec(),
            schema: arrow_schema(fields),
        }))
    }
}

fn infer(values: &[&Json]) -> FieldType {
    let present: Vec<&Json> = values.iter().copied().filter(|v| !v.is_null()).collect();
    let all = |f: &dyn Fn(&Json) -> bool| !present.is_empty() && present.iter().all(|v| f(v));
    let text = |v: &Json| v.as_str().map(str::to_string);
    if all(&|v| v.is_boolean()) {
        FieldType::Boolean
    } else if all(&|v| v.is_i64()) {
        FieldType::Integer
    } else if all(&|v| v.is_number()) {
        FieldType::Float
    } else if all(&|v| text(v).is_some_and(|s| parse_date(&s).is_some())) {
        FieldType::Date
    } else if all(&|v| text(v).is_some_and(|s| s.len() > 10 && parse_datetime(&s).is_some())) {
        FieldType::Datetime
    } else {
        FieldType::String
    }
}

impl Inner {
    fn page_url(&self, table: &str, limit: usize, cursor: Option<&str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(table);
        }
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        if let Some(cursor) = cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        url
    }

    /// The URL of the page after the one whose `next` is `next`.
    fn next_url(&self, table: &str, next: &Json, limit: usize) -> Result<Url, AdapterError> {
        let cursor = match next {
            Json::String(s) => s.clone(),
            Json::Number(n) => n.to_string(),
            _ => return Err(self.failed(format!("'{}' is not a URL or cursor", self.next_field))),
        };
        if cursor.starts_with("https://")
            || cursor.starts_with("http://")
            || cursor.starts_with('/')
        {
            let url = self
                .base
                .join(&cursor)
                .map_err(|_| self.failed(format!("'{}' is not a URL", self.next_field)))?;
            // The next page may not send the client (and its certificate) elsewhere.
            if url.origin() != self.base.origin() {
                return Err(self.failed("the next page is on another host".to_string()));
            }
            return Ok(url);
        }
        Ok(self.page_url(table, limit, Some(&cursor)))
    }

    /// One page: its items and its `next`.
    async fn page(&self, url: &Url) -> Result<(Vec<Json>, Json), AdapterError> {
        let timeout = Duration::from_millis(self.timeout_ms);
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(add) = TRACE_HEADERS.get() {
            add(&mut headers);
        }
        let mut response = self
            .client
            .get(url.clone())
            .headers(headers)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.request_failed(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.failed(format!("the API answered {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.request_failed(e))? {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(self.failed(format!("a page is larger than {MAX_PAGE_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let page: Json = serde_json::from_slice(&body)
            .map_err(|e| self.failed(format!("a page is not JSON: {e}")))?;
        match page {
            Json::Array(items) => Ok((items, Json::Null)),
            Json::Object(mut members) => {
                let next = members.remove(&self.next_field).unwrap_or(Json::Null);
                match members.remove(&self.items_field) {
                    Some(Json::Array(items)) => Ok((items, next)),
                    _ => Err(self.failed(format!("a page has no '{}' array", self.items_field))),
                }
            }
            _ => Err(self.failed("a page is neither an object nor an array".to_string())),
        }
    }

    /// Pages through `table` until `limit` rows (if any) have been produced.
    async fn scan(
        &self,
        table: &str,
        fields: &[Field],
        schema: SchemaRef,
        limit: Option<usize>,
        ctx: ScanContext,
        tx: BatchSender,
    ) -> Result<(), AdapterError> {
        let page_limit = |produced: usize| {
            limit.map_or(self.page_size, |l| self.page_size.min(l - produced).max(1))
        };
        let mut url = self.page_url(table, page_limit(0), None);
        let mut builder = BatchBuilder::new(&self.id, fields, schema);
        let mut produced = 0;
        for _ in 0..MAX_PAGES {
            let (items, next) = self.page(&url).await?;
            for item in &items {
                if limit.is_some_and(|l| produced >= l) {
                    break;
                }
                let Json::Object(members) = item else {
                    return Err(self.failed("an item is not a JSON object".to_string()));
                };
                for (i, field) in fields.iter().enumerate() {
                    let value = members.get(&field.name).unwrap_or(&Json::Null);
                    push(&mut builder, &self.id, i, field, value)?;
                }
                builder.end_row();
                produced += 1;
                ctx.rows_read.add(1);
                if builder.len() >= ctx.batch_size && !tx.send(builder.finish()?).await {
                    return Ok(());
                }
            }
            if next.is_null() || limit.is_some_and(|l| produced >= l) {
                if !builder.is_empty() {
                    tx.send(builder.finish()?).await;
                }
                return Ok(());
            }
            let next_url = self.next_url(table, &next, page_limit(produced))?;
            if next_url == url {
                return Err(self.failed("the next page is the same page".to_string()));
            }
            url = next_url;
        }
        Err(self.failed(format!("more than {MAX_PAGES} pages")))
    }

    /// reqwest's messages name the URL; ours give the cause only.
    fn request_failed(&self, e: reqwest::Error) -> AdapterError {
        let e = e.without_url();
        if e.is_timeout() {
            return AdapterError::Timeout {
                source_id: self.id.clone(),
                ms: self.timeout_ms,
            };
        }
        let mut cause: &dyn std::error::Error = &e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        let message = format!("cannot reach the API: {cause}");
        tracing::warn!(source = %self.id, error = %message, "http_json source unavailable");
        AdapterError::Unavailable {
            source_id: self.id.clone(),
            message,
        }
    }

    fn failed(&self, message: String) -> AdapterError {
        AdapterError::Source {
            source_id: self.id.clone(),
            message,
        }
    }
}

fn push(
    builder: &mut BatchBuilder,
    source_id: &str,
    i: usize,
    field: &Field,
    value: &Json,
) -> Result<(), AdapterError> {
    let text;
    let cell = match value {
        Json::Null => Cell::Null,
        Json::Bool(b) => Cell::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(n) => Cell::Int(n),
            None => Cell::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Cell::Text(s),
        // Nested values are kept as their JSON text in string fields.
        nested if field.field_type == FieldType::String => {
            text = nested.to_string();
            Cell::Text(&text)
        }
        _ => {
            return Err(AdapterError::Source {
                source_id: source_id.to_string(),
                message: format!(
                    "member '{}' holds an array or object that is not a valid {}",
                    field.name,
                    field.field_type.as_str()
                ),
            });
        }
    };
    builder.push(i, cell)
}

/// One table of an HTTP-JSON source.
struct HttpJsonTable {
    inner: Arc<Inner>,
    table: String,
    fields: Vec<Field>,
    schema: SchemaRef,
}

impl fmt::Debug for HttpJsonTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpJsonTable")
            .field("source", &self.inner.id)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for HttpJsonTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let fields: Vec<Field> = match projection {
            Some(p) => p.iter().map(|&i| self.fields[i].clone()).collect(),
            None => self.fields.clone(),
        };
        let schema = arrow_schema(&fields);
        let first = self.inner.page_url(
            &self.table,
            limit.map_or(self.inner.page_size, |l| self.inner.page_size.min(l).max(1)),
            None,
        );
        let request = match limit {
            Some(l) => format!("GET {} then next, up to {l} rows", path_and_query(&first)),
            None => format!("GET {} then next", path_and_query(&first)),
        };
        let inner = Arc::clone(&self.inner);
        let table = self.table.clone();
        let exec_schema = Arc::clone(&schema);
        let exec = SourceExec::new(
            "HttpJsonExec",
            &self.inner.id,
            request,
            schema,
            move |ctx| {
                let inner = Arc::clone(&inner);
                let table = table.clone();
                let fields = fields.clone();
                let schema = Arc::clone(&exec_schema);
                spawn_scan(&inner.id.clone(), move |tx| async move {
                    inner.scan(&table, &fields, schema, limit, ctx, tx).await
                })
            },
        );
        Ok(Arc::new(exec))
    }
}

/// `Url::path` and `Url::query` together, for display.
fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}
