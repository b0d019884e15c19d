//! DataFusion filters translated into the SQL of one dialect, with bound parameters.
//!
//! A filter is pushed to the source only in a form whose result is certain to equal
//! DataFusion's own: [`Exactness::Exact`] when the source keeps exactly the rows
//! DataFusion would, `Inexact` when it keeps a superset (DataFusion applies the filter
//! again on top), and nothing when the source could drop a row DataFusion would keep.
//! The comparison is always made on the value the provider reads (the same cast, the
//! same text), under a binary collation:
//!
//! | | SQLite | PostgreSQL | MySQL / MariaDB |
//! | --- | --- | --- | --- |
//! | string `= <> < …`, `IN` | `"c" COLLATE BINARY`, TEXT-affinity columns only | `"c"::text COLLATE "C"` | bytes: `CAST(CONVERT(c USING utf8mb4) AS BINARY)`; `=`/`IN` also as `c = ?` so an index helps |
//! | `LIKE` | as `GLOB` (case-sensitive) | `LIKE` under `COLLATE "C"` | `LIKE` under `utf8mb4_bin` |
//! | integer, float | numeric-affinity columns only | `::int8`, `::float8` | as is |
//! | boolean `=`/`<>` | the reader's 0/1/'true'/'false' rule in SQL | `::bool` | `(c <> 0)` |
//! | date | `'YYYY-MM-DD'` text (read strictly in that form) | `::date` | as is |
//! | datetime | inexact: the day range, as text | `::timestamp` | as is |
//! | `date_part('hour', t)` compared with an integer | not pushed | `EXTRACT(HOUR FROM t::timestamp)::int8` | `HOUR(t)` |
//!
//! Patterns with a backslash, `ILIKE`, casts of columns, and anything else are not
//! pushed. Identifiers only come from the validated field list; values are parameters.

use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use yiwang_catalog::model::{Field, FieldType};

use self::forms::{
    literal, mysql_bytes, pg_operand, pg_param_type, pg_type, sqlite_bool, sqlite_day_range,
};

mod forms;
mod grouping;
mod matching;

pub(crate) use self::forms::MYSQL_EXACT_COLLATION;
pub(crate) use self::grouping::{Aggregate, Grouped, Item};

/// Most values of one pushed `IN` list.
const MAX_IN_LIST: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// The type affinity of a SQLite column (see "Type Affinity" in SQLite's manual),
/// which decides how SQLite converts a bound value before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Affinity {
    Text,
    /// INTEGER, REAL or NUMERIC.
    Numeric,
    /// Declared without a type (or BLOB): values compare as stored.
    Blob,
}

impl Affinity {
    /// SQLite's rules for a declared column type.
    pub(crate) fn of_declared(declared: &str) -> Affinity {
        let t = declared.to_ascii_uppercase();
        if t.contains("INT") {
            Affinity::Numeric
        } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
            Affinity::Text
        } else if t.contains("BLOB") || t.is_empty() {
            Affinity::Blob
        } else {
            Affinity::Numeric
        }
    }
}

/// A bound value. Each driver binds it in its own type (see the backends).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00:00.
    Timestamp(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Sql(String),
    Param(Param),
}

/// SQL text with parameters in place, numbered when rendered.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Fragment(Vec<Part>);

impl Fragment {
    fn sql(mut self, s: &str) -> Self {
        self.0.push(Part::Sql(s.to_string()));
        self
    }

    fn param(mut self, p: Param) -> Self {
        self.0.push(Part::Param(p));
        self
    }

    fn append(mut self, other: Fragment) -> Self {
        self.0.extend(other.0);
        self
    }
}

/// A translated filter and whether the source keeps exactly its rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pushed {
    fragment: Fragment,
    exact: bool,
}

impl Pushed {
    fn exact(fragment: Fragment) -> Self {
        Pushed {
            fragment,
            exact: true,
        }
    }

    fn and(l: Pushed, r: Pushed) -> Pushed {
        Pushed {
            fragment: Fragment::default()
                .sql("(")
                .append(l.fragment)
                .sql(" AND ")
                .append(r.fragment)
                .sql(")"),
            exact: l.exact && r.exact,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn of(op: Operator) -> Option<Cmp> {
        Some(match op {
            Operator::Eq => Cmp::Eq,
            Operator::NotEq => Cmp::Ne,
            Operator::Lt => Cmp::Lt,
            Operator::LtEq => Cmp::Le,
            Operator::Gt => Cmp::Gt,
            Operator::GtEq => Cmp::Ge,
            _ => return None,
        })
    }

    /// The operator with its operands swapped: `1 < x` is `x > 1`.
    fn flipped(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            other => other,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => " = ",
            Cmp::Ne => " <> ",
            Cmp::Lt => " < ",
            Cmp::Le => " <= ",
            Cmp::Gt => " > ",
            Cmp::Ge => " >= ",
        }
    }
}

/// A statement built by [`Columns::select`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Select {
    pub sql: String,
    pub params: Vec<Param>,
    /// Every filter was pushed exactly (and so the limit, if any, too).
    pub exact: bool,
}

/// The columns of one table in one dialect: what can be pushed, and how.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    dialect: Dialect,
    fields: Vec<Field>,
    /// SQLite only: the affinity of each field's column, `None` when unknown (then
    /// nothing on that column is pushed).
    affinity: Vec<Option<Affinity>>,
}

impl Columns {
    /// `fields` must have passed [`crate::sql::is_identifier`].
    pub(crate) fn new(
        dialect: Dialect,
        fields: Vec<Field>,
        affinity: Vec<Option<Affinity>>,
    ) -> Self {
        debug_assert!(dialect != Dialect::Sqlite || affinity.len() == fields.len());
        Columns {
            dialect,
            fields,
            affinity,
        }
    }

    pub(crate) fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub(crate) fn quote(&self, name: &str) -> String {
        debug_assert!(crate::sql::is_identifier(name));
        match self.dialect {
            Dialect::Mysql => format!("`{name}`"),
            Dialect::Sqlite | Dialect::Postgres => format!("\"{name}\""),
        }
    }

    /// The expression selecting field `i`, cast so that every row decodes the same way.
    fn select_item(&self, i: usize) -> String {
        let field = &self.fields[i];
        let c = self.quote(&field.name);
        match self.dialect {
            Dialect::Postgres => format!("{c}::{}", pg_type(field.field_type)),
            Dialect::Sqlite | Dialect::Mysql => c,
        }
    }

    /// `SELECT <projection> FROM <table> WHERE <pushed filters> LIMIT <limit>`; the limit
    /// only when every filter is pushed exactly.
    pub(crate) fn select(
        &self,
        table_sql: &str,
        projection: &[usize],
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Select {
        let mut sql = String::from("SELECT ");
        if projection.is_empty() {
            sql.push('1');
        } else {
            let items: Vec<String> = projection.iter().map(|&i| self.select_item(i)).collect();
            sql.push_str(&items.join(", "));
        }
        sql.push_str(" FROM ");
        sql.push_str(table_sql);
        let mut exact = true;
        let mut conditions = Vec::new();
        for filter in filters {
            match self.translate(filter) {
                Some(pushed) => {
                    exact &= pushed.exact;
                    conditions.push(pushed.fragment);
                }
                None => exact = false,
            }
        }
        let mut params = Vec::new();
        for (n, condition) in conditions.into_iter().enumerate() {
            sql.push_str(if n == 0 { " WHERE " } else { " AND " });
            self.render(condition, &mut sql, &mut params);
        }
        if let Some(limit) = limit.filter(|_| exact) {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        Select { sql, params, exact }
    }

    fn render(&self, fragment: Fragment, sql: &mut String, params: &mut Vec<Param>) {
        for part in fragment.0 {
            match part {
                Part::Sql(s) => sql.push_str(&s),
                Part::Param(p) => {
                    match self.dialect {
                        Dialect::Postgres => {
                            sql.push_str(&format!("${}::{}", params.len() + 1, pg_param_type(&p)));
                        }
                        Dialect::Sqlite | Dialect::Mysql => sql.push('?'),
                    }
                    params.push(p);
                }
            }
        }
    }

    /// How DataFusion should treat `filter`: see the module documentation.
    pub(crate) fn pushdown(&self, filter: &Expr) -> TableProviderFilterPushDown {
        match self.translate(filter) {
            Some(p) if p.exact => TableProviderFilterPushDown::Exact,
            Some(_) => TableProviderFilterPushDown::Inexact,
            None => TableProviderFilterPushDown::Unsupported,
        }
    }

    pub(crate) fn translate(&self, e: &Expr) -> Option<Pushed> {
        match e {
            Expr::BinaryExpr(b) if b.op == Operator::And => {
                match (self.translate(&b.left), self.translate(&b.right)) {
                    (Some(l), Some(r)) => Some(Pushed::and(l, r)),
                    // One side alone keeps a superset of the rows.
                    (Some(one), None) | (None, Some(one)) => Some(Pushed {
                        exact: false,
                        ..one
                    }),
                    (None, None) => None,
                }
            }
            Expr::BinaryExpr(b) if b.op == Operator::Or => {
                let l = self.translate(&b.left)?;
                let r = self.translate(&b.right)?;
                Some(Pushed {
                    fragment: Fragment::default()
                        .sql("(")
                        .append(l.fragment)
                        .sql(" OR ")
                        .append(r.fragment)
                        .sql(")"),
                    exact: l.exact && r.exact,
                })
            }
            Expr::BinaryExpr(b) => {
                let cmp = Cmp::of(b.op)?;
                if let Some(i) = self.hour_of(&b.left) {
                    return self.compare_hour(i, cmp, &b.right);
                }
                if let Some(i) = self.hour_of(&b.right) {
                    return self.compare_hour(i, cmp.flipped(), &b.left);
                }
                if let Some(i) = self.field(&b.left) {
                    self.compare(i, cmp, &b.right)
                } else {
                    let i = self.field(&b.right)?;
                    self.compare(i, cmp.flipped(), &b.left)
                }
            }
            // The negation of a superset would drop rows: only exact filters negate.
            Expr::Not(inner) => self.translate(inner).filter(|p| p.exact).map(|p| {
                Pushed::exact(Fragment::default().sql("(NOT ").append(p.fragment).sql(")"))
            }),
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
                let i = self.field(inner)?;
                self.known(i)?;
                let not = if matches!(e, Expr::IsNotNull(_)) {
                    "NOT "
                } else {
                    ""
                };
                let c = self.quote(&self.fields[i].name);
                Some(Pushed::exact(
                    Fragment::default().sql(&format!("({c} IS {not}NULL)")),
                ))
            }
            Expr::Between(b) => {
                let i = self.field(&b.expr)?;
                let range = Pushed::and(
                    self.compare(i, Cmp::Ge, &b.low)?,
                    self.compare(i, Cmp::Le, &b.high)?,
                );
                if !b.negated {
                    return Some(range);
                }
                range.exact.then(|| {
                    Pushed::exact(
                        Fragment::default()
                            .sql("(NOT ")
                            .append(range.fragment)
                            .sql(")"),
                    )
                })
            }
            Expr::InList(list) => self.in_list(list),
            Expr::Like(like) => self.like(like),
            // A boolean column used as a condition.
            Expr::Column(_) => {
                let i = self.field(e)?;
                (self.fields[i].field_type == FieldType::Boolean)
                    .then(|| self.compare_param(i, Cmp::Eq, Param::Bool(true)))
                    .flatten()
            }
            _ => None,
        }
    }

    /// The field a bare column reference names.
    fn field(&self, e: &Expr) -> Option<usize> {
        let Expr::Column(c) = e else { return None };
        self.fields.iter().position(|f| f.name == c.name)
    }

    /// The datetime field of `date_part('hour', t)` (SQL's `EXTRACT(HOUR FROM t)`),
    /// possibly under DataFusion's cast to a wider integer.
    fn hour_of(&self, e: &Expr) -> Option<usize> {
        let e = match e {
            Expr::Cast(c) if c.field.data_type().is_integer() => c.expr.as_ref(),
            other => other,
        };
        let Expr::ScalarFunction(f) = e else {
            return None;
        };
        if f.name() != "date_part" || f.args.len() != 2 {
            return None;
        }
        let part = literal(FieldType::String, &f.args[0])?;
        if !matches!(&part, Param::Text(p) if p.eq_ignore_ascii_case("hour")) {
            return None;
        }
        let i = self.field(&f.args[1])?;
        (self.fields[i].field_type == FieldType::Datetime).then_some(i)
    }

    /// `hour(t) <cmp> n`, where the source computes the hour exactly as DataFusion
    /// does (0–23 of the stored local time, NULL for NULL). Not for SQLite, whose
    /// times are text in more than one accepted form.
    fn compare_hour(&self, i: usize, cmp: Cmp, value: &Expr) -> Option<Pushed> {
        let param = literal(FieldType::Integer, value)?;
        let c = self.quote(&self.fields[i].name);
        let hour = match self.dialect {
            Dialect::Postgres => format!("EXTRACT(HOUR FROM {c}::timestamp)::int8"),
            Dialect::Mysql => format!("HOUR({c})"),
            Dialect::Sqlite => return None,
        };
        Some(Pushed::exact(
            Fragment::default()
                .sql("(")
                .sql(&hour)
                .sql(cmp.sql())
                .param(param)
                .sql(")"),
        ))
    }

    /// `Some` when the column is known; SQLite needs its affinity for anything.
    fn known(&self, i: usize) -> Option<Option<Affinity>> {
        match self.dialect {
            Dialect::Sqlite => self.affinity[i].map(Some),
            Dialect::Postgres | Dialect::Mysql => Some(None),
        }
    }

    fn compare(&self, i: usize, cmp: Cmp, value: &Expr) -> Option<Pushed> {
        let param = literal(self.fields[i].field_type, value)?;
        self.compare_param(i, cmp, param)
    }

    fn compare_param(&self, i: usize, cmp: Cmp, param: Param) -> Option<Pushed> {
        let field = &self.fields[i];
        let c = self.quote(&field.name);
        let affinity = self.known(i)?;
        let op = cmp.sql();
        let one = |lhs: &str, param: Param| {
            Some(Pushed::exact(
                Fragment::default()
                    .sql("(")
                    .sql(lhs)
                    .sql(op)
                    .param(param)
                    .sql(")"),
            ))
        };
        if field.field_type == FieldType::Boolean && !matches!(cmp, Cmp::Eq | Cmp::Ne) {
            return None;
        }
        match (self.dialect, field.field_type) {
            (Dialect::Sqlite, FieldType::String) if affinity == Some(Affinity::Text) => {
                one(&format!("{c} COLLATE BINARY"), param)
            }
            (Dialect::Sqlite, FieldType::String) => None,
            (Dialect::Sqlite, FieldType::Integer | FieldType::Float)
                if affinity == Some(Affinity::Numeric) =>
            {
                one(&c, param)
            }
            (Dialect::Sqlite, FieldType::Integer | FieldType::Float) => None,
            (Dialect::Sqlite, FieldType::Boolean) => one(&sqlite_bool(&c), param),
            (Dialect::Sqlite, FieldType::Date) => one(&format!("{c} COLLATE BINARY"), param),
            (Dialect::Sqlite, FieldType::Datetime) => {
                let Param::Timestamp(t) = param else {
                    return None;
                };
                sqlite_day_range(&c, cmp, t)
            }
            (Dialect::Postgres, t) => one(&pg_operand(&c, t), param),
            (Dialect::Mysql, FieldType::String) => {
                let bytes = Fragment::default()
                    .sql("(")
                    .sql(&mysql_bytes(&c))
                    .sql(op)
                    .sql("CAST(")
                    .param(param.clone())
                    .sql(" AS BINARY))");
                if cmp != Cmp::Eq {
                    return Some(Pushed::exact(bytes));
                }
                // The plain comparison can use an index (its collation may match more
                // rows); the byte comparison makes the result exact.
                let plain = Fragment::default()
                    .sql("(")
                    .sql(&c)
                    .sql(" = ")
                    .param(param)
                    .sql(")");
                Some(Pushed::and(Pushed::exact(plain), Pushed::exact(bytes)))
            }
            (Dialect::Mysql, FieldType::Boolean) => one(&format!("({c} <> 0)"), param),
            (Dialect::Mysql, _) => one(&c, param),
        }
    }
}

#[cfg(test)]
mod tests;
