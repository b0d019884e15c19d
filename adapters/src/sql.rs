//! Translation of a read request into one parameterized SQL statement.
//!
//! Identifiers (table, columns, filter fields) must be plain `[A-Za-z_][A-Za-z0-9_]*`
//! names and are double-quoted on top of that; every literal is a `?` parameter. The
//! dialect is SQLite's, and kept to what PostgreSQL and MySQL (in ANSI mode) read the
//! same way, apart from the `rowid` paging key.

use rusqlite::types::Value;
use yiwang_catalog::filter::{CmpOp, Expr, Literal};
use yiwang_catalog::model::Field;

use crate::error::AdapterError;

/// SQLite's default limit on `?` parameters is 32766; stay well below it.
const MAX_PARAMS: usize = 10_000;

/// A statement and its parameters, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the only names that reach SQL.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Double-quotes a name that passed [`is_identifier`].
fn quote(name: &str) -> String {
    debug_assert!(is_identifier(name));
    format!("\"{name}\"")
}

fn checked(kind: &str, name: &str) -> Result<String, AdapterError> {
    if !is_identifier(name) {
        return Err(AdapterError::InvalidRequest(format!(
            "{kind} name '{name}' is not of the form [A-Za-z_][A-Za-z0-9_]*"
        )));
    }
    Ok(quote(name))
}

/// `SELECT rowid, <columns> FROM <table> WHERE (<filter>) AND rowid > ? ORDER BY rowid
/// LIMIT ?`: one page in rowid order. Keyset paging on rowid stays fast on every page,
/// unlike OFFSET, and is stable while the table grows.
pub(crate) fn select_page(
    table: &str,
    columns: &[Field],
    filter: Option<&Expr>,
    after_rowid: Option<i64>,
    fetch: usize,
) -> Result<Statement, AdapterError> {
    let table = checked("table", table)?;
    if columns.is_empty() {
        return Err(AdapterError::InvalidRequest(
            "no columns requested".to_string(),
        ));
    }
    let mut sql = String::from("SELECT rowid");
    for column in columns {
        sql.push_str(", ");
        sql.push_str(&checked("column", &column.name)?);
    }
    sql.push_str(" FROM ");
    sql.push_str(&table);
    let mut params = Vec::new();
    let mut conditions = Vec::new();
    if let Some(expr) = filter {
        let mut text = String::new();
        push_expr(expr, &mut text, &mut params)?;
        conditions.push(text);
    }
    if let Some(rowid) = after_rowid {
        conditions.push("rowid > ?".to_string());
        params.push(Value::Integer(rowid));
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(" ORDER BY rowid LIMIT ?");
    params.push(Value::Integer(i64::try_from(fetch).unwrap_or(i64::MAX)));
    if params.len() > MAX_PARAMS {
        return Err(AdapterError::InvalidRequest(format!(
            "the filter has more than {MAX_PARAMS} values"
        )));
    }
    Ok(Statement { sql, params })
}

/// Appends the condition for `expr`, fully parenthesized so that precedence never
/// depends on the SQL dialect.
fn push_expr(expr: &Expr, sql: &mut String, params: &mut Vec<Value>) -> Result<(), AdapterError> {
    match expr {
        Expr::And(l, r) | Expr::Or(l, r) => {
            sql.push('(');
            push_expr(l, sql, params)?;
            sql.push_str(if matches!(expr, Expr::And(..)) {
                " AND "
            } else {
                " OR "
            });
            push_expr(r, sql, params)?;
            sql.push(')');
        }
        Expr::Not(inner) => {
            sql.push_str("(NOT ");
            push_expr(inner, sql, params)?;
            sql.push(')');
        }
        Expr::Compare { field, op, value } => {
            let op = match op {
                CmpOp::Eq => "=",
                CmpOp::Ne => "<>",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            sql.push_str(&format!("({} {op} ?)", checked("field", field)?));
            params.push(value_of(value));
        }
        Expr::In {
            field,
            values,
            negated,
        } => {
            let field = checked("field", field)?;
            if values.is_empty() {
                // Only a tree built in code can have an empty list; the parser needs a
                // value. `x IN ()` is false for every row, and its negation true.
                sql.push_str(if *negated { "(1 = 1)" } else { "(1 = 0)" });
                return Ok(());
            }
            let marks = vec!["?"; values.len()].join(", ");
            let not = if *negated { "NOT " } else { "" };
            sql.push_str(&format!("({field} {not}IN ({marks}))"));
            params.extend(values.iter().map(value_of));
        }
        Expr::IsNull { field, negated } => {
            let not = if *negated { "NOT " } else { "" };
            sql.push_str(&format!("({} IS {not}NULL)", checked("field", field)?));
        }
        Expr::Like {
            field,
            pattern,
            negated,
        } => {
            let not = if *negated { "NOT " } else { "" };
            sql.push_str(&format!("({} {not}LIKE ?)", checked("field", field)?));
            params.push(Value::Text(pattern.clone()));
        }
        Expr::Between { field, low, high } => {
            sql.push_str(&format!("({} BETWEEN ? AND ?)", checked("field", field)?));
            params.push(value_of(low));
            params.push(value_of(high));
        }
    }
    Ok(())
}

/// Booleans are bound as 0/1, the way SQLite stores them.
fn value_of(literal: &Literal) -> Value {
    match literal {
        Literal::String(s) => Value::Text(s.clone()),
        Literal::Integer(n) => Value::Integer(*n),
        Literal::Float(x) => Value::Real(*x),
        Literal::Bool(b) => Value::Integer(i64::from(*b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yiwang_catalog::filter::parse;
    use yiwang_catalog::model::{FieldType, Sensitivity};

    fn col(name: &str) -> Field {
        Field {
            name: name.to_string(),
            title: name.to_string(),
            field_type: FieldType::String,
            sensitivity: Sensitivity::Public,
            masking: None,
        }
    }

    #[test]
    fn builds_parameterized_sql() {
        let filter = parse(
            "name = 'x'' or 1=1 --' or (a in (1, 2) and not b is null) and c not like '苏F%' and d between 1 and true",
        )
        .unwrap();
        let stmt = select_page("t", &[col("a"), col("b")], Some(&filter), Some(7), 11).unwrap();
        assert_eq!(
            stmt.sql,
            "SELECT rowid, \"a\", \"b\" FROM \"t\" WHERE ((\"name\" = ?) OR ((((\"a\" IN (?, ?)) AND (NOT (\"b\" IS NULL))) AND (\"c\" NOT LIKE ?)) AND (\"d\" BETWEEN ? AND ?))) AND rowid > ? ORDER BY rowid LIMIT ?"
        );
        assert_eq!(
            stmt.params,
            [
                Value::Text("x' or 1=1 --".into()),
                Value::Integer(1),
                Value::Integer(2),
                Value::Text("苏F%".into()),
                Value::Integer(1),
                Value::Integer(1),
                Value::Integer(7),
                Value::Integer(11),
            ]
        );
    }

    #[test]
    fn rejects_names_that_are_not_identifiers() {
        for table in ["", "t; drop table x", "\"t\"", "1t", "表"] {
            assert!(matches!(
                select_page(table, &[col("a")], None, None, 1),
                Err(AdapterError::InvalidRequest(_))
            ));
        }
        assert!(select_page("t", &[col("a\" --")], None, None, 1).is_err());
        assert!(select_page("t", &[], None, None, 1).is_err());
        let bad_field = Expr::IsNull {
            field: "x\"y".into(),
            negated: false,
        };
        assert!(select_page("t", &[col("a")], Some(&bad_field), None, 1).is_err());
    }
}
