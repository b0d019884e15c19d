//! Plans of repeated queries.
//!
//! Department systems ask the same questions again and again, and planning one —
//! parsing, and DataFusion's logical planning and optimisation, twice — costs more CPU
//! than running a small one. The node keeps, per SQL text (`query.plan_cache_entries`
//! texts, least recently used first out):
//!
//! - the parsed statement and the tables it names;
//! - the columns it uses of each dataset, valid while those datasets' definitions
//!   (department, fields, source) are unchanged;
//! - a few optimised plans over the consumer's views, each valid for the definitions
//!   and the read plans (columns, masks, row filters) it was made with.
//!
//! Nothing of the authorisation is kept: every query still resolves its tables in the
//! catalog and is decided by the policy engine, and its read plans select the plan.
//! A changed grant, mask or dataset gives another key, so a plan made before the change
//! is never used after it. Plans with a function whose value depends on the moment or
//! on chance (`now()`, `random()`) are not kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::logical_expr::LogicalPlan;
use yiwang_catalog::filter::Expr;
use yiwang_catalog::model::{Dataset, Field, SourceRef};
use yiwang_policies::{Column, ReadPlan};

use super::plan::{Statement, Usage};

/// Plans kept per SQL text: one per distinct set of read plans (consumers whose
/// grants differ), newest first.
const PLANS_PER_SQL: usize = 4;

/// The plan cache of a node.
pub struct PlanCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, (Arc<Entry>, u64)>,
    clock: u64,
}

/// What is known about one SQL text.
pub struct Entry {
    pub statement: Statement,
    usage: Mutex<Option<(Vec<Shape>, Usage)>>,
    plans: Mutex<Vec<(PlanKey, LogicalPlan)>>,
}

/// What a plan depends on of one dataset.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    id: String,
    dept: String,
    fields: Vec<Field>,
    source: Option<SourceRef>,
}

/// What a plan over views depends on: the datasets and the consumer's read plans.
#[derive(Debug, Clone, PartialEq)]
struct PlanKey {
    shapes: Vec<Shape>,
    reads: Vec<(Vec<Column>, Option<Expr>)>,
}

fn shapes(datasets: &BTreeMap<String, Dataset>) -> Vec<Shape> {
    datasets
        .values()
        .map(|d| Shape {
            id: d.id.clone(),
            dept: d.dept.clone(),
            fields: d.fields.clone(),
            source: d.source.clone(),
        })
        .collect()
}

fn plan_key(datasets: &BTreeMap<String, Dataset>, reads: &BTreeMap<String, ReadPlan>) -> PlanKey {
    PlanKey {
        shapes: shapes(datasets),
        reads: reads
            .values()
            .map(|r| (r.columns.clone(), r.row_filter.clone()))
            .collect(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data is a cache: whatever a panicking holder left is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PlanCache {
    /// A cache of `capacity` SQL texts; 0 keeps nothing.
    pub fn new(capacity: usize) -> PlanCache {
        PlanCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The entry of `sql`, parsed by `parse` if it is not kept. A parse error is
    /// returned and nothing is kept.
    pub fn entry<E>(
        &self,
        sql: &str,
        parse: impl FnOnce() -> Result<Statement, E>,
    ) -> Result<Arc<Entry>, E> {
        if self.capacity > 0 {
            let mut inner = lock(&self.inner);
            inner.clock += 1;
            let now = inner.clock;
            if let Some((entry, used)) = inner.entries.get_mut(sql) {
                *used = now;
                return Ok(Arc::clone(entry));
            }
        }
        let entry = Arc::new(Entry {
            statement: parse()?,
            usage: Mutex::new(None),
            plans: Mutex::new(Vec::new()),
        });
        if self.capacity > 0 {
            let mut inner = lock(&self.inner);
            if inner.entries.len() >= self.capacity && !inner.entries.contains_key(sql) {
                let oldest = inner
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    inner.entries.remove(&k);
                }
            }
            let now = inner.clock;
            inner
                .entries
                .insert(sql.to_string(), (Arc::clone(&entry), now));
        }
        Ok(entry)
    }

    /// SQL texts kept.
    pub fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Entry {
    /// The columns used of each dataset, if known for these definitions.
    pub fn usage(&self, datasets: &BTreeMap<String, Dataset>) -> Option<Usage> {
        let kept = lock(&self.usage);
        let (shapes_then, usage) = kept.as_ref()?;
        (*shapes_then == shapes(datasets)).then(|| usage.clone())
    }

    pub fn keep_usage(&self, datasets: &BTreeMap<String, Dataset>, usage: &Usage) {
        *lock(&self.usage) = Some((shapes(datasets), usage.clone()));
    }

    /// The optimised plan for these definitions and read plans, if kept.
    pub fn plan(
        &self,
        datasets: &BTreeMap<String, Dataset>,
        reads: &BTreeMap<String, ReadPlan>,
    ) -> Option<LogicalPlan> {
        let key = plan_key(datasets, reads);
        let mut plans = lock(&self.plans);
        let at = plans.iter().position(|(k, _)| *k == key)?;
        let found = plans.remove(at);
        let plan = found.1.clone();
        plans.insert(0, found);
        Some(plan)
    }

    pub fn keep_plan(
        &self,
        datasets: &BTreeMap<String, Dataset>,
        reads: &BTreeMap<String, ReadPlan>,
        plan: &LogicalPlan,
    ) {
        let key = plan_key(datasets, reads);
        let mut plans = lock(&self.plans);
        plans.retain(|(k, _)| *k != key);
        plans.insert(0, (key, plan.clone()));
        plans.truncate(PLANS_PER_SQL);
    }
}
