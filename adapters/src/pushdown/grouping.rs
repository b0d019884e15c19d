//! `GROUP BY` and aggregates computed by the source, in forms whose result equals
//! DataFusion's own (see [`crate::aggregate`] for when a query's aggregation is handed
//! over).
//!
//! A group key groups the values the provider would read, under a binary collation;
//! an aggregate reads the same values as the SELECT list:
//!
//! | | SQLite | PostgreSQL | MySQL / MariaDB |
//! | --- | --- | --- | --- |
//! | key: string | `c COLLATE BINARY`, TEXT affinity | `c::text COLLATE "C"` | `CONVERT(c USING utf8mb4)` under a NO PAD binary collation |
//! | key: integer | numeric affinity | `c::int8` | as is |
//! | key: date | `c COLLATE BINARY` | `c::date` | as is |
//! | key: datetime | – (several text forms) | `c::timestamp` | as is |
//! | key: boolean | – | `c::bool` | – |
//! | key: float | – (`-0.0`, NaN) | – | – |
//! | `count(*)`, `count(c)` | yes | yes | yes |
//! | `sum` of integer, float | numeric affinity | `SUM(c::int8)::int8`, `SUM(c::float8)` | `SUM(c)` (a DECIMAL for integers, read as text) |
//! | `min`, `max` | integer, float (numeric affinity), string (TEXT affinity) | all but boolean | integer, float, string (as the key) |
//! | `avg` of integer, float | numeric affinity | `AVG(c::float8)` | – (DECIMAL with 4 places) |
//!
//! SQLite keeps whatever a row holds, so `sum`, `avg`, `min` or `max` over a column
//! that holds a value the reader would reject (text in a numeric column, a blob)
//! returns that value instead, and reading it fails as reading the row would have: the
//! source never silently sums around a bad value. (`count(c)` counts such values.)
//!
//! Float sums may differ from DataFusion's in the last bits: both add in an order of
//! their own.

use yiwang_catalog::model::FieldType;

use super::forms::{mysql_exact_text, pg_operand};
use super::{Affinity, Columns, Dialect, Param};

/// An aggregate function over one table's fields (by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    CountAll,
    Count(usize),
    Sum(usize),
    Min(usize),
    Max(usize),
    Avg(usize),
}

/// The SQL of one output column of a grouped statement, and the type it is read as.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub sql: String,
    pub field_type: FieldType,
}

/// `SELECT <items> FROM <table> WHERE <filters> GROUP BY <keys>`, built by
/// [`Columns::grouped`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grouped {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Columns {
    /// The SQL grouping field `i` as DataFusion would, or `None`.
    pub(crate) fn group_key(&self, i: usize) -> Option<Item> {
        let field = self.fields.get(i)?;
        let t = field.field_type;
        let c = self.quote(&field.name);
        let affinity = self.known(i)?;
        let sql = match (self.dialect, t) {
            (_, FieldType::Float) => return None,
            (Dialect::Sqlite, FieldType::String) if affinity == Some(Affinity::Text) => {
                format!("{c} COLLATE BINARY")
            }
            (Dialect::Sqlite, FieldType::Integer) if affinity == Some(Affinity::Numeric) => c,
            (Dialect::Sqlite, FieldType::Date) => format!("{c} COLLATE BINARY"),
            (Dialect::Sqlite, _) => return None,
            (Dialect::Postgres, t) => pg_operand(&c, t),
            (Dialect::Mysql, FieldType::String) => mysql_exact_text(&c),
            (Dialect::Mysql, FieldType::Integer | FieldType::Date | FieldType::Datetime) => c,
            (Dialect::Mysql, FieldType::Boolean) => return None,
        };
        Some(Item { sql, field_type: t })
    }

    /// The SQL computing `agg` as DataFusion would, or `None`.
    pub(crate) fn aggregate(&self, agg: Aggregate) -> Option<Item> {
        use Aggregate as A;
        let count = |sql: String| {
            Some(Item {
                sql,
                field_type: FieldType::Integer,
            })
        };
        let i = match agg {
            A::CountAll => return count("COUNT(*)".into()),
            A::Count(i) | A::Sum(i) | A::Min(i) | A::Max(i) | A::Avg(i) => i,
        };
        let field = self.fields.get(i)?;
        let t = field.field_type;
        let c = self.quote(&field.name);
        let affinity = self.known(i)?;
        let numeric = matches!(t, FieldType::Integer | FieldType::Float);
        let (sql, field_type) = match (self.dialect, agg) {
            (Dialect::Sqlite, agg) => {
                // What the reader accepts in this column, and the function over it.
                let (bad, inner, out) = match (agg, t, affinity) {
                    (A::Count(_), _, _) => (None, format!("COUNT({c})"), FieldType::Integer),
                    (A::Sum(_), _, Some(Affinity::Numeric)) if numeric => {
                        (Some("'text', 'blob'"), format!("SUM({c})"), t)
                    }
                    (A::Avg(_), _, Some(Affinity::Numeric)) if numeric => (
                        Some("'text', 'blob'"),
                        format!("AVG({c})"),
                        FieldType::Float,
                    ),
                    (A::Min(_) | A::Max(_), _, Some(Affinity::Numeric)) if numeric => {
                        (Some("'text', 'blob'"), min_max(agg, &c), t)
                    }
                    (A::Min(_) | A::Max(_), FieldType::String, Some(Affinity::Text)) => (
                        Some("'blob'"),
                        min_max(agg, &format!("{c} COLLATE BINARY")),
                        t,
                    ),
                    _ => return None,
                };
                let sql = match bad {
                    // A bad value stands in for the result, so reading it fails.
                    Some(bad) => format!(
                        "(CASE WHEN MAX(typeof({c}) IN ({bad})) \
                         THEN MAX(CASE WHEN typeof({c}) IN ({bad}) THEN {c} END) ELSE {inner} END)"
                    ),
                    None => inner,
                };
                (sql, out)
            }
            (_, A::Count(_)) => (format!("COUNT({c})"), FieldType::Integer),
            (Dialect::Postgres, A::Sum(_)) if t == FieldType::Integer => {
                (format!("SUM({c}::int8)::int8"), t)
            }
            (Dialect::Postgres, A::Sum(_)) if t == FieldType::Float => {
                (format!("SUM({c}::float8)"), t)
            }
            (Dialect::Postgres, A::Avg(_)) if numeric => {
                (format!("AVG({c}::float8)"), FieldType::Float)
            }
            (Dialect::Postgres, A::Min(_) | A::Max(_)) if t != FieldType::Boolean => {
                (min_max(agg, &pg_operand(&c, t)), t)
            }
            (Dialect::Mysql, A::Sum(_)) if numeric => (format!("SUM({c})"), t),
            (Dialect::Mysql, A::Min(_) | A::Max(_)) if numeric => (min_max(agg, &c), t),
            (Dialect::Mysql, A::Min(_) | A::Max(_)) if t == FieldType::String => {
                (min_max(agg, &mysql_exact_text(&c)), t)
            }
            _ => return None,
        };
        Some(Item { sql, field_type })
    }

    /// The grouped statement: `items` in order (or `1` when none is wanted), grouped
    /// by `keys`, over the rows the filters keep. `None` unless every filter is pushed
    /// exactly.
    pub(crate) fn grouped(
        &self,
        table_sql: &str,
        items: &[&str],
        keys: &[&str],
        filters: &[datafusion::logical_expr::Expr],
        limit: Option<usize>,
    ) -> Option<Grouped> {
        let mut sql = String::from("SELECT ");
        match (items.is_empty(), keys.is_empty()) {
            (false, _) => sql.push_str(&items.join(", ")),
            (true, false) => sql.push('1'),
            // Without keys the answer is one row, whatever the table holds.
            (true, true) => sql.push_str("COUNT(*)"),
        }
        sql.push_str(" FROM ");
        sql.push_str(table_sql);
        let mut params = Vec::new();
        for (n, filter) in filters.iter().enumerate() {
            let pushed = self.translate(filter).filter(|p| p.exact)?;
            sql.push_str(if n == 0 { " WHERE " } else { " AND " });
            self.render(pushed.fragment, &mut sql, &mut params);
        }
        if !keys.is_empty() {
            sql.push_str(" GROUP BY ");
            sql.push_str(&keys.join(", "));
        }
        if let Some(limit) = limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        Some(Grouped { sql, params })
    }
}

fn min_max(agg: Aggregate, operand: &str) -> String {
    let f = if matches!(agg, Aggregate::Min(_)) {
        "MIN"
    } else {
        "MAX"
    };
    format!("{f}({operand})")
}
