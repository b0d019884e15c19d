//! The SQL forms of one dialect: casts, byte-order comparisons, SQLite's boolean
//! rule, day ranges and GLOB patterns, and literals as parameters.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::Expr;
use yiwang_catalog::model::FieldType;

use super::{Cmp, Fragment, Param, Pushed};
use crate::arrow::MICROS_PER_DAY;

/// The literal as a parameter of the field's type; `None` for null, for a value of
/// another type (DataFusion then casts the column, which is not pushed), and for
/// non-finite floats.
pub(super) fn literal(t: FieldType, e: &Expr) -> Option<Param> {
    let Expr::Literal(v, _) = e else { return None };
    use ScalarValue as S;
    Some(match (t, v) {
        (FieldType::String, S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s))) => {
            Param::Text(s.clone())
        }
        (FieldType::Integer, S::Int64(Some(n))) => Param::Int(*n),
        (FieldType::Integer, S::Int32(Some(n))) => Param::Int(i64::from(*n)),
        (FieldType::Integer, S::Int16(Some(n))) => Param::Int(i64::from(*n)),
        (FieldType::Integer, S::Int8(Some(n))) => Param::Int(i64::from(*n)),
        (FieldType::Integer, S::UInt32(Some(n))) => Param::Int(i64::from(*n)),
        (FieldType::Integer, S::UInt16(Some(n))) => Param::Int(i64::from(*n)),
        (FieldType::Integer, S::UInt8(Some(n))) => Param::Int(i64::from(*n)),
        (FieldType::Integer, S::UInt64(Some(n))) => Param::Int(i64::try_from(*n).ok()?),
        (FieldType::Float, S::Float64(Some(x))) if x.is_finite() => Param::Float(*x),
        (FieldType::Float, S::Float32(Some(x))) if x.is_finite() => Param::Float(f64::from(*x)),
        (FieldType::Boolean, S::Boolean(Some(b))) => Param::Bool(*b),
        (FieldType::Date, S::Date32(Some(d))) => Param::Date(*d),
        (FieldType::Datetime, S::TimestampMicrosecond(Some(t), None)) => Param::Timestamp(*t),
        (FieldType::Datetime, S::TimestampMillisecond(Some(t), None)) => {
            Param::Timestamp(t.checked_mul(1000)?)
        }
        (FieldType::Datetime, S::TimestampSecond(Some(t), None)) => {
            Param::Timestamp(t.checked_mul(1_000_000)?)
        }
        (FieldType::Datetime, S::TimestampNanosecond(Some(t), None)) if t % 1000 == 0 => {
            Param::Timestamp(t / 1000)
        }
        _ => return None,
    })
}

pub(super) fn pg_type(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "text",
        FieldType::Integer => "int8",
        FieldType::Float => "float8",
        FieldType::Boolean => "bool",
        FieldType::Date => "date",
        FieldType::Datetime => "timestamp",
    }
}

pub(super) fn pg_param_type(p: &Param) -> &'static str {
    match p {
        Param::Text(_) => "text",
        Param::Int(_) => "int8",
        Param::Float(_) => "float8",
        Param::Bool(_) => "bool",
        Param::Date(_) => "date",
        Param::Timestamp(_) => "timestamp",
    }
}

/// The value PostgreSQL returns for the field (the same cast as the SELECT list),
/// strings under the byte-order collation "C" like DataFusion's comparisons.
pub(super) fn pg_operand(c: &str, t: FieldType) -> String {
    match t {
        FieldType::String => format!("({c}::text COLLATE \"C\")"),
        t => format!("{c}::{}", pg_type(t)),
    }
}

/// The UTF-8 bytes of a MySQL value: compared byte by byte, as DataFusion compares
/// strings, whatever the column's character set and collation.
pub(super) fn mysql_bytes(c: &str) -> String {
    format!("CAST(CONVERT({c} USING utf8mb4) AS BINARY)")
}

/// MariaDB's NO PAD binary collation of utf8mb4: it orders and groups by code point
/// (so as UTF-8 bytes), and `'a'` and `'a '` differ. The MySQL adapter names MySQL 8's
/// own, `utf8mb4_0900_bin`, in its place when the server is MySQL.
pub(crate) const MYSQL_EXACT_COLLATION: &str = "utf8mb4_nopad_bin";

/// A MySQL string as a group key or `min`/`max` operand, equal and ordered as
/// DataFusion's strings. Same result as [`mysql_bytes`], and MariaDB groups by a
/// collated string about twice as fast as by a cast to BINARY.
pub(super) fn mysql_exact_text(c: &str) -> String {
    format!("CONVERT({c} USING utf8mb4) COLLATE {MYSQL_EXACT_COLLATION}")
}

/// The boolean the SQLite reader makes of a stored value (`arrow.rs`, `to_bool`), as
/// 1/0; NULL for values the reader rejects.
pub(super) fn sqlite_bool(c: &str) -> String {
    format!(
        "(CASE WHEN typeof({c}) IN ('integer', 'real') THEN {c} <> 0 \
         WHEN lower({c}) IN ('true', '1') THEN 1 WHEN lower({c}) IN ('false', '0') THEN 0 END)"
    )
}

/// SQLite stores times as text in several forms (`HH:MM`, `HH:MM:SS`, `T`), whose text
/// order is not time order within a day; the date prefix is. So a time comparison is
/// pushed as the whole days that can hold matching rows, and DataFusion re-checks.
pub(super) fn sqlite_day_range(c: &str, cmp: Cmp, t: i64) -> Option<Pushed> {
    let day = i32::try_from(t.div_euclid(MICROS_PER_DAY)).ok()?;
    let lower = || {
        Fragment::default()
            .sql(&format!("({c} COLLATE BINARY >= "))
            .param(Param::Date(day))
            .sql(")")
    };
    // Day + 1 exists unless the time is in the year 9999; without it there is no upper
    // bound to push.
    let upper = || {
        crate::arrow::format_date(day.checked_add(1)?)?;
        Some(
            Fragment::default()
                .sql(&format!("({c} COLLATE BINARY < "))
                .param(Param::Date(day + 1))
                .sql(")"),
        )
    };
    let fragment = match cmp {
        Cmp::Gt | Cmp::Ge => lower(),
        Cmp::Lt | Cmp::Le => upper()?,
        Cmp::Eq => match upper() {
            Some(u) => lower().sql(" AND ").append(u),
            None => lower(),
        },
        Cmp::Ne => return None,
    };
    Some(Pushed {
        fragment: Fragment::default().sql("(").append(fragment).sql(")"),
        exact: false,
    })
}

/// A LIKE pattern as the equivalent GLOB pattern: GLOB is case-sensitive, as LIKE is
/// in DataFusion, while SQLite's LIKE ignores ASCII case.
pub(super) fn like_to_glob(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len());
    for ch in pattern.chars() {
        match ch {
            '%' => glob.push('*'),
            '_' => glob.push('?'),
            '*' => glob.push_str("[*]"),
            '?' => glob.push_str("[?]"),
            '[' => glob.push_str("[[]"),
            other => glob.push(other),
        }
    }
    glob
}
