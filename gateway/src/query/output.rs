//! Query results as JSON, NDJSON, CSV or an Arrow IPC stream.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, PrimitiveArray, StringArray, StructArray};
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, FieldRef, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::writer::{
    Encoder as JsonEncoder, EncoderFactory, EncoderOptions, NullableEncoder, make_encoder,
};
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
///
/// JSON and NDJSON rows are written straight into each chunk with arrow-json's
/// encoders; dates and times come out as the records endpoint writes them
/// (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS`), without the formatting machinery of
/// arrow's display (most of an export's encoding time before).
pub struct Encoder {
    state: State,
    schema: SchemaRef,
    /// Bytes per row of the last batch, to size the next chunk at once.
    row_bytes: usize,
}

enum State {
    /// Whether a row has been written (the next one needs a comma).
    Json {
        rows_written: bool,
    },
    Ndjson,
    Csv {
        header_sent: bool,
    },
    Arrow(Box<StreamWriter<Vec<u8>>>),
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
                head.extend_from_slice(b",\"rows\":[");
                State::Json {
                    rows_written: false,
                }
            }
            OutputFormat::Ndjson => State::Ndjson,
            OutputFormat::Csv => State::Csv { header_sent: false },
            OutputFormat::Arrow => {
                let mut w = StreamWriter::try_new(Vec::new(), &schema).map_err(enc)?;
                head = std::mem::take(w.get_mut());
                State::Arrow(Box::new(w))
            }
        };
        let encoder = Encoder {
            state,
            schema,
            row_bytes: 64,
        };
        Ok((encoder, head))
    }

    /// The bytes of one batch.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, ApiError> {
        let out = match &mut self.state {
            State::Json { rows_written } => {
                let mut out = Vec::with_capacity(batch.num_rows() * (self.row_bytes + 1));
                json_rows(batch, &mut out, |out, first| {
                    if !first || *rows_written {
                        out.push(b',');
                    }
                })?;
                *rows_written |= batch.num_rows() > 0;
                out
            }
            State::Ndjson => {
                let mut out = Vec::with_capacity(batch.num_rows() * (self.row_bytes + 1));
                json_rows(batch, &mut out, |out, first| {
                    if !first {
                        out.push(b'\n');
                    }
                })?;
                if batch.num_rows() > 0 {
                    out.push(b'\n');
                }
                out
            }
            State::Csv { header_sent } => {
                let mut w = csv_writer().with_header(!*header_sent).build(Vec::new());
                w.write(batch).map_err(enc)?;
                *header_sent = true;
                w.into_inner()
            }
            State::Arrow(w) => {
                w.write(batch).map_err(enc)?;
                std::mem::take(w.get_mut())
            }
        };
        if batch.num_rows() > 0 {
            self.row_bytes = out.len() / batch.num_rows() + 1;
        }
        Ok(out)
    }

    /// The answer's last bytes, once every batch is written; `rows` is the row count.
    pub fn finish(self, rows: u64) -> Result<Vec<u8>, ApiError> {
        match self.state {
            State::Json { .. } => Ok(format!("],\"row_count\":{rows}}}").into_bytes()),
            State::Ndjson => Ok(Vec::new()),
            State::Csv { header_sent: true } => Ok(Vec::new()),
            State::Csv { header_sent: false } => {
                // An empty result is still a CSV file with its header line.
                let mut w = csv_writer().with_header(true).build(Vec::new());
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

/// CSV with times as the records endpoint writes them (`YYYY-MM-DD HH:MM:SS`, and the
/// fraction of a second when there is one).
fn csv_writer() -> WriterBuilder {
    WriterBuilder::new().with_timestamp_format("%Y-%m-%d %H:%M:%S%.f".to_string())
}

/// Writes each row of `batch` as a JSON object (null values left out), calling
/// `before(out, is_first_row_of_batch)` ahead of each.
fn json_rows(
    batch: &RecordBatch,
    out: &mut Vec<u8>,
    mut before: impl FnMut(&mut Vec<u8>, bool),
) -> Result<(), ApiError> {
    if batch.num_rows() == 0 {
        return Ok(());
    }
    let options = EncoderOptions::default().with_encoder_factory(Arc::new(Fast));
    let array = StructArray::from(batch.clone());
    let field: FieldRef = Arc::new(Field::new_struct(
        "",
        batch.schema().fields().clone(),
        false,
    ));
    let mut encoder = make_encoder(&field, &array, &options).map_err(enc)?;
    for row in 0..batch.num_rows() {
        before(out, row == 0);
        encoder.encode(row, out);
    }
    Ok(())
}

/// Text, dates and times: dates and times as the records endpoint writes them (an
/// array with a value outside years 0000–9999 keeps arrow's own encoder), text
/// escaped eight bytes at a time.
#[derive(Debug)]
struct Fast;

impl EncoderFactory for Fast {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        let nulls = array.nulls().cloned();
        let encoder: Box<dyn JsonEncoder + 'a> = match array.data_type() {
            DataType::Timestamp(TimeUnit::Microsecond, None) => {
                let values = array.as_primitive::<TimestampMicrosecondType>();
                if !values
                    .iter()
                    .flatten()
                    .all(yiwang_adapters::writable_datetime)
                {
                    return Ok(None);
                }
                Box::new(TimeEncoder(values))
            }
            DataType::Date32 => {
                let values = array.as_primitive::<Date32Type>();
                if !values.iter().flatten().all(yiwang_adapters::writable_date) {
                    return Ok(None);
                }
                Box::new(DateEncoder(values))
            }
            DataType::Utf8 => Box::new(TextEncoder(array.as_string::<i32>())),
            _ => return Ok(None),
        };
        Ok(Some(NullableEncoder::new(encoder, nulls)))
    }
}

struct TimeEncoder<'a>(&'a PrimitiveArray<TimestampMicrosecondType>);

impl JsonEncoder for TimeEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        yiwang_adapters::write_datetime(out, self.0.value(idx));
        out.push(b'"');
    }
}

struct TextEncoder<'a>(&'a StringArray);

impl JsonEncoder for TextEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        write_json_str(out, self.0.value(idx));
    }
}

/// Whether any byte of `w` needs escaping in a JSON string: a control character, `"`
/// or `\\` (bit tricks from "Bit Twiddling Hacks": exact for "any byte").
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote =
        (w ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES) & !(w ^ (ONES * u64::from(b'"'))) & HIGH;
    let backslash = (w ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES)
        & !(w ^ (ONES * u64::from(b'\\')))
        & HIGH;
    below_space | quote | backslash != 0
}

/// `s` as a JSON string, escaped exactly as serde_json escapes it.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let word = u64::from_le_bytes([
                bytes[i],
                bytes[i + 1],
                bytes[i + 2],
                bytes[i + 3],
                bytes[i + 4],
                bytes[i + 5],
                bytes[i + 6],
                bytes[i + 7],
            ]);
            if !needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[clean..i]);
        out.extend_from_slice(escape);
        i += 1;
        clean = i;
    }
    out.extend_from_slice(&bytes[clean..]);
    out.push(b'"');
}

struct DateEncoder<'a>(&'a PrimitiveArray<Date32Type>);

impl JsonEncoder for DateEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        yiwang_adapters::write_date(out, self.0.value(idx));
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::Schema;

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
    fn dates_and_times_are_written_as_the_records_endpoint_writes_them() {
        use datafusion::arrow::array::{Date32Array, TimestampMicrosecondArray};
        let s: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("on", DataType::Date32, true),
        ]));
        let b = RecordBatch::try_new(
            s.clone(),
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(1_790_892_300_000_000),
                    None,
                    Some(1_790_892_300_123_456),
                ])),
                Arc::new(Date32Array::from(vec![Some(20_727), Some(0), None])),
            ],
        )
        .unwrap();
        let nd =
            String::from_utf8(encode(OutputFormat::Ndjson, std::slice::from_ref(&b), &s)).unwrap();
        assert_eq!(
            nd,
            "{\"at\":\"2026-10-01 22:05:00\",\"on\":\"2026-10-01\"}\n\
             {\"on\":\"1970-01-01\"}\n\
             {\"at\":\"2026-10-01 22:05:00.123456\"}\n"
        );
        let csv = String::from_utf8(encode(OutputFormat::Csv, &[b], &s)).unwrap();
        assert_eq!(
            csv,
            "at,on\n2026-10-01 22:05:00,2026-10-01\n,1970-01-01\n2026-10-01 22:05:00.123456,\n"
        );
        // A time outside years 0000-9999 keeps arrow's own form instead of failing.
        let far = RecordBatch::try_new(
            s.clone(),
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![Some(i64::MAX / 2)])),
                Arc::new(Date32Array::from(vec![Some(i32::MAX / 2)])),
            ],
        )
        .unwrap();
        let nd = encode(OutputFormat::Ndjson, &[far], &s);
        let row: serde_json::Value = serde_json::from_slice(&nd).unwrap();
        assert!(row["at"].is_string() && row["on"].is_string(), "{row}");
    }

    #[test]
    fn text_is_escaped_exactly_as_serde_json_escapes_it() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "南通恒昌化工有限公司".into(),
            "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{1}i\u{1f}j\u{7f}k/l".into(),
            "0123456\"".into(),
            "\"01234567".into(),
            "按小时抄表，供电公司计量中心采集\\用于研判".into(),
        ];
        // Every byte value below 0x80 at every position of a 17-byte string.
        for b in 0u8..0x80 {
            for pos in 0..17 {
                let mut v = vec![b'x'; 17];
                v[pos] = b;
                samples.push(String::from_utf8(v).unwrap());
            }
        }
        for s in &samples {
            let mut out = Vec::new();
            write_json_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
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
