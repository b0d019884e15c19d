//! Input validation, in one place. The API calls these before proposing a command (so
//! bad input never reaches the log) and `apply` relies on them for the stateless part;
//! checks that depend on state (does the department exist, is the id taken) happen in
//! `apply`, where the state is authoritative.
//!
//! Errors name the field by its JSON path (`fields[2].name`).

use std::collections::BTreeSet;

use crate::error::{CatalogError, Result};
use crate::model::{DatasetInput, Department, Format, Masking, Sensitivity};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_SUMMARY_CHARS: usize = 4000;
pub const MAX_KEYWORDS: usize = 20;
pub const MAX_FIELDS: usize = 500;
pub const MAX_PURPOSE_CHARS: usize = 500;
pub const MAX_GRANT_DAYS: u32 = 366;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> CatalogError {
    CatalogError::invalid(field, message)
}

/// `[A-Za-z0-9]` start, then letters, digits and `-`, 2–32 characters: department codes
/// such as `320600-YJJ`.
pub fn is_code(s: &str) -> bool {
    let len = s.len();
    (2..=32).contains(&len)
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Dataset resource codes: like department codes plus `.`, `_` and `/`, up to 64.
pub fn is_resource_code(s: &str) -> bool {
    let len = s.len();
    (2..=64).contains(&len)
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Column and table identifiers: `[A-Za-z_][A-Za-z0-9_]*`, up to 64 characters.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn text(field: &str, value: &str, max_chars: usize, required: bool) -> Result<()> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(invalid(
            field,
            format!("longer than {max_chars} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

pub fn department(d: &Department) -> Result<()> {
    if !is_code(&d.code) {
        return Err(invalid(
            "code",
            format!(
                "'{}' is not a department code (letters, digits and '-', 2-32 characters, e.g. 320600-YJJ)",
                d.code
            ),
        ));
    }
    text("name", &d.name, 100, true)?;
    text("region", &d.region, 100, true)?;
    Ok(())
}

pub fn dataset(d: &DatasetInput) -> Result<()> {
    if !is_resource_code(&d.id) {
        return Err(invalid(
            "id",
            format!(
                "'{}' is not a resource code (letters, digits, '-', '.', '_'; 2-64 characters)",
                d.id
            ),
        ));
    }
    if !is_code(&d.dept) {
        return Err(invalid(
            "dept",
            format!("'{}' is not a department code", d.dept),
        ));
    }
    text("title", &d.title, MAX_TITLE_CHARS, true)?;
    text("summary", &d.summary, MAX_SUMMARY_CHARS, false)?;
    text("theme", &d.theme, 50, true)?;
    text("open_type", &d.open_type, 50, false)?;
    if d.keywords.len() > MAX_KEYWORDS {
        return Err(invalid(
            "keywords",
            format!("more than {MAX_KEYWORDS} keywords"),
        ));
    }
    for (i, k) in d.keywords.iter().enumerate() {
        text(&format!("keywords[{i}]"), k, 50, true)?;
    }
    match d.share_type {
        crate::model::ShareType::Unconditional => {
            text("share_condition", &d.share_condition, 1000, false)?
        }
        _ => text("share_condition", &d.share_condition, 1000, true).map_err(|_| {
            invalid(
                "share_condition",
                "required for conditional and none datasets: state the condition or legal basis",
            )
        })?,
    }
    if d.format == Format::Table && d.fields.is_empty() {
        return Err(invalid(
            "fields",
            "a table dataset needs at least one field",
        ));
    }
    if d.fields.len() > MAX_FIELDS {
        return Err(invalid("fields", format!("more than {MAX_FIELDS} fields")));
    }
    let mut names = BTreeSet::new();
    for (i, f) in d.fields.iter().enumerate() {
        if !is_identifier(&f.name) {
            return Err(invalid(
                format!("fields[{i}].name"),
                format!("'{}' is not a column name ([A-Za-z_][A-Za-z0-9_]*)", f.name),
            ));
        }
        if crate::filter::is_keyword(&f.name) {
            return Err(invalid(
                format!("fields[{i}].name"),
                format!(
                    "'{}' is a word of the filter language; choose another column name",
                    f.name
                ),
            ));
        }
        if !names.insert(f.name.as_str()) {
            return Err(invalid(
                format!("fields[{i}].name"),
                format!("duplicate field '{}'", f.name),
            ));
        }
        text(&format!("fields[{i}].title"), &f.title, 100, true)?;
        if f.masking.is_some() && f.sensitivity != Sensitivity::Sensitive {
            return Err(invalid(
                format!("fields[{i}].masking"),
                "a masking rule is only meaningful on a sensitive field",
            ));
        }
    }
    if let Some(src) = &d.source {
        let id_ok = (1..=64).contains(&src.id.len())
            && src
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !id_ok {
            return Err(invalid(
                "source.id",
                format!("'{}' is not a source id", src.id),
            ));
        }
        if !is_identifier(&src.table) {
            return Err(invalid(
                "source.table",
                format!("'{}' is not a table name", src.table),
            ));
        }
    }
    Ok(())
}

/// The masking rule in force for a sensitive field.
pub fn effective_masking(m: Option<Masking>) -> Masking {
    m.unwrap_or(Masking::Full)
}

/// Most admin-defined synonym groups, members of a group and characters of a member.
pub const MAX_SYNONYM_GROUPS: usize = 1000;
pub const MAX_SYNONYM_MEMBERS: usize = 20;
pub const MAX_SYNONYM_CHARS: usize = 30;

/// Admin-defined search synonym groups: each of 2 to [`MAX_SYNONYM_MEMBERS`] distinct,
/// trimmed, non-empty terms.
pub fn synonyms(groups: &[Vec<String>]) -> Result<()> {
    if groups.len() > MAX_SYNONYM_GROUPS {
        return Err(invalid(
            "groups",
            format!("more than {MAX_SYNONYM_GROUPS} synonym groups"),
        ));
    }
    for (i, group) in groups.iter().enumerate() {
        let field = format!("groups[{i}]");
        if group.len() < 2 || group.len() > MAX_SYNONYM_MEMBERS {
            return Err(invalid(
                field,
                format!(
                    "a synonym group has 2 to {MAX_SYNONYM_MEMBERS} terms, not {}",
                    group.len()
                ),
            ));
        }
        for (j, term) in group.iter().enumerate() {
            let field = format!("groups[{i}][{j}]");
            if term.trim() != term || term.is_empty() {
                return Err(invalid(
                    field,
                    format!("'{term}' is empty or has leading/trailing spaces"),
                ));
            }
            if term.chars().count() > MAX_SYNONYM_CHARS {
                return Err(invalid(
                    field,
                    format!("'{term}' is longer than {MAX_SYNONYM_CHARS} characters"),
                ));
            }
            if group[..j].contains(term) {
                return Err(invalid(
                    field,
                    format!("'{term}' appears twice in the group"),
                ));
            }
        }
    }
    Ok(())
}

/// A required free-text value such as a rejection reason.
pub fn text_required(field: &str, value: &str) -> Result<()> {
    text(field, value, 1000, true)
}

pub fn purpose(p: &str) -> Result<()> {
    text("purpose", p, MAX_PURPOSE_CHARS, true)
}

pub fn days(field: &str, days: u32) -> Result<()> {
    if days == 0 || days > MAX_GRANT_DAYS {
        return Err(invalid(
            field,
            format!("must be between 1 and {MAX_GRANT_DAYS}"),
        ));
    }
    Ok(())
}

/// A principal is a SPIFFE ID `spiffe://<trust-domain>/dept/<code>/<name>` or
/// `spiffe://<trust-domain>/node/<id>`.
pub fn principal(field: &str, p: &str) -> Result<()> {
    if crate::identity::SpiffeId::parse(p).is_none() {
        return Err(invalid(
            field,
            format!("'{p}' is not a SPIFFE ID (spiffe://<trust-domain>/dept/<code>/<name>)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    pub(crate) fn sample() -> DatasetInput {
        DatasetInput {
            id: "320600-YJJ-00001".into(),
            dept: "320600-YJJ".into(),
            title: "危险化学品企业名录".into(),
            summary: "全市危险化学品生产、经营企业名录".into(),
            keywords: vec!["危险化学品".into()],
            theme: "安全生产".into(),
            format: Format::Table,
            share_type: ShareType::Unconditional,
            share_condition: String::new(),
            open_type: "不予开放".into(),
            update_cycle: UpdateCycle::Monthly,
            fields: vec![Field {
                name: "uscc".into(),
                title: "统一社会信用代码".into(),
                field_type: FieldType::String,
                sensitivity: Sensitivity::Public,
                masking: None,
            }],
            source: None,
        }
    }

    fn field_of(r: Result<()>) -> String {
        match r {
            Err(CatalogError::Invalid { field, .. }) => field,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_good_dataset() {
        dataset(&sample()).unwrap();
    }

    #[test]
    fn names_the_bad_field() {
        let mut d = sample();
        d.title = "  ".into();
        assert_eq!(field_of(dataset(&d)), "title");
        let mut d = sample();
        d.share_type = ShareType::Conditional;
        assert_eq!(field_of(dataset(&d)), "share_condition");
        let mut d = sample();
        d.fields.push(d.fields[0].clone());
        assert_eq!(field_of(dataset(&d)), "fields[1].name");
        let mut d = sample();
        d.fields[0].name = "drop table".into();
        assert_eq!(field_of(dataset(&d)), "fields[0].name");
        let mut d = sample();
        d.id = "../etc".into();
        assert_eq!(field_of(dataset(&d)), "id");
        let mut d = sample();
        d.fields[0].masking = Some(Masking::Phone);
        assert_eq!(field_of(dataset(&d)), "fields[0].masking");
        let mut d = sample();
        d.fields.clear();
        assert_eq!(field_of(dataset(&d)), "fields");
    }

    #[test]
    fn department_codes() {
        assert!(is_code("320600-YJJ"));
        assert!(!is_code("-X"));
        assert!(!is_code("a b"));
        assert!(!is_code("320600/YJJ"));
        let d = Department {
            code: "320600-YJJ".into(),
            name: String::new(),
            region: "南通市".into(),
            created_at: String::new(),
        };
        assert_eq!(field_of(department(&d)), "name");
    }
}
