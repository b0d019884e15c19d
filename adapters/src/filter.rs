//! The record filter language as DataFusion expressions.
//!
//! The records endpoint of every source kind but SQLite runs on DataFusion, and the
//! gateway applies grant row filters to cross-department queries the same way: both
//! turn a parsed [`yiwang_catalog::filter::Expr`] into a DataFusion [`Expr`] here, so a
//! filter means the same thing everywhere. No text is ever parsed as SQL.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, Like, Operator, binary_expr, ident, in_list, lit, not};
use yiwang_catalog::filter::{CmpOp, Expr as Filter, Literal};
use yiwang_catalog::model::{Field, FieldType};

use crate::arrow::{parse_date, parse_datetime};

/// The filter as a DataFusion expression over columns named like the fields.
///
/// `like` keeps the filter language's meaning: `%` and `_` are the only special
/// characters (a backslash is an ordinary one), and matching is case-sensitive, as
/// everywhere in DataFusion.
///
/// Literals keep the filter language's types (strings as `Utf8`, integers as `Int64`,
/// decimals as `Float64`); DataFusion coerces them to the column types when planning.
/// DataFusion parses `'YYYY-MM-DD'` and `'YYYY-MM-DD HH:MM:SS'` as dates and times, but
/// not `'YYYY-MM-DD HH:MM'`: when the field types are known, prefer
/// [`filter_to_expr_typed`], which types such literals itself.
pub fn filter_to_expr(filter: &Filter) -> Expr {
    convert(filter, &|_, literal| untyped(literal))
}

/// Like [`filter_to_expr`], with string literals compared to a date or datetime field
/// given as a date or time value (all the filter language's forms accepted), and
/// integers compared to a float field given as floats.
pub fn filter_to_expr_typed(filter: &Filter, fields: &[Field]) -> Expr {
    let typed = |field: &str, literal: &Literal| {
        let field_type = fields
            .iter()
            .find(|f| f.name == field)
            .map(|f| f.field_type);
        match (field_type, literal) {
            (Some(FieldType::Date), Literal::String(s)) => parse_date(s)
                .map_or_else(|| untyped(literal), |d| lit(ScalarValue::Date32(Some(d)))),
            (Some(FieldType::Datetime), Literal::String(s)) => parse_datetime(s).map_or_else(
                || untyped(literal),
                |t| lit(ScalarValue::TimestampMicrosecond(Some(t), None)),
            ),
            #[allow(clippy::cast_precision_loss)]
            (Some(FieldType::Float), Literal::Integer(n)) => lit(*n as f64),
            _ => untyped(literal),
        }
    };
    convert(filter, &typed)
}

fn untyped(literal: &Literal) -> Expr {
    match literal {
        Literal::String(s) => lit(s.clone()),
        Literal::Integer(n) => lit(*n),
        Literal::Float(x) => lit(*x),
        Literal::Bool(b) => lit(*b),
    }
}

fn convert(filter: &Filter, value: &dyn Fn(&str, &Literal) -> Expr) -> Expr {
    match filter {
        Filter::And(l, r) => convert(l, value).and(convert(r, value)),
        Filter::Or(l, r) => convert(l, value).or(convert(r, value)),
        Filter::Not(inner) => not(convert(inner, value)),
        Filter::Compare {
            field,
            op,
            value: v,
        } => {
            let op = match op {
                CmpOp::Eq => Operator::Eq,
                CmpOp::Ne => Operator::NotEq,
                CmpOp::Lt => Operator::Lt,
                CmpOp::Le => Operator::LtEq,
                CmpOp::Gt => Operator::Gt,
                CmpOp::Ge => Operator::GtEq,
            };
            binary_expr(ident(field), op, value(field, v))
        }
        // Only a tree built in code has an empty list: `x IN ()` holds for no row.
        Filter::In {
            values, negated, ..
        } if values.is_empty() => lit(*negated),
        Filter::In {
            field,
            values,
            negated,
        } => in_list(
            ident(field),
            values.iter().map(|v| value(field, v)).collect(),
            *negated,
        ),
        Filter::IsNull { field, negated } => {
            if *negated {
                ident(field).is_not_null()
            } else {
                ident(field).is_null()
            }
        }
        Filter::Like {
            field,
            pattern,
            negated,
        } => Expr::Like(Like::new(
            *negated,
            Box::new(ident(field)),
            // The filter language has no escape character; DataFusion's LIKE takes `\`
            // as one unless it is doubled.
            Box::new(lit(pattern.replace('\\', "\\\\"))),
            None,
            false,
        )),
        Filter::Between { field, low, high } => {
            ident(field).between(value(field, low), value(field, high))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yiwang_catalog::filter::parse;

    #[test]
    fn converts_every_form() {
        let filter = parse(
            "status = '责令关停' and (capacity >= 10 or not a in (1, 2.5)) and b is not null \
             and c not like '苏F%' and d between 1 and 3",
        )
        .unwrap();
        let text = filter_to_expr(&filter).to_string();
        assert_eq!(
            text,
            "status = Utf8(\"责令关停\") AND (capacity >= Int64(10) OR a NOT IN ([Int64(1), Float64(2.5)])) \
             AND b IS NOT NULL AND c NOT LIKE Utf8(\"苏F%\") AND d BETWEEN Int64(1) AND Int64(3)"
        );
    }

    #[tokio::test]
    async fn like_has_no_escape_character() {
        use datafusion::arrow::array::StringArray;
        use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema};
        use datafusion::arrow::record_batch::RecordBatch;
        use datafusion::prelude::SessionContext;
        use std::sync::Arc;

        let schema = Arc::new(Schema::new(vec![ArrowField::new(
            "s",
            DataType::Utf8,
            true,
        )]));
        let values = StringArray::from(vec!["a\\x", "a%", "ab", "A\\%"]);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap();
        let ctx = SessionContext::new();
        let frame = ctx.read_batch(batch).unwrap();
        let filter = parse(r"s like 'a\%'").unwrap();
        let rows = frame
            .filter(filter_to_expr(&filter))
            .unwrap()
            .collect()
            .await
            .unwrap();
        let kept = rows[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .iter()
            .flatten()
            .map(str::to_string)
            .collect::<Vec<_>>();
        assert_eq!(kept, ["a\\x"]);
    }

    #[test]
    fn types_dates_and_times_when_fields_are_known() {
        use yiwang_catalog::model::Sensitivity;
        let field = |name: &str, field_type| Field {
            name: name.to_string(),
            title: name.to_string(),
            field_type,
            sensitivity: Sensitivity::Public,
            masking: None,
        };
        let fields = [
            field("t", FieldType::Datetime),
            field("d", FieldType::Date),
            field("x", FieldType::Float),
        ];
        let filter = parse("t >= '2026-10-01 22:00' and d = '2026-10-01' and x > 3").unwrap();
        let text = filter_to_expr_typed(&filter, &fields).to_string();
        assert!(
            text.contains("TimestampMicrosecond(1790892000000000, None)"),
            "{text}"
        );
        assert!(text.contains("Date32(\"2026-10-01\")"), "{text}");
        assert!(text.contains("Float64(3)"), "{text}");
    }
}
