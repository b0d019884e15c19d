//! The deterministic demo catalog of one city: 南通市 (region code 320600).
//!
//! [`departments`] lists the 65 departments of the city's data-exchange network and
//! [`datasets`] the information resources (信息资源) they hold, as a municipal
//! 政务信息资源目录 would describe them: titles, summaries, themes, share types with
//! their conditions or legal bases, and fields with sensitivity and masking. These
//! generic datasets have no records (`source` is `None`); the scenario datasets of
//! [`SCENARIO_YJJ`], [`SCENARIO_JTJ`] and [`SCENARIO_GDGS`], which do, are created
//! elsewhere under the serials this module leaves free (see [`RESERVED_SERIALS`]).
//!
//! Everything is built from readable static tables, so two calls return identical
//! output: the seeder, the search benchmarks and the tests can rely on it.

mod build;
mod catalogs;
mod conditions;
mod departments;
mod elements;
mod summary;
mod table;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::model::{DatasetInput, Department};

/// The demo city.
pub const REGION: &str = "南通市";
/// Administrative division code of the demo city, the prefix of every department code.
pub const REGION_CODE: &str = "320600";

/// 南通市大数据管理局, the platform operator.
pub const DATA_BUREAU: &str = "320600-DSJ";
/// 南通市应急管理局, holder of the hazardous-chemicals enterprise list of the scenario.
pub const SCENARIO_YJJ: &str = "320600-YJJ";
/// 南通市交通运输局, holder of the hazardous-goods truck checkpoint records.
pub const SCENARIO_JTJ: &str = "320600-JTJ";
/// 国网南通供电公司, holder of the enterprises' hourly power use.
pub const SCENARIO_GDGS: &str = "320600-GDGS";
/// The departments whose first serials are reserved for the scenario datasets.
pub const SCENARIO_DEPTS: [&str; 3] = [SCENARIO_YJJ, SCENARIO_JTJ, SCENARIO_GDGS];

/// Serials `00001..=RESERVED_SERIALS` of each [`SCENARIO_DEPTS`] department are left
/// to the scenario datasets; that department's generic datasets start after them.
pub const RESERVED_SERIALS: u32 = 9;

/// The themes (分类) the demo catalog uses.
pub const THEMES: [&str; 20] = {
    let mut out = [""; 20];
    let mut i = 0;
    while i < 20 {
        out[i] = table::Theme::ALL[i].as_str();
        i += 1;
    }
    out
};

/// The resource code of a department's dataset: `<dept-code>-<5-digit serial>`,
/// e.g. `dataset_id("320600-YJJ", 1)` is `320600-YJJ-00001`.
pub fn dataset_id(dept_code: &str, serial: u32) -> String {
    format!("{dept_code}-{serial:05}")
}

/// The 65 departments, in registration order. `created_at` is empty: the seeder
/// stamps it when it registers them.
pub fn departments() -> Vec<Department> {
    departments::DEPARTMENTS
        .iter()
        .map(|(abbr, name)| Department {
            code: format!("{REGION_CODE}-{abbr}"),
            name: name.to_string(),
            region: REGION.to_string(),
            created_at: String::new(),
        })
        .collect()
}

/// The generic datasets of all departments, grouped by department in registration
/// order and numbered per department.
pub fn datasets() -> Vec<DatasetInput> {
    let dict = elements::Dictionary::new();
    let by_dept: HashMap<&str, &catalogs::Catalog> = catalogs::all().map(|c| (c.0, c)).collect();
    let mut out = Vec::new();
    for (abbr, name) in departments::DEPARTMENTS {
        let code = format!("{REGION_CODE}-{abbr}");
        let first_serial = if SCENARIO_DEPTS.contains(&code.as_str()) {
            RESERVED_SERIALS + 1
        } else {
            1
        };
        let Some((_, tables)) = by_dept.get(abbr) else {
            panic!("demo catalog: no catalog for department {code}");
        };
        // District and county-level city governments are the only departments whose
        // names end so; they report on their own area rather than on the whole city.
        let level = if name.ends_with("人民政府") {
            build::Level::County
        } else {
            build::Level::City
        };
        let dept = build::Dept {
            code: &code,
            name,
            level,
        };
        out.extend(build::department_datasets(
            &dept,
            tables,
            first_serial,
            &dict,
        ));
    }
    out
}
