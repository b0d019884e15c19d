//! Catalog field types as Arrow types, source values into Arrow batches, and Arrow
//! values back into the JSON of the records endpoint.
//!
//! Every source kind converts its native values into a [`Cell`] and hands it to a
//! [`BatchBuilder`], so one set of rules decides what fits a declared type: a value that
//! does not fit is an error naming the column and the source, never a panic and never a
//! silently changed value. Dates and times travel as text in SQLite, CSV and JSON
//! (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.ffffff]]`) and are parsed here.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::Value as Json;
use yiwang_catalog::model::{Field, FieldType};

use crate::error::AdapterError;

/// The Arrow type of a catalog field type.
pub fn arrow_type(t: FieldType) -> DataType {
    match t {
        FieldType::String => DataType::Utf8,
        FieldType::Integer => DataType::Int64,
        FieldType::Float => DataType::Float64,
        FieldType::Boolean => DataType::Boolean,
        FieldType::Date => DataType::Date32,
        FieldType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

/// The Arrow schema of a dataset: one nullable column per field, in catalog order.
pub fn arrow_schema(fields: &[Field]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| {
                datafusion::arrow::datatypes::Field::new(&f.name, arrow_type(f.field_type), true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// One value as a source delivered it, before conversion to the declared type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00:00, no time zone.
    Timestamp(i64),
}

impl Cell<'_> {
    /// What kind of value it is, for error messages. The value itself is never shown:
    /// it may be a sensitive field the caller may not see.
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Text(_) => "text",
            Cell::Int(_) => "an integer",
            Cell::Float(_) => "a fractional number",
            Cell::Bool(_) => "a boolean",
            Cell::Date(_) => "a date",
            Cell::Timestamp(_) => "a date and time",
        }
    }
}

enum Column {
    String(StringBuilder),
    Integer(Int64Builder),
    Float(Float64Builder),
    Boolean(BooleanBuilder),
    Date(Date32Builder),
    Datetime(TimestampMicrosecondBuilder),
}

/// Builds record batches of a fixed schema, row by row.
pub(crate) struct BatchBuilder {
    source_id: String,
    fields: Vec<Field>,
    schema: SchemaRef,
    columns: Vec<Column>,
    rows: usize,
}

impl BatchBuilder {
    /// `schema` must be [`arrow_schema`] of `fields`.
    pub(crate) fn new(source_id: &str, fields: &[Field], schema: SchemaRef) -> Self {
        debug_assert_eq!(schema.fields().len(), fields.len());
        let columns = fields.iter().map(|f| new_column(f.field_type)).collect();
        BatchBuilder {
            source_id: source_id.to_string(),
            fields: fields.to_vec(),
            schema,
            columns,
            rows: 0,
        }
    }

    /// Rows added since the last [`BatchBuilder::finish`].
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends `cell` to column `index` of the current row.
    pub(crate) fn push(&mut self, index: usize, cell: Cell<'_>) -> Result<(), AdapterError> {
        let field_type = self.fields[index].field_type;
        let result = match (&mut self.columns[index], cell) {
            (column, Cell::Null) => {
                append_null(column);
                Ok(())
            }
            (Column::String(b), cell) => to_text(cell).map(|s| b.append_value(s)),
            (Column::Integer(b), cell) => to_integer(cell).map(|n| b.append_value(n)),
            (Column::Float(b), cell) => to_float(cell).map(|x| b.append_value(x)),
            (Column::Boolean(b), cell) => to_bool(cell).map(|v| b.append_value(v)),
            (Column::Date(b), cell) => to_date(cell).map(|d| b.append_value(d)),
            (Column::Datetime(b), cell) => to_timestamp(cell).map(|t| b.append_value(t)),
        };
        result.map_err(|()| AdapterError::Source {
            source_id: self.source_id.clone(),
            message: format!(
                "column '{}' holds {} that is not a valid {}",
                self.fields[index].name,
                cell.kind(),
                field_type.as_str()
            ),
        })
    }

    /// Ends the current row; every column must have been pushed once.
    pub(crate) fn end_row(&mut self) {
        self.rows += 1;
    }

    /// The rows added so far as one batch; the builder starts over empty.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch, AdapterError> {
        let rows = self.rows;
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| finish_column(c, rows))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), arrays, &options).map_err(|e| {
            AdapterError::Source {
                source_id: self.source_id.clone(),
                message: format!("cannot build a batch: {e}"),
            }
        })
    }
}

fn new_column(t: FieldType) -> Column {
    match t {
        FieldType::String => Column::String(StringBuilder::new()),
        FieldType::Integer => Column::Integer(Int64Builder::new()),
        FieldType::Float => Column::Float(Float64Builder::new()),
        FieldType::Boolean => Column::Boolean(BooleanBuilder::new()),
        FieldType::Date => Column::Date(Date32Builder::new()),
        FieldType::Datetime => Column::Datetime(TimestampMicrosecondBuilder::new()),
    }
}

fn append_null(column: &mut Column) {
    match column {
        Column::String(b) => b.append_null(),
        Column::Integer(b) => b.append_null(),
        Column::Float(b) => b.append_null(),
        Column::Boolean(b) => b.append_null(),
        Column::Date(b) => b.append_null(),
        Column::Datetime(b) => b.append_null(),
    }
}

/// The column's array; the builder starts over with room for another `rows` rows like
/// these, so the next batch is built without growing its buffers step by step.
fn finish_column(column: &mut Column, rows: usize) -> ArrayRef {
    match column {
        Column::String(b) => {
            let bytes = b.values_slice().len();
            let array = b.finish();
            *b = StringBuilder::with_capacity(rows, bytes + bytes / 16);
            Arc::new(array)
        }
        Column::Integer(b) => finish_primitive(b, rows),
        Column::Float(b) => finish_primitive(b, rows),
        Column::Boolean(b) => {
            let array = b.finish();
            *b = BooleanBuilder::with_capacity(rows);
            Arc::new(array)
        }
        Column::Date(b) => finish_primitive(b, rows),
        Column::Datetime(b) => finish_primitive(b, rows),
    }
}

fn finish_primitive<T: datafusion::arrow::datatypes::ArrowPrimitiveType>(
    b: &mut datafusion::arrow::array::PrimitiveBuilder<T>,
    rows: usize,
) -> ArrayRef {
    let array = b.finish();
    *b = datafusion::arrow::array::PrimitiveBuilder::<T>::with_capacity(rows)
        .with_data_type(array.data_type().clone());
    Arc::new(array)
}

/// Numbers, booleans, dates and times are written the way the records endpoint
/// writes them, so a string field over a numeric column still reads naturally.
fn to_text(cell: Cell<'_>) -> Result<std::borrow::Cow<'_, str>, ()> {
    Ok(match cell {
        Cell::Null => return Err(()),
        Cell::Text(s) => return Ok(std::borrow::Cow::Borrowed(s)),
        Cell::Int(n) => n.to_string(),
        Cell::Float(x) => x.to_string(),
        Cell::Bool(b) => b.to_string(),
        Cell::Date(d) => format_date(d).ok_or(())?,
        Cell::Timestamp(t) => format_datetime(t).ok_or(())?,
    }
    .into())
}

/// Integral floats are accepted (SQLite and JSON do not always keep the
/// difference); text must be a plain decimal integer.
fn to_integer(cell: Cell<'_>) -> Result<i64, ()> {
    match cell {
        Cell::Int(n) => Ok(n),
        // The range check keeps `as` exact: every integral f64 in (-2^63, 2^63) fits.
        Cell::Float(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => Ok(x as i64),
        Cell::Text(s) => s.trim().parse().map_err(|_| ()),
        _ => Err(()),
    }
}

fn to_float(cell: Cell<'_>) -> Result<f64, ()> {
    match cell {
        Cell::Float(x) => Ok(x),
        // Exact below 2^53; larger integers round as a float column would store them.
        Cell::Int(n) => Ok(n as f64),
        Cell::Text(s) => s.trim().parse().map_err(|_| ()),
        _ => Err(()),
    }
}

/// Numbers are true when not zero; text is `true`/`false`/`1`/`0` in any case. The
/// SQLite pushdown mirrors exactly this rule (see `pushdown.rs`).
fn to_bool(cell: Cell<'_>) -> Result<bool, ()> {
    match cell {
        Cell::Bool(b) => Ok(b),
        Cell::Int(n) => Ok(n != 0),
        Cell::Float(x) => Ok(x != 0.0),
        Cell::Text(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(true),
        Cell::Text(s) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(false),
        _ => Err(()),
    }
}

/// Only `YYYY-MM-DD` exactly: text order then equals date order, which the SQLite
/// pushdown relies on.
fn to_date(cell: Cell<'_>) -> Result<i32, ()> {
    match cell {
        Cell::Date(d) => Ok(d),
        Cell::Text(s) => parse_date(s).ok_or(()),
        _ => Err(()),
    }
}

fn to_timestamp(cell: Cell<'_>) -> Result<i64, ()> {
    match cell {
        Cell::Timestamp(t) => Ok(t),
        Cell::Date(d) => Ok(i64::from(d) * MICROS_PER_DAY),
        Cell::Text(s) => parse_datetime(s).ok_or(()),
        _ => Err(()),
    }
}

pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// `YYYY-MM-DD` to days since 1970-01-01.
pub(crate) fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    Some(days_of(date))
}

/// `YYYY-MM-DD`, optionally followed by ` ` or `T` and `HH:MM`, `HH:MM:SS` or
/// `HH:MM:SS.f…` (up to nanoseconds, truncated to microseconds), to microseconds since
/// 1970-01-01 00:00:00. No time zone suffix: the catalog's times are local.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let days = i64::from(parse_date(s.get(..10)?)?);
    if b.len() == 10 {
        return Some(days * MICROS_PER_DAY);
    }
    if !matches!(b[10], b' ' | b'T') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let mut second = 0;
    let mut micros = 0;
    if b.len() > 16 {
        if b[16] != b':' || b.len() < 19 {
            return None;
        }
        second = digits(&b[17..19])?;
        if b.len() > 19 {
            let fraction = &b[20..];
            if b[19] != b'.' || fraction.is_empty() || fraction.len() > 9 {
                return None;
            }
            let mut scaled = digits(fraction)?;
            for _ in fraction.len()..6 {
                scaled *= 10;
            }
            for _ in 6..fraction.len() {
                scaled /= 10;
            }
            micros = scaled;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = i64::from(hour * 3600 + minute * 60 + second);
    Some(days * MICROS_PER_DAY + seconds * 1_000_000 + i64::from(micros))
}

/// Days since 1970-01-01 of a calendar date.
pub(crate) fn days_of(date: time::Date) -> i32 {
    date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY
}

/// Microseconds since 1970-01-01 00:00:00 of a date and time.
pub(crate) fn micros_of(t: time::PrimitiveDateTime) -> i64 {
    let (h, m, s, us) = t.time().as_hms_micro();
    i64::from(days_of(t.date())) * MICROS_PER_DAY
        + (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)) * 1_000_000
        + i64::from(us)
}

/// The calendar date `days` after 1970-01-01.
pub(crate) fn date_of(days: i32) -> Option<time::Date> {
    time::Date::from_julian_day(days.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()
}

/// The date and time `micros` after 1970-01-01 00:00:00.
pub(crate) fn datetime_of(micros: i64) -> Option<time::PrimitiveDateTime> {
    let date = date_of(i32::try_from(micros.div_euclid(MICROS_PER_DAY)).ok()?)?;
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let seconds = in_day / 1_000_000;
    let time = time::Time::from_hms_micro(
        u8::try_from(seconds / 3600).ok()?,
        u8::try_from(seconds / 60 % 60).ok()?,
        u8::try_from(seconds % 60).ok()?,
        u32::try_from(in_day % 1_000_000).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, time))
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |n, d| {
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// Days since 1970-01-01 to `YYYY-MM-DD`; `None` outside years 0000–9999.
pub(crate) fn format_date(days: i32) -> Option<String> {
    let mut out = Vec::with_capacity(10);
    write_date(&mut out, days).then(|| String::from_utf8(out).ok())?
}

/// Microseconds since 1970-01-01 00:00:00 to `YYYY-MM-DD HH:MM:SS`, with `.ffffff` only
/// when the time has a fraction of a second; `None` outside years 0000–9999.
pub(crate) fn format_datetime(micros: i64) -> Option<String> {
    let mut out = Vec::with_capacity(26);
    write_datetime(&mut out, micros).then(|| String::from_utf8(out).ok())?
}

/// The calendar date `days` after 1970-01-01 as (year, month, day), proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn push_digits(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = value;
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// Days since 1970-01-01 of 0000-01-01 and 9999-12-31: the dates [`write_date`] writes.
const WRITABLE_DAYS: std::ops::RangeInclusive<i64> = -719_528..=2_932_896;

/// Whether [`write_date`] can write `days`.
pub fn writable_date(days: i32) -> bool {
    WRITABLE_DAYS.contains(&i64::from(days))
}

/// Whether [`write_datetime`] can write `micros`.
pub fn writable_datetime(micros: i64) -> bool {
    WRITABLE_DAYS.contains(&micros.div_euclid(MICROS_PER_DAY))
}

/// Appends `YYYY-MM-DD` for days since 1970-01-01; `false` (and nothing appended)
/// outside years 0000–9999. The one date format of records and query answers.
pub fn write_date(out: &mut Vec<u8>, days: i32) -> bool {
    if !writable_date(days) {
        return false;
    }
    let (year, month, day) = civil_from_days(i64::from(days));
    push_digits(out, year as u32, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    true
}

/// Appends `YYYY-MM-DD HH:MM:SS`, with `.ffffff` only when there is a fraction of a
/// second, for microseconds since 1970-01-01 00:00:00; `false` (and nothing appended)
/// outside years 0000–9999. The one time format of records and query answers.
pub fn write_datetime(out: &mut Vec<u8>, micros: i64) -> bool {
    if !writable_datetime(micros) {
        return false;
    }
    write_date(out, micros.div_euclid(MICROS_PER_DAY) as i32);
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let seconds = (in_day / 1_000_000) as u32;
    let fraction = (in_day % 1_000_000) as u32;
    out.push(b' ');
    push_digits(out, seconds / 3600, 2);
    out.push(b':');
    push_digits(out, seconds / 60 % 60, 2);
    out.push(b':');
    push_digits(out, seconds % 60, 2);
    if fraction != 0 {
        out.push(b'.');
        push_digits(out, fraction, 6);
    }
    true
}

/// Value `row` of `array` as the records endpoint returns it: numbers, strings,
/// booleans, null; dates as `YYYY-MM-DD`, times as `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn json_value(array: &dyn Array, row: usize) -> Json {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{
        Date32Type, Float64Type, Int64Type, TimestampMicrosecondType,
    };
    if array.is_null(row) {
        return Json::Null;
    }
    match array.data_type() {
        DataType::Utf8 => Json::from(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Json::from(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Json::from(array.as_string_view().value(row)),
        DataType::Int64 => Json::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => {
            let x = array.as_primitive::<Float64Type>().value(row);
            // Infinities and NaN have no JSON form.
            serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
        }
        DataType::Boolean => Json::Bool(array.as_boolean().value(row)),
        DataType::Date32 => format_date(array.as_primitive::<Date32Type>().value(row))
            .map_or(Json::Null, Json::String),
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            format_datetime(array.as_primitive::<TimestampMicrosecondType>().value(row))
                .map_or(Json::Null, Json::String)
        }
        _ => {
            // Not produced by our providers; shown the way Arrow prints it.
            let options = datafusion::arrow::util::display::FormatOptions::default();
            datafusion::arrow::util::display::ArrayFormatter::try_new(array, &options)
                .map_or(Json::Null, |f| Json::String(f.value(row).to_string()))
        }
    }
}

#[cfg(test)]
mod tests;
