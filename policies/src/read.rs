//! Read plans: which columns a consumer gets, masked or not, and which rows.

use std::collections::BTreeSet;

use yiwang_catalog::filter::{self, Expr};
use yiwang_catalog::model::{Dataset, Field, Masking, Sensitivity, ShareType};
use yiwang_catalog::validate::effective_masking;

use crate::engine::{Action, PolicyEngine, Principal};
use crate::{Decision, PolicyError};

/// One column of a read, with the masking applied to it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub field: Field,
    pub mask: Option<Masking>,
}

/// Everything the gateway needs to serve a read the policy allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    pub decision: Decision,
    pub columns: Vec<Column>,
    /// Rows the consumer may see: the grants' row filters, to be ANDed to any filter
    /// the consumer gave.
    pub row_filter: Option<Expr>,
}

impl ReadPlan {
    pub fn masked_fields(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.mask.is_some())
            .map(|c| c.field.name.as_str())
            .collect()
    }
}

impl PolicyEngine {
    /// Decides a read of `dataset` by `who` and plans its columns and rows.
    ///
    /// - Own department: every field, unmasked, every row.
    /// - `unconditional`: every field; sensitive fields masked unless an active grant of
    ///   the consumer's department names them. Grants on unconditional datasets only
    ///   unmask; they carry no row filter.
    /// - `conditional`: only through an active grant, only its fields (unmasked: the
    ///   grant names them) and only its rows.
    /// - `none`: own department only.
    ///
    /// `requested` narrows the columns; a requested field that does not exist is
    /// `Invalid`, one the consumer may not see is `Denied` — both name the field.
    pub async fn plan_read(
        &self,
        who: &Principal,
        dataset: &Dataset,
        requested: Option<&[String]>,
        now: &str,
    ) -> Result<ReadPlan, PolicyError> {
        if let Some(req) = requested {
            for name in req {
                if dataset.field(name).is_none() {
                    return Err(PolicyError::Invalid(format!(
                        "dataset '{}' has no field '{name}'",
                        dataset.id
                    )));
                }
            }
        }
        let mut decision = self
            .require(who, Action::Read, Some(dataset), &dataset.dept)
            .await?;
        let own = who.dept == dataset.dept;

        let (visible, unmasked, row_filter): (BTreeSet<String>, BTreeSet<String>, Option<Expr>) =
            if own {
                let all: BTreeSet<String> = dataset.fields.iter().map(|f| f.name.clone()).collect();
                (all.clone(), all, None)
            } else {
                let ids = self.grant_ids(&who.dept, &dataset.id);
                let s = self.state().read();
                let of_dept: Vec<&yiwang_catalog::model::Grant> =
                    ids.iter().filter_map(|id| s.grants.get(id)).collect();
                let grants: Vec<_> = of_dept
                    .iter()
                    .copied()
                    .filter(|g| g.is_active_at(now))
                    .collect();
                let granted: BTreeSet<String> = grants
                    .iter()
                    .flat_map(|g| g.fields.iter().cloned())
                    .collect();
                match dataset.share_type {
                    ShareType::Unconditional => {
                        // The newest, as for conditional reads: the same on every node
                        // whatever order its index learnt the grants in.
                        if let Some(g) = grants.iter().max_by(|a, b| {
                            a.created_at
                                .cmp(&b.created_at)
                                .then_with(|| a.id.cmp(&b.id))
                        }) {
                            decision.grant = Some(g.id.clone());
                        }
                        let all = dataset.fields.iter().map(|f| f.name.clone()).collect();
                        (all, granted, None)
                    }
                    ShareType::Conditional => {
                        // A read is served under one grant: its fields and its rows together.
                        // Mixing grants would show one grant's fields on another's rows.
                        let covering = |g: &yiwang_catalog::model::Grant| {
                            requested.is_none_or(|req| req.iter().all(|f| g.fields.contains(f)))
                        };
                        let chosen =
                            grants
                                .iter()
                                .copied()
                                .filter(|g| covering(g))
                                .max_by(|a, b| {
                                    a.created_at
                                        .cmp(&b.created_at)
                                        .then_with(|| a.id.cmp(&b.id))
                                });
                        let Some(g) = chosen else {
                            if let (Some(req), false) = (requested, grants.is_empty()) {
                                let missing = req
                                    .iter()
                                    .find(|f| !grants.iter().any(|g| g.fields.contains(*f)));
                                return Err(PolicyError::Denied(match missing {
                                    Some(f) => format!(
                                        "field '{f}' of dataset '{}' is not covered by the grant of {}",
                                        dataset.id, who.dept
                                    ),
                                    None => format!(
                                        "no single grant of {} on dataset '{}' covers all of {}; a read is served under one grant",
                                        who.dept,
                                        dataset.id,
                                        req.join(", ")
                                    ),
                                }));
                            }
                            let expired = of_dept.iter().map(|g| g.expires_at.as_str()).max();
                            return Err(PolicyError::Denied(match expired {
                                Some(at) => format!(
                                    "the grant of {} on dataset '{}' is no longer active (expired or revoked; latest expiry {at}); request access again",
                                    who.dept, dataset.id
                                ),
                                None => format!(
                                    "department {} holds no grant for dataset '{}'",
                                    who.dept, dataset.id
                                ),
                            }));
                        };
                        decision.grant = Some(g.id.clone());
                        let row_filter = match &g.row_filter {
                            None => None,
                            Some(text) => Some(filter::parse(text).map_err(|e| {
                                PolicyError::Engine(format!(
                                    "stored row filter of grant '{}': {e}",
                                    g.id
                                ))
                            })?),
                        };
                        let fields: BTreeSet<String> = g.fields.iter().cloned().collect();
                        (fields.clone(), fields, row_filter)
                    }
                    // The casbin rules never allow this; refuse rather than trust that.
                    ShareType::None => {
                        return Err(PolicyError::Denied(format!(
                            "dataset '{}' is not shared outside {} (share_type none)",
                            dataset.id, dataset.dept
                        )));
                    }
                }
            };

        let names: Vec<&str> = match requested {
            Some(req) if !req.is_empty() => {
                for name in req {
                    if !visible.contains(name) {
                        return Err(PolicyError::Denied(format!(
                            "field '{name}' of dataset '{}' is not covered by the grant of {}",
                            dataset.id, who.dept
                        )));
                    }
                }
                req.iter().map(String::as_str).collect()
            }
            _ => dataset
                .fields
                .iter()
                .map(|f| f.name.as_str())
                .filter(|n| visible.contains(*n))
                .collect(),
        };
        let columns = names
            .into_iter()
            .filter_map(|n| dataset.field(n))
            .map(|f| Column {
                field: f.clone(),
                mask: (f.sensitivity == Sensitivity::Sensitive && !unmasked.contains(&f.name))
                    .then(|| effective_masking(f.masking)),
            })
            .collect();
        Ok(ReadPlan {
            decision,
            columns,
            row_filter,
        })
    }
}
