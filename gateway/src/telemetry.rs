//! Logs and traces of a serving node.
//!
//! Every request gets a span (`http.request`) whose parent is the caller's W3C
//! `traceparent`, if it sent one; the spans under it (policy decisions, Raft writes,
//! audit records becoming durable, source reads) are children through `tracing`. With an
//! OTLP endpoint configured (`[telemetry] otlp_endpoint`, or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables) the
//! spans are exported over OTLP/HTTP (protobuf) in batches. Without one, no OpenTelemetry
//! machinery runs at all (it costs tens of microseconds of CPU a request), but every
//! request still has a trace id: the one its `traceparent` carries, or a fresh one. Log
//! lines written while a request runs carry that `trace_id`, and requests this node makes
//! for it (a write forwarded to the leader, an audit search fanned out to the other
//! nodes, an HTTP-JSON source) carry a `traceparent`: this node's span when exporting,
//! else the caller's, passed on.
//!
//! The request span is at INFO (the logs need its fields); the spans under it are at
//! DEBUG, so that they cost nothing unless they are exported or `YIWANG_LOG` asks for
//! them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::http;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, Sampler, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// `[telemetry]` of node.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP receiver (an OpenTelemetry Collector, Jaeger, Tempo):
    /// spans go to `<otlp_endpoint>/v1/traces` as protobuf. Empty: the standard
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` variables
    /// decide; with neither set, no spans are exported. Plain `http://` only: run the
    /// collector beside the node.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Share of traces started here that are exported (0.0–1.0); a request whose
    /// `traceparent` says sampled is always exported, one that says not sampled never.
    pub sample_ratio: f64,
    /// How often batches of spans are sent (milliseconds).
    pub export_interval_ms: u64,
    /// Log format on stderr: `text` (for people) or `json` (one object a line, with
    /// `trace_id` inside a request, for log collectors). The level comes from the
    /// `YIWANG_LOG` variable (`RUST_LOG` syntax; default `warn,yiwang_gateway=info`).
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: String::new(),
            service_name: "yiwang".into(),
            sample_ratio: 1.0,
            export_interval_ms: 1000,
            log_format: LogFormat::Text,
        }
    }
}

impl TelemetryConfig {
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            bail!(
                "telemetry.sample_ratio must be between 0.0 and 1.0, not {}",
                self.sample_ratio
            );
        }
        if self.export_interval_ms == 0 {
            bail!("telemetry.export_interval_ms must be at least 1");
        }
        if self.service_name.trim().is_empty() {
            bail!("telemetry.service_name must not be empty");
        }
        if let Some(url) = self.traces_url() {
            let uri: http::Uri = url
                .parse()
                .with_context(|| format!("telemetry.otlp_endpoint: '{url}' is not a URL"))?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                bail!(
                    "telemetry.otlp_endpoint: '{}' must be an http:// URL with a host (OTLP/HTTP to a local collector)",
                    self.otlp_endpoint
                );
            }
        }
        Ok(())
    }

    /// The traces URL from the config, if it names one.
    fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.trim();
        (!base.is_empty()).then(|| format!("{}/v1/traces", base.trim_end_matches('/')))
    }

    /// Whether spans are exported: a configured endpoint or a standard variable.
    fn exports(&self) -> bool {
        let set = |v: &str| std::env::var(v).is_ok_and(|s| !s.trim().is_empty());
        let disabled =
            std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        !disabled
            && (self.traces_url().is_some()
                || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
    }
}

/// Whether this process exports spans (the OpenTelemetry layer is installed).
static EXPORTING: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    /// Without export: the `traceparent` the caller sent, passed on to the requests this
    /// node makes for it.
    static CALLER_TRACEPARENT: Option<String>;
}

/// Flushes and stops the exporter when dropped (at the end of `serve`).
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// The log filter: `YIWANG_LOG`, else warnings and the node's own notices.
fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("YIWANG_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,yiwang_gateway=info,openraft=warn")
    })
}

/// The log lines on stderr, as text or JSON, filtered by `YIWANG_LOG`.
fn log_layer<S>(format: LogFormat) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt.with_filter(log_filter()).boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(log_filter())
            .boxed(),
    }
}

/// Logging for commands that do not serve: text on stderr.
pub fn init_cli_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Logging and tracing of a serving node; must run inside the Tokio runtime. A second
/// call (several nodes in one process, in tests) keeps the first set-up.
pub fn init_node(cfg: &TelemetryConfig) -> Result<Guard> {
    yiwang_adapters::http_json::set_trace_headers(inject_current);
    if !cfg.exports() {
        let _ = tracing_subscriber::registry()
            .with(log_layer(cfg.log_format))
            .try_init();
        return Ok(Guard { provider: None });
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(Duration::from_secs(10));
    if let Some(url) = cfg.traces_url() {
        exporter = exporter.with_endpoint(url);
    }
    let exporter = exporter
        .build()
        .context("telemetry: cannot set up the OTLP exporter")?;
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(Duration::from_millis(cfg.export_interval_ms))
        .build();
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .with_batch_config(batch)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(cfg.service_name.clone())
                .build(),
        )
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            cfg.sample_ratio,
        ))))
        .build();
    // The node's own spans, DEBUG ones included, whatever the log level says; events
    // stay in the logs.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("yiwang"))
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.is_span()
                && *meta.level() <= tracing::Level::DEBUG
                && ["yiwang_gateway", "yiwang_policies", "yiwang_adapters"]
                    .iter()
                    .any(|t| meta.target().starts_with(t))
        }));
    let installed = tracing_subscriber::registry()
        .with(otel)
        .with(log_layer(cfg.log_format))
        .try_init()
        .is_ok();
    if !installed {
        // Another node of this process set up first (tests); it decides.
        let _ = provider.shutdown();
        return Ok(Guard { provider: None });
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    EXPORTING.store(true, Ordering::Relaxed);
    tracing::info!("exporting traces over OTLP/HTTP");
    Ok(Guard {
        provider: Some(provider),
    })
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// The trace a request belongs to: makes `span` a child of the caller's `traceparent`
/// (when exporting) and returns the trace id (32 hex digits) and, when not exporting,
/// the caller's `traceparent` to pass on (see [`with_caller_trace`]).
pub fn adopt_parent(span: &tracing::Span, headers: &http::HeaderMap) -> (String, Option<String>) {
    if EXPORTING.load(Ordering::Relaxed) {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let _ = span.set_parent(parent);
        let own = span.context().span().span_context().trace_id();
        if own != opentelemetry::trace::TraceId::INVALID {
            return (own.to_string(), None);
        }
    }
    match headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
    {
        Some((trace, raw)) => (trace, Some(raw)),
        None => (uuid::Uuid::new_v4().simple().to_string(), None),
    }
}

/// A valid W3C `traceparent` (version 00): its trace id and the header itself.
fn parse_traceparent(v: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = v.trim().split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && s.bytes().any(|b| b != b'0')
    };
    match parts.as_slice() {
        [version, trace, parent, flags]
            if *version == "00" && hex(trace, 32) && hex(parent, 16) && flags.len() == 2 =>
        {
            Some((trace.to_string(), v.trim().to_string()))
        }
        _ => None,
    }
}

/// Runs `fut` with the caller's `traceparent` (from [`adopt_parent`]) available to
/// [`inject_current`].
pub async fn with_caller_trace<F: std::future::Future>(
    caller: Option<String>,
    fut: F,
) -> F::Output {
    CALLER_TRACEPARENT.scope(caller, fut).await
}

/// Adds a `traceparent` to an outgoing request's headers: the current span's when
/// exporting, else the caller's.
pub fn inject_current(headers: &mut http::HeaderMap) {
    if EXPORTING.load(Ordering::Relaxed) {
        let cx = tracing::Span::current().context();
        if cx.span().span_context().is_valid() {
            TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
        }
        return;
    }
    let caller = CALLER_TRACEPARENT.try_with(|c| c.clone()).ok().flatten();
    if let Some(v) = caller.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
        headers.insert("traceparent", v);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_traceparent;

    #[test]
    fn traceparent_headers_are_checked() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(ok).map(|(t, _)| t).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }
}
