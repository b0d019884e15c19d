use std::collections::{BTreeMap, HashMap, HashSet};

use super::*;
use crate::model::{Format, Sensitivity, ShareType};

fn is_dept_code(code: &str) -> bool {
    let Some(abbr) = code.strip_prefix("320600-") else {
        return false;
    };
    (2..=6).contains(&abbr.len()) && abbr.chars().all(|c| c.is_ascii_uppercase())
}

fn is_column_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn serial(id: &str) -> u32 {
    let (_, serial) = id.rsplit_once('-').unwrap();
    assert_eq!(serial.len(), 5, "{id}");
    serial.parse().unwrap()
}

#[test]
fn sixty_five_departments_with_unique_codes() {
    let depts = departments();
    assert_eq!(depts.len(), 65);
    let codes: HashSet<&str> = depts.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes.len(), 65, "department codes are unique");
    let names: HashSet<&str> = depts.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names.len(), 65, "department names are unique");
    for d in &depts {
        assert!(is_dept_code(&d.code), "{}", d.code);
        assert_eq!(d.region, REGION);
        assert!(d.created_at.is_empty());
        crate::validate::department(d).unwrap();
    }
    for code in [DATA_BUREAU, SCENARIO_YJJ, SCENARIO_JTJ, SCENARIO_GDGS] {
        assert!(codes.contains(code), "{code}");
    }
    let name_of: HashMap<&str, &str> = depts
        .iter()
        .map(|d| (d.code.as_str(), d.name.as_str()))
        .collect();
    assert_eq!(name_of[DATA_BUREAU], "南通市大数据管理局");
    assert_eq!(name_of[SCENARIO_YJJ], "南通市应急管理局");
    assert_eq!(name_of[SCENARIO_JTJ], "南通市交通运输局");
    assert_eq!(name_of[SCENARIO_GDGS], "国网南通供电公司");
}

#[test]
fn at_least_a_thousand_datasets_with_unique_ids_in_existing_departments() {
    let depts: HashSet<String> = departments().into_iter().map(|d| d.code).collect();
    let all = datasets();
    assert!(all.len() >= 1000, "{} datasets", all.len());
    let mut ids = HashSet::new();
    for d in &all {
        assert!(ids.insert(d.id.as_str()), "duplicate id {}", d.id);
        let (prefix, _) = d.id.rsplit_once('-').unwrap();
        assert_eq!(prefix, d.dept, "{}", d.id);
        assert!(depts.contains(&d.dept), "{} has unknown department", d.id);
        assert!(d.source.is_none(), "{} is generic and has no source", d.id);
        crate::validate::dataset(d).unwrap_or_else(|e| panic!("{}: {e}", d.id));
    }
}

#[test]
fn every_department_holds_datasets_and_numbers_them_without_gaps() {
    let all = datasets();
    let mut serials: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for d in &all {
        serials
            .entry(d.dept.as_str())
            .or_default()
            .push(serial(&d.id));
    }
    assert_eq!(serials.len(), 65, "every department has datasets");
    for (dept, list) in &serials {
        assert!(list.len() >= 5, "{dept} has only {} datasets", list.len());
        let first = if SCENARIO_DEPTS.contains(dept) {
            RESERVED_SERIALS + 1
        } else {
            1
        };
        let expected: Vec<u32> = (first..first + list.len() as u32).collect();
        assert_eq!(list, &expected, "{dept}");
    }
}

#[test]
fn scenario_serials_are_left_free() {
    let taken: HashSet<String> = datasets().into_iter().map(|d| d.id).collect();
    for dept in SCENARIO_DEPTS {
        for s in 1..=RESERVED_SERIALS {
            assert!(!taken.contains(&dataset_id(dept, s)), "{dept} serial {s}");
        }
        assert!(taken.contains(&dataset_id(dept, RESERVED_SERIALS + 1)));
    }
    assert_eq!(dataset_id(SCENARIO_YJJ, 1), "320600-YJJ-00001");
}

#[test]
fn titles_are_unique_within_a_department() {
    let mut seen = HashSet::new();
    for d in datasets() {
        assert!(
            seen.insert((d.dept.clone(), d.title.clone())),
            "{} repeats title {}",
            d.dept,
            d.title
        );
    }
}

#[test]
fn share_types_follow_the_intended_split() {
    let all = datasets();
    let mut count: HashMap<ShareType, usize> = HashMap::new();
    for d in &all {
        *count.entry(d.share_type).or_default() += 1;
        match d.share_type {
            ShareType::Unconditional => assert!(d.share_condition.is_empty(), "{}", d.id),
            _ => assert!(!d.share_condition.trim().is_empty(), "{}", d.id),
        }
    }
    let share = |t| count.get(&t).copied().unwrap_or(0) as f64 / all.len() as f64;
    let (u, c, n) = (
        share(ShareType::Unconditional),
        share(ShareType::Conditional),
        share(ShareType::None),
    );
    assert!((0.45..=0.65).contains(&u), "unconditional {u:.3}");
    assert!((0.25..=0.45).contains(&c), "conditional {c:.3}");
    assert!((0.06..=0.15).contains(&n), "none {n:.3}");
}

#[test]
fn fields_are_well_formed_and_sensitive_ones_masked() {
    let all = datasets();
    let mut with_sensitive = 0;
    for d in &all {
        assert!(
            (3..=10).contains(&d.fields.len()),
            "{} has {} fields",
            d.id,
            d.fields.len()
        );
        let mut names = HashSet::new();
        for f in &d.fields {
            assert!(is_column_name(&f.name), "{}: {}", d.id, f.name);
            assert!(names.insert(f.name.as_str()), "{} repeats {}", d.id, f.name);
            assert!(!f.title.is_empty());
            assert_eq!(
                f.masking.is_some(),
                f.sensitivity == Sensitivity::Sensitive,
                "{}: {} masking",
                d.id,
                f.name
            );
        }
        if d.fields
            .iter()
            .any(|f| f.sensitivity == Sensitivity::Sensitive)
        {
            with_sensitive += 1;
        }
    }
    assert!(
        with_sensitive > 100,
        "{with_sensitive} datasets hold sensitive fields"
    );
    let at_least_three = all.iter().filter(|d| d.fields.len() >= 3).count();
    assert!(at_least_three * 100 >= all.len() * 95);
}

#[test]
fn personal_identifiers_are_sensitive_everywhere() {
    for d in datasets() {
        for f in &d.fields {
            let personal = matches!(
                f.name.as_str(),
                "id_no" | "person_name" | "phone" | "home_address" | "domicile_address"
            );
            if personal {
                assert_eq!(
                    f.sensitivity,
                    Sensitivity::Sensitive,
                    "{}: {}",
                    d.id,
                    f.name
                );
            }
        }
    }
}

#[test]
fn descriptive_metadata_is_complete() {
    let all = datasets();
    let mut formats: HashMap<String, usize> = HashMap::new();
    let mut cycles = HashSet::new();
    let mut themes = HashSet::new();
    for d in &all {
        assert!(!d.summary.is_empty(), "{}", d.id);
        assert!(d.summary.ends_with('。'), "{}: {}", d.id, d.summary);
        assert!((3..=6).contains(&d.keywords.len()), "{} keywords", d.id);
        let unique: HashSet<&String> = d.keywords.iter().collect();
        assert_eq!(unique.len(), d.keywords.len(), "{} repeats a keyword", d.id);
        assert!(THEMES.contains(&d.theme.as_str()), "{}: {}", d.id, d.theme);
        assert!(
            ["无条件开放", "有条件开放", "不予开放"].contains(&d.open_type.as_str()),
            "{}",
            d.id
        );
        *formats.entry(format!("{:?}", d.format)).or_default() += 1;
        cycles.insert(d.update_cycle);
        themes.insert(d.theme.clone());
    }
    let tables = formats[&format!("{:?}", Format::Table)];
    assert!(tables * 100 >= all.len() * 80, "mostly tables: {formats:?}");
    assert!(formats.len() == 3, "tables, files and APIs: {formats:?}");
    assert_eq!(cycles.len(), 7, "every update cycle is used");
    assert_eq!(themes.len(), THEMES.len(), "every theme is used");
}

#[test]
fn summaries_vary() {
    let all = datasets();
    let summaries: HashSet<&str> = all.iter().map(|d| d.summary.as_str()).collect();
    assert!(summaries.len() * 100 >= all.len() * 95);
}

#[test]
fn data_elements_are_unique_valid_and_all_used() {
    let mut names = HashSet::new();
    for e in elements::all() {
        assert!(is_column_name(e.name()), "{}", e.name());
        assert!(names.insert(e.name()), "element {} defined twice", e.name());
    }
    let used: HashSet<String> = datasets()
        .into_iter()
        .flat_map(|d| d.fields.into_iter().map(|f| f.name))
        .collect();
    let unused: Vec<&&str> = names.iter().filter(|n| !used.contains(**n)).collect();
    assert!(unused.is_empty(), "unused elements: {unused:?}");
}

#[test]
fn every_department_has_exactly_one_catalog() {
    let codes: HashSet<&str> = departments::DEPARTMENTS.iter().map(|(a, _)| *a).collect();
    let mut seen = HashSet::new();
    for (abbr, _) in catalogs::all() {
        assert!(
            codes.contains(abbr),
            "catalog for unknown department {abbr}"
        );
        assert!(seen.insert(*abbr), "two catalogs for {abbr}");
    }
    assert_eq!(seen.len(), codes.len());
}

#[test]
fn output_is_deterministic() {
    assert_eq!(departments(), departments());
    assert_eq!(datasets(), datasets());
}

#[test]
fn datasets_round_trip_through_json() {
    for d in datasets().into_iter().step_by(37) {
        let json = serde_json::to_string(&d).unwrap();
        let back: DatasetInput = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }
}
