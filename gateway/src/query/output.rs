//! Query results as JSON, NDJSON, CSV or an Arrow IPC stream.

use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};
use datafusion::arrow::record_batch::RecordBatch;
use serde::Deserialize;

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

/// Encodes a result batch by batch, so that it can be sent as it is computed: the
/// bytes of [`start`](Encoder::start), every [`batch`](Encoder::batch) and
/// [`finish`](Encoder::finish), in that order, are the whole answer.
pub struct Encoder {
    state: State,
    schema: SchemaRef,
}

enum State {
    Json(ArrayWriter<Vec<u8>>),
    Ndjson,
    Csv { header_sent: bool },
    Arrow(StreamWriter<Vec<u8>>),
}

impl Encoder {
    /// The encoder and the answer's first bytes.
    pub fn start(format: OutputFormat, schema: SchemaRef) -> Result<(Encoder, Vec<u8>), ApiError> {
        let mut head = Vec::new();
        let state = match format {
            OutputFormat::Json => {
                let columns: Vec<&str> =
                    schema.fields().iter().map(|f| f.name().as_str()).collect();
                head.extend_from_slice(b"{\"columns\":");
                serde_json::to_writer(&mut head, &columns).map_err(enc)?;
                head.extend_from_slice(b",\"rows\":");
                State::Json(ArrayWriter::new(Vec::new()))
            }
            OutputFormat::Ndjson => State::Ndjson,
            OutputFormat::Csv => State::Csv { header_sent: false },
            OutputFormat::Arrow => {
                let mut w = StreamWriter::try_new(Vec::new(), &schema).map_err(enc)?;
                head = std::mem::take(w.get_mut());
                State::Arrow(w)
            }
        };
        Ok((Encoder { state, schema }, head))
    }

    /// The bytes of one batch.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, ApiError> {
        match &mut self.state {
            State::Json(w) => {
                w.write(batch).map_err(enc)?;
                Ok(std::mem::take(w.get_mut()))
            }
            State::Ndjson => {
                let mut w = LineDelimitedWriter::new(Vec::new());
                w.write(batch).map_err(enc)?;
                w.finish().map_err(enc)?;
                Ok(w.into_inner())
            }
            State::Csv { header_sent } => {
                let mut w = WriterBuilder::new()
                    .with_header(!*header_sent)
                    .build(Vec::new());
                w.write(batch).map_err(enc)?;
                *header_sent = true;
                Ok(w.into_inner())
            }
            State::Arrow(w) => {
                w.write(batch).map_err(enc)?;
                Ok(std::mem::take(w.get_mut()))
            }
        }
    }

    /// The answer's last bytes, once every batch is written; `rows` is the row count.
    pub fn finish(self, rows: u64) -> Result<Vec<u8>, ApiError> {
        match self.state {
            State::Json(mut w) => {
                // With no rows written the writer still opens and closes the array.
                w.finish().map_err(enc)?;
                let mut out = w.into_inner();
                out.extend_from_slice(format!(",\"row_count\":{rows}}}").as_bytes());
                Ok(out)
            }
            State::Ndjson => Ok(Vec::new()),
            State::Csv { header_sent: true } => Ok(Vec::new()),
            State::Csv { header_sent: false } => {
                // An empty result is still a CSV file with its header line.
                let mut w = WriterBuilder::new().with_header(true).build(Vec::new());
                w.write(&RecordBatch::new_empty(self.schema)).map_err(enc)?;
                Ok(w.into_inner())
            }
            State::Arrow(mut w) => {
                w.finish().map_err(enc)?;
                Ok(std::mem::take(w.get_mut()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
        let ids: Vec<i64> = (from..from + n).collect();
        let names: Vec<String> = ids.iter().map(|i| format!("名称,\"{i}\"")).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    fn encode(format: OutputFormat, batches: &[RecordBatch], schema: &SchemaRef) -> Vec<u8> {
        let (mut e, mut out) = Encoder::start(format, schema.clone()).unwrap();
        let mut rows = 0;
        for b in batches {
            out.extend(e.batch(b).unwrap());
            rows += b.num_rows() as u64;
        }
        out.extend(e.finish(rows).unwrap());
        out
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]))
    }

    #[test]
    fn batches_encode_to_one_valid_answer_in_every_format() {
        let s = schema();
        let batches = [batch(&s, 0, 3), batch(&s, 3, 0), batch(&s, 3, 2)];
        let json: serde_json::Value =
            serde_json::from_slice(&encode(OutputFormat::Json, &batches, &s)).unwrap();
        assert_eq!(json["columns"], serde_json::json!(["id", "name"]));
        assert_eq!(json["row_count"], 5);
        let ids: Vec<i64> = json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
        assert_eq!(json["rows"][4]["name"], "名称,\"4\"");

        let nd = String::from_utf8(encode(OutputFormat::Ndjson, &batches, &s)).unwrap();
        let lines: Vec<serde_json::Value> = nd
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[3]["id"], 3);

        let csv = String::from_utf8(encode(OutputFormat::Csv, &batches, &s)).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 6, "{csv}");
        assert_eq!(lines[0], "id,name");
        assert_eq!(lines[5], "4,\"名称,\"\"4\"\"\"");

        let ipc = encode(OutputFormat::Arrow, &batches, &s);
        let reader =
            datafusion::arrow::ipc::reader::StreamReader::try_new(ipc.as_slice(), None).unwrap();
        let read: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(read.iter().map(|b| b.num_rows()).sum::<usize>(), 5);
        assert_eq!(read[0].schema(), s);
    }

    #[test]
    fn an_empty_result_is_still_a_valid_answer() {
        let s = schema();
        let json: serde_json::Value =
            serde_json::from_slice(&encode(OutputFormat::Json, &[], &s)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"columns": ["id", "name"], "rows": [], "row_count": 0})
        );
        assert!(encode(OutputFormat::Ndjson, &[], &s).is_empty());
        assert_eq!(encode(OutputFormat::Csv, &[], &s), b"id,name\n");
        let ipc = encode(OutputFormat::Arrow, &[], &s);
        let reader =
            datafusion::arrow::ipc::reader::StreamReader::try_new(ipc.as_slice(), None).unwrap();
        assert_eq!(reader.schema(), s);
        assert_eq!(reader.count(), 0);
    }
}
