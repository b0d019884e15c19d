//! Logs and traces of a serving node.
//!
//! Every request gets a span (`http.request`) whose parent is the caller's W3C
//! `traceparent`, if it sent one; the spans under it (policy decisions, Raft writes,
//! audit records becoming durable, source reads) are children through `tracing`. With an
//! OTLP endpoint configured (`[telemetry] otlp_endpoint`, or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables) the
//! spans are exported over OTLP/HTTP (protobuf) in batches; without one they are not
//! recorded, but every request still has a trace id: the one its `traceparent` carries,
//! or a fresh one. Log lines written while a request runs carry that `trace_id`, and
//! requests this node makes for it (a write forwarded to the leader, an audit search
//! fanned out to the other nodes, an HTTP-JSON source) carry the `traceparent`.

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
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(cfg.service_name.clone())
            .build(),
    );
    let exports = cfg.exports();
    if exports {
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
        builder = builder
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                cfg.sample_ratio,
            ))));
    } else {
        // Nothing is exported: spans still get ids (for logs and propagation) but are
        // not recorded.
        builder = builder.with_sampler(Sampler::AlwaysOff);
    }
    let provider = builder.build();
    let tracer = provider.tracer("yiwang");
    // Traces take the node's own spans whatever the log level says.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("yiwang_gateway", tracing::Level::INFO)
                .with_target("yiwang_policies", tracing::Level::INFO)
                .with_target("yiwang_adapters", tracing::Level::INFO),
        );
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match cfg.log_format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(otel)
        .with(fmt.with_filter(log_filter()))
        .try_init()
        .is_ok();
    if installed && exports {
        tracing::info!("exporting traces over OTLP/HTTP");
    }
    Ok(Guard {
        provider: installed.then_some(provider),
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

/// Makes `span` a child of the `traceparent` in `headers` (if any) and returns the
/// trace id it belongs to, as 32 hex digits.
pub fn adopt_parent(span: &tracing::Span, headers: &http::HeaderMap) -> String {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let remote = parent.span().span_context().clone();
    let _ = span.set_parent(parent);
    let own = span.context().span().span_context().trace_id();
    if own != opentelemetry::trace::TraceId::INVALID {
        own.to_string()
    } else if remote.is_valid() {
        // Not set up for tracing (a node in a test process whose subscriber is
        // another's): still name the caller's trace.
        remote.trace_id().to_string()
    } else {
        String::new()
    }
}

/// Adds the current span's `traceparent` to an outgoing request's headers.
pub fn inject_current(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
    }
}
