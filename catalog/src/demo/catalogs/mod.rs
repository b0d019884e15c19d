//! What each demo department holds: one static table per department, grouped by
//! field of government work so that each file stays readable.

mod districts;
mod economy;
mod environment;
mod government;
mod health_education;
mod market;
mod people;
mod safety_justice;
mod scenario_depts;
mod social;
mod urban;

use super::table::Res;

/// Everything the table files need, so that a row reads as data.
mod prelude {
    pub(super) use super::super::conditions::*;
    pub(super) use super::super::table::Res;
    pub(super) use super::super::table::Share::{C, N, U};
    pub(super) use super::super::table::Theme::*;
    pub(super) use super::super::table::Variant::*;
    pub(super) use crate::model::Format::{Api, File, Table};
    pub(super) use crate::model::UpdateCycle::*;
}

/// A department's catalog: its code suffix and the tables that make it up (district
/// governments share a common table and add their own).
pub(super) type Catalog = (&'static str, &'static [&'static [Res]]);

/// All catalogs, in no particular order; the builder follows the department order.
pub(super) fn all() -> impl Iterator<Item = &'static Catalog> {
    [
        scenario_depts::CATALOGS,
        safety_justice::CATALOGS,
        market::CATALOGS,
        economy::CATALOGS,
        environment::CATALOGS,
        social::CATALOGS,
        people::CATALOGS,
        health_education::CATALOGS,
        urban::CATALOGS,
        government::CATALOGS,
        districts::CATALOGS,
    ]
    .into_iter()
    .flatten()
}
