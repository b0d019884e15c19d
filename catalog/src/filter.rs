//! The record filter language.
//!
//! Consumers pass `filter=<expr>` when reading records, and stewards attach row filters
//! to grants, in this one small language. A filter is parsed into an [`Expr`] and
//! adapters translate the tree into their own query form with bound parameters: the
//! text of a filter is never spliced into SQL.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | primary
//! primary := "(" expr ")" | ident cmp_op literal | ident ["not"] "in" "(" literal ("," literal)* ")"
//!          | ident "is" ["not"] "null" | ident ["not"] "like" string
//!          | ident "between" literal "and" literal
//! cmp_op  := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal := string | number | "true" | "false"
//! ident   := [A-Za-z_][A-Za-z0-9_]*
//! ```
//!
//! Keywords are case-insensitive and cannot be used as field names. Strings are quoted
//! with `'`, and `''` inside a string stands for one quote. Numbers are integers or
//! decimals with an optional leading `-` (no exponent). Dates and times are strings and
//! compare as strings, so they are written the way sources store them:
//! `'2026-10-01'`, `'2026-10-01 22:00'`, `'2026-10-01 22:00:00'`.
//!
//! Example: `status = '责令关停' and capacity >= 10`.
//!
//! Positions in error messages are 0-based character offsets into the filter text.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::CatalogError;
use crate::model::{Field, FieldType};

/// Longest accepted filter text, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest accepted nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 32;
/// Most conditions (comparisons, `in`, `is null`, `like`, `between`) in one filter.
pub const MAX_TERMS: usize = 256;

/// A parsed filter. `and` and `or` associate to the left: `a and b and c` is
/// `And(And(a, b), c)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        field: String,
        op: CmpOp,
        value: Literal,
    },
    In {
        field: String,
        values: Vec<Literal>,
        negated: bool,
    },
    IsNull {
        field: String,
        negated: bool,
    },
    Like {
        field: String,
        pattern: String,
        negated: bool,
    },
    Between {
        field: String,
        low: Literal,
        high: Literal,
    },
}

/// Comparison operator. `<>` parses as [`CmpOp::Ne`] and prints as `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

/// A constant in a filter. Floats are always finite.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

/// Why a filter text does not parse. The message names the position and what was
/// expected, e.g. `expected a value after '=' at position 9, found end of input`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// 0-based character offset where the problem was found.
    pub position: usize,
    /// The full human-readable message, position included.
    pub message: String,
}

impl FilterError {
    fn at(position: usize, what: impl fmt::Display) -> Self {
        FilterError {
            position,
            message: format!("{what} at position {position}"),
        }
    }
}

impl From<FilterError> for CatalogError {
    fn from(err: FilterError) -> Self {
        CatalogError::invalid("filter", err.message)
    }
}

/// Parses a filter text into its syntax tree.
pub fn parse(input: &str) -> Result<Expr, FilterError> {
    parse::parse(input)
}

impl Expr {
    /// Every field name the filter refers to.
    pub fn fields(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Expr::And(l, r) | Expr::Or(l, r) => {
                l.collect_fields(out);
                r.collect_fields(out);
            }
            Expr::Not(e) => e.collect_fields(out),
            Expr::Compare { field, .. }
            | Expr::In { field, .. }
            | Expr::IsNull { field, .. }
            | Expr::Like { field, .. }
            | Expr::Between { field, .. } => {
                out.insert(field.as_str());
            }
        }
    }

    /// Both conditions must hold; used to add a grant's row filter to a consumer's
    /// filter.
    pub fn and(self, other: Expr) -> Expr {
        Expr::And(Box::new(self), Box::new(other))
    }
}

/// Checks that every field exists in `fields` and every literal fits its field's type:
/// numbers for integer and float fields, `true`/`false` for boolean fields (which only
/// support `=` and `!=`), strings for string, date and datetime fields (dates as
/// `YYYY-MM-DD`, times as `YYYY-MM-DD HH:MM[:SS]`). `like` applies to string fields only.
pub fn validate(expr: &Expr, fields: &[Field]) -> Result<(), CatalogError> {
    let lookup = |name: &str| -> Result<FieldType, CatalogError> {
        fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.field_type)
            .ok_or_else(|| CatalogError::invalid("filter", format!("unknown field '{name}'")))
    };
    match expr {
        Expr::And(l, r) | Expr::Or(l, r) => {
            validate(l, fields)?;
            validate(r, fields)
        }
        Expr::Not(e) => validate(e, fields),
        Expr::Compare { field, op, value } => {
            let ty = lookup(field)?;
            if ty == FieldType::Boolean && op.is_ordering() {
                return Err(CatalogError::invalid(
                    "filter",
                    format!("field '{field}' is boolean and supports only '=' and '!='"),
                ));
            }
            check_literal(field, ty, value)
        }
        Expr::In { field, values, .. } => {
            let ty = lookup(field)?;
            values.iter().try_for_each(|v| check_literal(field, ty, v))
        }
        Expr::IsNull { field, .. } => lookup(field).map(|_| ()),
        Expr::Like { field, .. } => match lookup(field)? {
            FieldType::String => Ok(()),
            ty => Err(CatalogError::invalid(
                "filter",
                format!(
                    "'like' needs a string field, but field '{field}' is {}",
                    ty.as_str()
                ),
            )),
        },
        Expr::Between { field, low, high } => {
            let ty = lookup(field)?;
            if ty == FieldType::Boolean {
                return Err(CatalogError::invalid(
                    "filter",
                    format!("field '{field}' is boolean and supports only '=' and '!='"),
                ));
            }
            check_literal(field, ty, low)?;
            check_literal(field, ty, high)
        }
    }
}

fn check_literal(field: &str, ty: FieldType, value: &Literal) -> Result<(), CatalogError> {
    let fits = match (ty, value) {
        (FieldType::Integer | FieldType::Float, Literal::Integer(_) | Literal::Float(_)) => true,
        (FieldType::Boolean, Literal::Bool(_)) => true,
        (FieldType::String, Literal::String(_)) => true,
        (FieldType::Date, Literal::String(s)) => {
            if !is_date(s) {
                return Err(CatalogError::invalid(
                    "filter",
                    format!("field '{field}' is a date, written 'YYYY-MM-DD', not {value}"),
                ));
            }
            true
        }
        (FieldType::Datetime, Literal::String(s)) => {
            if !is_datetime(s) {
                return Err(CatalogError::invalid(
                    "filter",
                    format!(
                        "field '{field}' is a datetime, written 'YYYY-MM-DD HH:MM[:SS]', not {value}"
                    ),
                ));
            }
            true
        }
        _ => false,
    };
    if fits {
        return Ok(());
    }
    let expected = match ty {
        FieldType::Integer | FieldType::Float => "a number",
        FieldType::Boolean => "true or false",
        FieldType::String | FieldType::Date | FieldType::Datetime => "a quoted string",
    };
    Err(CatalogError::invalid(
        "filter",
        format!(
            "field '{field}' is {} and needs {expected}, not {value}",
            ty.as_str()
        ),
    ))
}

/// `YYYY-MM-DD` with a plausible month and day.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    matches!((num(0..4), num(5..7), num(8..10)), (Some(_), Some(m), Some(d)) if (1..=12).contains(&m) && (1..=31).contains(&d))
}

/// A date, optionally followed by ` HH:MM`, `:SS` and a fraction of a second. A bare
/// date is accepted too: it compares before every time of that day.
fn is_datetime(s: &str) -> bool {
    if s.len() < 10 || !s.is_char_boundary(10) || !is_date(&s[..10]) {
        return false;
    }
    let rest = &s.as_bytes()[10..];
    if rest.is_empty() {
        return true;
    }
    let two = |i: usize, max: u8| -> bool {
        rest.len() >= i + 2
            && rest[i].is_ascii_digit()
            && rest[i + 1].is_ascii_digit()
            && (rest[i] - b'0') * 10 + (rest[i + 1] - b'0') <= max
    };
    if rest[0] != b' ' || !two(1, 23) || rest.get(3) != Some(&b':') || !two(4, 59) {
        return false;
    }
    match &rest[6..] {
        [] => true,
        [b':', ..] if two(7, 59) => match &rest[9..] {
            [] => true,
            [b'.', frac @ ..] => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
            _ => false,
        },
        _ => false,
    }
}

// ---------------------------------------------------------------------------------
// Printing

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => {
                f.write_str("'")?;
                f.write_str(&s.replace('\'', "''"))?;
                f.write_str("'")
            }
            Literal::Integer(n) => write!(f, "{n}"),
            Literal::Float(x) => {
                // Rust prints the shortest text that reads back as the same f64, without
                // an exponent; a decimal point keeps it from reading back as an integer.
                let text = x.to_string();
                f.write_str(&text)?;
                if !text.contains('.') {
                    f.write_str(".0")?;
                }
                Ok(())
            }
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prints the canonical form: lowercase keywords, single spaces, and parentheses only
/// where needed to parse back to the same tree. For any tree returned by [`parse`],
/// `parse(&expr.to_string()) == Ok(expr)`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Left associativity means a left operand of the same operator needs no
            // parentheses, but a right one does.
            Expr::Or(l, r) => {
                write!(f, "{l} or ")?;
                write_grouped(f, r, matches!(**r, Expr::Or(..)))
            }
            Expr::And(l, r) => {
                write_grouped(f, l, matches!(**l, Expr::Or(..)))?;
                f.write_str(" and ")?;
                write_grouped(f, r, matches!(**r, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Not(e) => {
                f.write_str("not ")?;
                write_grouped(f, e, matches!(**e, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Compare { field, op, value } => write!(f, "{field} {op} {value}"),
            Expr::In {
                field,
                values,
                negated,
            } => {
                write!(f, "{field} {}in (", if *negated { "not " } else { "" })?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Expr::IsNull { field, negated } => {
                write!(f, "{field} is {}null", if *negated { "not " } else { "" })
            }
            Expr::Like {
                field,
                pattern,
                negated,
            } => {
                let pattern = Literal::String(pattern.clone());
                write!(
                    f,
                    "{field} {}like {pattern}",
                    if *negated { "not " } else { "" }
                )
            }
            Expr::Between { field, low, high } => {
                write!(f, "{field} between {low} and {high}")
            }
        }
    }
}

fn write_grouped(f: &mut fmt::Formatter<'_>, e: &Expr, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

mod parse;

pub use parse::is_keyword;
#[cfg(test)]
mod tests;
