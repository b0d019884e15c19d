//! The data-element dictionary (数据元) of the demo catalog.
//!
//! Real catalogs standardise their columns: 统一社会信用代码 or 身份证号码 carries the
//! same name, title, type and sensitivity in every dataset that has it. The demo tables
//! therefore name their fields only, and everything else about a field comes from here,
//! so that a personal identifier cannot be sensitive in one dataset and public in the
//! next.

mod dates;
mod measures;
mod records;
mod subjects;

use std::collections::HashMap;

use crate::model::{Field, FieldType, Masking, Sensitivity};

/// One data element: column name, title, type and class.
#[derive(Debug, Clone, Copy)]
pub(super) struct E(pub &'static str, pub &'static str, pub FieldType, pub Class);

/// Sensitivity class of an element, with the masking rule a sensitive one needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Public,
    /// Internal codes and working data of the providing department.
    Internal,
    Sensitive(Masking),
}

/// Short names that keep the element tables one line per element.
mod prelude {
    pub(super) use super::{Class, E};
    pub(super) use crate::model::FieldType::{
        Boolean as B, Date as D, Datetime as T, Float as F, Integer as I, String as S,
    };
    use crate::model::Masking;

    pub(super) const P: Class = Class::Public;
    pub(super) const IN: Class = Class::Internal;
    /// Resident ID numbers and documents derived from them.
    pub(super) const ID: Class = Class::Sensitive(Masking::IdCard);
    pub(super) const PH: Class = Class::Sensitive(Masking::Phone);
    /// Names of private persons.
    pub(super) const NM: Class = Class::Sensitive(Masking::Name);
    /// Addresses of private persons.
    pub(super) const AD: Class = Class::Sensitive(Masking::Address);
    /// Health, financial and other sensitive values with no partial form.
    pub(super) const FU: Class = Class::Sensitive(Masking::Full);
}

impl E {
    pub(super) fn name(&self) -> &'static str {
        self.0
    }

    pub(super) fn class(&self) -> Class {
        self.3
    }

    pub(super) fn to_field(self) -> Field {
        let (sensitivity, masking) = match self.3 {
            Class::Public => (Sensitivity::Public, None),
            Class::Internal => (Sensitivity::Internal, None),
            Class::Sensitive(m) => (Sensitivity::Sensitive, Some(m)),
        };
        Field {
            name: self.0.to_string(),
            title: self.1.to_string(),
            field_type: self.2,
            sensitivity,
            masking,
        }
    }
}

/// The element tables, each with whether it holds measures.
const TABLES: [(&[E], bool); 4] = [
    (subjects::SUBJECTS, false),
    (records::RECORDS, false),
    (dates::DATES, false),
    (measures::MEASURES, true),
];

/// Every element, in table order.
#[cfg(test)]
pub(super) fn all() -> impl Iterator<Item = &'static E> {
    TABLES.into_iter().flat_map(|(table, _)| table.iter())
}

/// Lookup of elements by name.
pub(super) struct Dictionary {
    elements: HashMap<&'static str, (E, bool)>,
}

impl Dictionary {
    pub(super) fn new() -> Dictionary {
        let elements = TABLES
            .into_iter()
            .flat_map(|(table, is_measure)| table.iter().map(move |e| (e.name(), (*e, is_measure))))
            .collect();
        Dictionary { elements }
    }

    /// The element called `name`.
    ///
    /// # Panics
    /// When no element has that name: the tables are static, and the module's tests
    /// build every dataset, so a misspelt field fails there.
    pub(super) fn get(&self, name: &str) -> E {
        match self.elements.get(name) {
            Some((e, _)) => *e,
            None => panic!("demo catalog: no data element named {name}"),
        }
    }

    /// Whether `name` is a public, numeric measure that statistics can aggregate.
    pub(super) fn is_public_measure(&self, name: &str) -> bool {
        matches!(
            self.elements.get(name),
            Some((e, true)) if e.3 == Class::Public
                && matches!(e.2, FieldType::Integer | FieldType::Float)
        )
    }
}
