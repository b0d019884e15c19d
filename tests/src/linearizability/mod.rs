//! Linearizability checking for histories recorded by fault tests.
//!
//! Client threads record every operation they issue against the cluster in a [`History`]
//! (`begin` before sending, [`Pending::end`] with the [`Outcome`] afterwards); at the end the
//! test calls [`check`] on [`History::events`].
//!
//! The model is a map of independent registers: key → `Option<String>`, every key starting at
//! the same `initial` value. Linearizability is local (compositional), so every key is checked
//! on its own with the Wing–Gong algorithm as refined by Lowe (the one Knossos and porcupine
//! implement): a depth-first search for a total order of the key's operations that respects
//! real time (an op that returned before another was called comes first) and the register's
//! semantics (a read returns the latest write before it), memoising every visited
//! (set of linearized ops, register value) pair so no configuration is explored twice. The
//! search is exact, iterative (explicit stack) and bounded by a step budget.
//!
//! Outcomes:
//! * [`Outcome::Ok`] / [`Outcome::Value`]: the op took effect, at one instant between its call and
//!   its return.
//! * [`Outcome::Failed`]: the op definitely did not take effect (4xx, connection refused before
//!   sending); it is dropped.
//! * [`Outcome::Unknown`]: timeout, 5xx, connection reset after sending. A write may have taken
//!   effect at any instant after its call (even after the client gave up) or never; like a
//!   Knossos `:info` op, its return is at +∞ and it may be left out. An unknown read has no
//!   observable effect and is dropped.
//!
//! Exact reductions keep the search small (each is argued where it is implemented, and the
//! tests cross-check the whole against brute force):
//! * unknown writes of values no read of the key returned are left out (such a write can only be
//!   followed by another write or by nothing, so leaving it out loses no order);
//! * values no read returned are one class to the search (no read can tell them apart);
//! * a read of the current value that may go next is placed without branching (it can be moved
//!   there in any valid order);
//! * before searching, a plain stale read (the read's value was certainly overwritten, in real
//!   time, before the read began) is reported directly, with a direct explanation.
//!
//! On failure the report names the key, the longest valid prefix found, the op that could not
//! take effect before it returned, and the ops involved, with times relative to the earliest
//! call in the history.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prepare::{Ctx, Verdict};

mod explain;
mod prepare;
mod search;

#[cfg(test)]
mod tests;

/// An operation on one key of the register map.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Write { key: String, value: String },
    Read { key: String },
}

impl Op {
    pub fn write(key: impl Into<String>, value: impl Into<String>) -> Self {
        Op::Write {
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn read(key: impl Into<String>) -> Self {
        Op::Read { key: key.into() }
    }

    pub fn key(&self) -> &str {
        match self {
            Op::Write { key, .. } | Op::Read { key } => key,
        }
    }
}

/// What the client learned about an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A write was acknowledged.
    Ok,
    /// A read returned this value (`None`: the key has no value).
    Value(Option<String>),
    /// Definitely not applied (4xx validation error, connection refused before sending, …).
    Failed,
    /// May or may not have taken effect (timeout, 5xx, connection reset after sending, …).
    Unknown,
}

/// One recorded operation.
#[derive(Clone, Debug)]
pub struct Event {
    /// Which client (thread) issued it; informational, used in reports.
    pub client: usize,
    pub op: Op,
    /// Taken just before the request was sent.
    pub call: Instant,
    /// Taken just after the response arrived; `None` for [`Outcome::Unknown`] (treated as +∞ in
    /// any case for unknown ops).
    pub ret: Option<Instant>,
    pub outcome: Outcome,
}

/// Thread-safe recorder of a history. Cloning shares the same record.
#[derive(Clone, Debug, Default)]
pub struct History {
    events: Arc<Mutex<Vec<Event>>>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the call time of `op` now; finish with [`Pending::end`]. A `Pending` dropped
    /// without `end` (say, the client thread panicked) is recorded as [`Outcome::Unknown`].
    pub fn begin(&self, client: usize, op: Op) -> Pending {
        Pending {
            history: self.clone(),
            client,
            op: Some(op),
            call: Instant::now(),
        }
    }

    /// Records a complete event (for histories assembled by hand).
    pub fn record(&self, event: Event) {
        self.lock().push(event);
    }

    /// The events recorded so far, in the order they completed.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// [`check`] of the events recorded so far.
    pub fn check(&self, initial: Option<String>) -> Report {
        check(&self.events(), initial)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        // A client thread that panicked while holding the lock has still pushed whole events.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An operation that has been called but not yet recorded as returned.
#[derive(Debug)]
pub struct Pending {
    history: History,
    client: usize,
    op: Option<Op>,
    call: Instant,
}

impl Pending {
    /// Records the outcome; the return time is now (`None` for [`Outcome::Unknown`]).
    pub fn end(mut self, outcome: Outcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(op) = self.op.take() {
            let ret = (outcome != Outcome::Unknown).then(Instant::now);
            self.history.record(Event {
                client: self.client,
                op,
                call: self.call,
                ret,
                outcome,
            });
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.finish(Outcome::Unknown);
    }
}

/// Result of [`check`].
#[derive(Clone, Debug)]
pub struct Report {
    /// The history is linearizable (and the search finished within its budget).
    pub ok: bool,
    /// Distinct keys in the history.
    pub keys: usize,
    /// Operations checked: all events except failed ops and reads without a value.
    pub ops: usize,
    /// Search steps taken over all keys (a deterministic measure of the work done).
    pub steps: u64,
    /// The search was abandoned ("search budget exceeded"): `ok` is false, but for that key (and
    /// any keys after it, left unchecked) the history is not known to be wrong.
    pub budget_exceeded: bool,
    /// Why the history is not linearizable, per failing key: the key, the ops involved with
    /// their times (relative to the earliest call in the history), and the reason.
    pub violation: Option<String>,
}

impl Report {
    /// Panics with the violation unless the history is linearizable.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.ok, "{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.ok {
            "linearizable"
        } else if self.budget_exceeded {
            "not shown linearizable (search budget exceeded)"
        } else {
            "NOT linearizable"
        };
        write!(
            f,
            "history {verdict}: {} ops on {} keys, {} search steps",
            self.ops, self.keys, self.steps
        )?;
        if let Some(v) = &self.violation {
            write!(f, "\n{v}")?;
        }
        Ok(())
    }
}

/// Default budget of search steps for [`check`], over all keys.
pub const DEFAULT_MAX_STEPS: u64 = 10_000_000;

/// Checks that `events` is linearizable for a map of registers whose every key starts at
/// `initial`, with a budget of [`DEFAULT_MAX_STEPS`] search steps.
pub fn check(events: &[Event], initial: Option<String>) -> Report {
    check_with_budget(events, initial, DEFAULT_MAX_STEPS)
}

/// [`check`] with an explicit budget of search steps (over all keys).
pub fn check_with_budget(events: &[Event], initial: Option<String>, max_steps: u64) -> Report {
    check_impl(events, initial, max_steps, true)
}

/// `shortcut`: look for plain stale reads before searching (off only to test the search).
fn check_impl(events: &[Event], initial: Option<String>, max_steps: u64, shortcut: bool) -> Report {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        by_key.entry(e.op.key()).or_default().push(i);
    }
    let base = events.iter().map(|e| e.call).min();
    let ctx = Ctx {
        events,
        base: base.unwrap_or_else(Instant::now),
        initial: initial.as_deref(),
        shortcut,
    };
    let mut report = Report {
        ok: true,
        keys: by_key.len(),
        ops: 0,
        steps: 0,
        budget_exceeded: false,
        violation: None,
    };
    let mut violations = Vec::new();
    for (key, idx) in &by_key {
        let verdict = ctx.check_key(key, idx, &mut report, max_steps);
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Violation(msg) => violations.push(msg),
            Verdict::Budget(msg) => {
                report.budget_exceeded = true;
                violations.push(msg);
                break;
            }
        }
    }
    if !violations.is_empty() {
        report.ok = false;
        report.violation = Some(violations.join("\n\n"));
    }
    report
}

/// A copy of `events` with one certainly-stale read appended: after everything else,
/// a read of the value of an acknowledged write that another acknowledged write of the
/// same key followed in real time. `None` when the history has no such pair. Fault
/// tests use it to show their checker is not vacuous on their own histories.
pub fn inject_stale_read(events: &[Event]) -> Option<Vec<Event>> {
    let acked: Vec<&Event> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Ok && matches!(e.op, Op::Write { .. }))
        .collect();
    let (key, stale) = acked.iter().find_map(|w1| {
        let done = w1.ret?;
        if !acked
            .iter()
            .any(|w2| w2.op.key() == w1.op.key() && done < w2.call)
        {
            return None;
        }
        match &w1.op {
            Op::Write { key, value } => Some((key.clone(), value.clone())),
            Op::Read { .. } => None,
        }
    })?;
    let end = events.iter().filter_map(|e| e.ret).max()? + Duration::from_micros(10);
    let mut out = events.to_vec();
    out.push(Event {
        client: usize::MAX,
        op: Op::read(key),
        call: end,
        ret: Some(end + Duration::from_micros(10)),
        outcome: Outcome::Value(Some(stale)),
    });
    Some(out)
}
