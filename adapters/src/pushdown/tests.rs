use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, col, in_list, lit};
use yiwang_catalog::model::Sensitivity;

use super::*;

fn field(name: &str, field_type: FieldType) -> Field {
    Field {
        name: name.to_string(),
        title: name.to_string(),
        field_type,
        sensitivity: Sensitivity::Public,
        masking: None,
    }
}

fn fields() -> Vec<Field> {
    vec![
        field("s", FieldType::String),
        field("n", FieldType::Integer),
        field("x", FieldType::Float),
        field("b", FieldType::Boolean),
        field("d", FieldType::Date),
        field("t", FieldType::Datetime),
    ]
}

fn columns(dialect: Dialect) -> Columns {
    let affinity = match dialect {
        Dialect::Sqlite => vec![
            Some(Affinity::Text),
            Some(Affinity::Numeric),
            Some(Affinity::Numeric),
            Some(Affinity::Numeric),
            Some(Affinity::Numeric),
            Some(Affinity::Numeric),
        ],
        _ => Vec::new(),
    };
    Columns::new(dialect, fields(), affinity)
}

fn ts(text: &str) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        crate::arrow::parse_datetime(text),
        None,
    ))
}

fn date(text: &str) -> Expr {
    lit(ScalarValue::Date32(crate::arrow::parse_date(text)))
}

fn sql(dialect: Dialect, filters: &[Expr], limit: Option<usize>) -> Select {
    columns(dialect).select("\"t1\"", &[0, 1], filters, limit)
}

#[test]
fn postgres_compares_the_values_it_selects() {
    let select = sql(
        Dialect::Postgres,
        &[
            col("s").eq(lit("abc")),
            col("n").gt_eq(lit(10i64)).or(col("x").lt(lit(2.5))),
            col("t").gt(ts("2026-10-01 22:00:00")),
            col("d").between(date("2026-10-01"), date("2026-10-31")),
        ],
        Some(5),
    );
    assert_eq!(
        select.sql,
        "SELECT \"s\"::text, \"n\"::int8 FROM \"t1\" WHERE ((\"s\"::text COLLATE \"C\") = $1::text) \
         AND ((\"n\"::int8 >= $2::int8) OR (\"x\"::float8 < $3::float8)) \
         AND (\"t\"::timestamp > $4::timestamp) \
         AND ((\"d\"::date >= $5::date) AND (\"d\"::date <= $6::date)) LIMIT 5"
    );
    assert!(select.exact);
    assert_eq!(select.params[0], Param::Text("abc".into()));
    assert_eq!(select.params[3], Param::Timestamp(1_790_892_000_000_000));
}

#[test]
fn sqlite_pushes_times_as_day_ranges_and_like_as_glob() {
    let c = columns(Dialect::Sqlite);
    let filter = col("t").gt_eq(ts("2026-10-01 22:00:00"));
    assert_eq!(c.pushdown(&filter), TableProviderFilterPushDown::Inexact);
    let select = sql(Dialect::Sqlite, &[filter], Some(3));
    assert_eq!(
        select.sql,
        "SELECT \"s\", \"n\" FROM \"t1\" WHERE ((\"t\" COLLATE BINARY >= ?))"
    );
    assert!(!select.exact, "no limit under an inexact filter");
    assert_eq!(select.params, [Param::Date(20_727)]);

    let like = col("s").like(lit("苏F_*%"));
    assert_eq!(c.pushdown(&like), TableProviderFilterPushDown::Exact);
    let select = sql(Dialect::Sqlite, &[like], None);
    assert_eq!(
        select.sql,
        "SELECT \"s\", \"n\" FROM \"t1\" WHERE (\"s\" GLOB ?)"
    );
    assert_eq!(select.params, [Param::Text("苏F?[*]*".into())]);

    assert_eq!(
        c.pushdown(&col("t").not_eq(ts("2026-10-01 22:00:00"))),
        TableProviderFilterPushDown::Unsupported
    );
    // The negation of a superset could drop rows.
    assert_eq!(
        c.pushdown(&Expr::Not(Box::new(col("t").gt(ts("2026-10-01 22:00:00"))))),
        TableProviderFilterPushDown::Unsupported
    );
}

#[test]
fn sqlite_needs_the_affinity_that_keeps_comparisons_exact() {
    let text_in_numeric_column = Columns::new(
        Dialect::Sqlite,
        vec![
            field("s", FieldType::String),
            field("n", FieldType::Integer),
        ],
        vec![Some(Affinity::Numeric), Some(Affinity::Text)],
    );
    for filter in [col("s").eq(lit("7")), col("n").gt(lit(5i64))] {
        assert_eq!(
            text_in_numeric_column.pushdown(&filter),
            TableProviderFilterPushDown::Unsupported
        );
    }
    let unknown = Columns::new(
        Dialect::Sqlite,
        vec![field("s", FieldType::String)],
        vec![None],
    );
    assert_eq!(
        unknown.pushdown(&col("s").is_null()),
        TableProviderFilterPushDown::Unsupported
    );
}

#[test]
fn mysql_compares_strings_as_bytes() {
    let c = columns(Dialect::Mysql);
    let select = c.select(
        "`t1`",
        &[0],
        &[
            col("s").eq(lit("abc")),
            col("s").lt(lit("b")),
            in_list(col("s"), vec![lit("a"), lit("B")], true),
            col("s").not_like(lit("a_c%")),
            col("b").eq(lit(true)),
        ],
        None,
    );
    assert_eq!(
        select.sql,
        "SELECT `s` FROM `t1` WHERE ((`s` = ?) AND (CAST(CONVERT(`s` USING utf8mb4) AS BINARY) = CAST(? AS BINARY))) \
         AND (CAST(CONVERT(`s` USING utf8mb4) AS BINARY) < CAST(? AS BINARY)) \
         AND (CAST(CONVERT(`s` USING utf8mb4) AS BINARY) NOT IN (CAST(? AS BINARY), CAST(? AS BINARY))) \
         AND (CONVERT(`s` USING utf8mb4) COLLATE utf8mb4_bin NOT LIKE ?) \
         AND ((`b` <> 0) = ?)"
    );
    assert!(select.exact);
    assert_eq!(select.params.len(), 7);
}

#[test]
fn leaves_what_it_cannot_translate_to_datafusion() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
        let c = columns(dialect);
        for filter in [
            // A cast of the column (an integer compared with a fraction).
            Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(col("n")),
                datafusion::arrow::datatypes::DataType::Float64,
            ))
            .gt(lit(2.5)),
            col("s").like(lit("a\\%")),
            col("s").ilike(lit("a%")),
            col("s").eq(lit(ScalarValue::Utf8(None))),
            col("b").gt(lit(false)),
            col("x").eq(lit(f64::NAN)),
            col("other").eq(lit(1i64)),
            col("s").eq(col("s")),
        ] {
            assert_eq!(
                c.pushdown(&filter),
                TableProviderFilterPushDown::Unsupported,
                "{dialect:?}: {filter}"
            );
        }
        // One pushable side of an AND is still worth pushing, as a superset.
        let half = col("n").eq(lit(1i64)).and(col("s").like(lit("a\\%")));
        assert_eq!(c.pushdown(&half), TableProviderFilterPushDown::Inexact);
        // An OR needs both sides.
        let either = col("n").eq(lit(1i64)).or(col("s").like(lit("a\\%")));
        assert_eq!(
            c.pushdown(&either),
            TableProviderFilterPushDown::Unsupported
        );
    }
}

#[test]
fn literal_on_the_left_is_flipped_and_booleans_stand_alone() {
    let c = columns(Dialect::Postgres);
    let select = c.select(
        "\"t1\"",
        &[],
        &[lit(3i64).lt(col("n")), col("b"), col("s").is_not_null()],
        Some(1),
    );
    assert_eq!(
        select.sql,
        "SELECT 1 FROM \"t1\" WHERE (\"n\"::int8 > $1::int8) AND (\"b\"::bool = $2::bool) \
         AND (\"s\" IS NOT NULL) LIMIT 1"
    );
}

#[test]
fn declared_types_map_to_sqlite_affinities() {
    for (declared, affinity) in [
        ("INTEGER", Affinity::Numeric),
        ("BIGINT", Affinity::Numeric),
        ("VARCHAR(20)", Affinity::Text),
        ("TEXT", Affinity::Text),
        ("CLOB", Affinity::Text),
        ("BLOB", Affinity::Blob),
        ("", Affinity::Blob),
        ("REAL", Affinity::Numeric),
        ("DATETIME", Affinity::Numeric),
        ("BOOLEAN", Affinity::Numeric),
    ] {
        assert_eq!(Affinity::of_declared(declared), affinity, "{declared}");
    }
}

#[test]
fn the_hour_of_a_time_is_pushed_to_postgresql_and_mysql_only() {
    use datafusion::functions::datetime::expr_fn::date_part;
    let night = || {
        date_part(lit("hour"), col("t"))
            .gt_eq(lit(22i32))
            .or(lit(5i64).gt(date_part(lit("HOUR"), col("t"))))
    };
    let select = sql(Dialect::Postgres, &[night()], Some(4));
    assert_eq!(
        select.sql,
        "SELECT \"s\"::text, \"n\"::int8 FROM \"t1\" WHERE \
         ((EXTRACT(HOUR FROM \"t\"::timestamp)::int8 >= $1::int8) \
         OR (EXTRACT(HOUR FROM \"t\"::timestamp)::int8 < $2::int8)) LIMIT 4"
    );
    assert_eq!(select.params, [Param::Int(22), Param::Int(5)]);
    let select = sql(Dialect::Mysql, &[night()], None);
    assert_eq!(
        select.sql,
        "SELECT `s`, `n` FROM \"t1\" WHERE ((HOUR(`t`) >= ?) OR (HOUR(`t`) < ?))"
    );
    assert!(select.exact);
    assert_eq!(
        columns(Dialect::Sqlite).pushdown(&night()),
        TableProviderFilterPushDown::Unsupported
    );
    // Other parts, other columns and other types stay with DataFusion.
    let pg = columns(Dialect::Postgres);
    for e in [
        date_part(lit("minute"), col("t")).eq(lit(0i64)),
        date_part(lit("hour"), col("s")).eq(lit(0i64)),
        date_part(lit("hour"), col("t")).eq(lit(0.5)),
    ] {
        assert_eq!(
            pg.pushdown(&e),
            TableProviderFilterPushDown::Unsupported,
            "{e}"
        );
    }
}
