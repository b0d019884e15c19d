//! Query results as JSON, NDJSON, CSV or an Arrow IPC stream.

use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};
use serde::Deserialize;

use super::exec::Results;
use crate::api::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    Json,
    Ndjson,
    Csv,
    Arrow,
}

impl OutputFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Json => "application/json",
            OutputFormat::Ndjson => "application/x-ndjson",
            OutputFormat::Csv => "text/csv; charset=utf-8",
            OutputFormat::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// From an Accept header; JSON when absent or `*/*`.
    pub fn from_accept(accept: Option<&str>) -> Result<OutputFormat, ApiError> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Ok(OutputFormat::Json);
        };
        for part in accept.split(',') {
            match part.split(';').next().unwrap_or("").trim() {
                "application/json" | "*/*" | "application/*" => return Ok(OutputFormat::Json),
                "application/x-ndjson" | "application/ndjson" => return Ok(OutputFormat::Ndjson),
                "text/csv" => return Ok(OutputFormat::Csv),
                "application/vnd.apache.arrow.stream" => return Ok(OutputFormat::Arrow),
                _ => {}
            }
        }
        Err(ApiError::new(
            axum::http::StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!(
                "cannot produce '{accept}'; use application/json, application/x-ndjson, text/csv or application/vnd.apache.arrow.stream"
            ),
        ))
    }
}

fn enc(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("cannot encode the result: {e}"))
}

/// Encodes the whole result.
pub fn encode(format: OutputFormat, r: &Results) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    match format {
        OutputFormat::Json => {
            let columns: Vec<&str> = r
                .schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            out.extend_from_slice(b"{\"columns\":");
            serde_json::to_writer(&mut out, &columns).map_err(enc)?;
            out.extend_from_slice(b",\"rows\":");
            if r.rows == 0 {
                out.extend_from_slice(b"[]");
            } else {
                let mut w = ArrayWriter::new(&mut out);
                for b in &r.batches {
                    w.write(b).map_err(enc)?;
                }
                w.finish().map_err(enc)?;
            }
            out.extend_from_slice(format!(",\"row_count\":{}}}", r.rows).as_bytes());
        }
        OutputFormat::Ndjson => {
            let mut w = LineDelimitedWriter::new(&mut out);
            for b in &r.batches {
                w.write(b).map_err(enc)?;
            }
            w.finish().map_err(enc)?;
        }
        OutputFormat::Csv => {
            let mut w = WriterBuilder::new().with_header(true).build(&mut out);
            if r.batches.is_empty() {
                let names: Vec<&str> = r
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                drop(w);
                out.extend_from_slice(names.join(",").as_bytes());
                out.extend_from_slice(b"\n");
            } else {
                for b in &r.batches {
                    w.write(b).map_err(enc)?;
                }
            }
        }
        OutputFormat::Arrow => {
            let mut w = StreamWriter::try_new(&mut out, &r.schema).map_err(enc)?;
            for b in &r.batches {
                w.write(b).map_err(enc)?;
            }
            w.finish().map_err(enc)?;
        }
    }
    Ok(out)
}
