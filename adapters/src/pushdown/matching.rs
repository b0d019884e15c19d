//! `IN` lists and `LIKE` patterns, per dialect.

use datafusion::logical_expr::Like;
use datafusion::logical_expr::expr::InList;
use yiwang_catalog::model::FieldType;

use super::forms::{like_to_glob, literal, mysql_bytes, pg_operand};
use super::{Affinity, Columns, Dialect, Fragment, MAX_IN_LIST, Param, Pushed};

impl Columns {
    pub(super) fn in_list(&self, list: &InList) -> Option<Pushed> {
        let i = self.field(&list.expr)?;
        let field = &self.fields[i];
        let affinity = self.known(i)?;
        if list.list.is_empty() || list.list.len() > MAX_IN_LIST {
            return None;
        }
        let params: Vec<Param> = list
            .list
            .iter()
            .map(|v| literal(field.field_type, v))
            .collect::<Option<_>>()?;
        let c = self.quote(&field.name);
        let not = if list.negated { " NOT IN (" } else { " IN (" };
        let values = |wrap: bool| {
            let mut f = Fragment::default();
            for (n, p) in params.iter().enumerate() {
                f = f.sql(if n == 0 { "" } else { ", " });
                f = if wrap {
                    f.sql("CAST(").param(p.clone()).sql(" AS BINARY)")
                } else {
                    f.param(p.clone())
                };
            }
            f.sql(")")
        };
        let lhs = match (self.dialect, field.field_type) {
            (_, FieldType::Boolean) | (Dialect::Sqlite, FieldType::Datetime) => return None,
            (Dialect::Sqlite, FieldType::String) if affinity == Some(Affinity::Text) => {
                format!("{c} COLLATE BINARY")
            }
            (Dialect::Sqlite, FieldType::Integer | FieldType::Float)
                if affinity == Some(Affinity::Numeric) =>
            {
                c.clone()
            }
            (Dialect::Sqlite, FieldType::Date) => format!("{c} COLLATE BINARY"),
            (Dialect::Sqlite, _) => return None,
            (Dialect::Postgres, t) => pg_operand(&c, t),
            (Dialect::Mysql, FieldType::String) => {
                let bytes = Fragment::default()
                    .sql("(")
                    .sql(&mysql_bytes(&c))
                    .sql(not)
                    .append(values(true))
                    .sql(")");
                if list.negated {
                    return Some(Pushed::exact(bytes));
                }
                let plain = Fragment::default()
                    .sql("(")
                    .sql(&c)
                    .sql(" IN (")
                    .append(values(false))
                    .sql(")");
                return Some(Pushed::and(Pushed::exact(plain), Pushed::exact(bytes)));
            }
            (Dialect::Mysql, _) => c.clone(),
        };
        Some(Pushed::exact(
            Fragment::default()
                .sql("(")
                .sql(&lhs)
                .sql(not)
                .append(values(false))
                .sql(")"),
        ))
    }

    pub(super) fn like(&self, like: &Like) -> Option<Pushed> {
        if like.case_insensitive || like.escape_char.is_some() {
            return None;
        }
        let i = self.field(&like.expr)?;
        let field = &self.fields[i];
        if field.field_type != FieldType::String {
            return None;
        }
        let Some(Param::Text(pattern)) = literal(FieldType::String, &like.pattern) else {
            return None;
        };
        // Escapes differ between engines; such patterns stay with DataFusion.
        if pattern.contains('\\') {
            return None;
        }
        let affinity = self.known(i)?;
        let c = self.quote(&field.name);
        let not = if like.negated { " NOT" } else { "" };
        let (lhs, op, pattern) = match self.dialect {
            Dialect::Sqlite if affinity == Some(Affinity::Text) => {
                (c, format!("{not} GLOB "), like_to_glob(&pattern))
            }
            Dialect::Sqlite => return None,
            Dialect::Postgres => (
                pg_operand(&c, FieldType::String),
                format!("{not} LIKE "),
                pattern,
            ),
            Dialect::Mysql => (
                format!("CONVERT({c} USING utf8mb4) COLLATE utf8mb4_bin"),
                format!("{not} LIKE "),
                pattern,
            ),
        };
        Some(Pushed::exact(
            Fragment::default()
                .sql("(")
                .sql(&lhs)
                .sql(&op)
                .param(Param::Text(pattern))
                .sql(")"),
        ))
    }
}
