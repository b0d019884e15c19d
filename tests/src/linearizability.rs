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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

/// Memory the memoisation table of one key may use before the search gives up.
const MAX_MEMO_BYTES: usize = 512 << 20;

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

// ---------------------------------------------------------------------------------------------
// Per-key preparation and reporting

/// Interned value id of "no value".
const NO_VALUE: u32 = 0;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Write(u32),
    Read(u32),
}

/// An op of one key, ready for the search. Times are nanoseconds since the earliest call.
#[derive(Clone, Copy, Debug)]
struct KeyOp {
    /// Index into the events.
    ev: usize,
    kind: Kind,
    call: u64,
    /// `None`: +∞.
    ret: Option<u64>,
    /// May be left out (an unknown write); has no return entry.
    optional: bool,
}

enum Verdict {
    Linearizable,
    Violation(String),
    Budget(String),
}

struct Ctx<'a> {
    events: &'a [Event],
    base: Instant,
    initial: Option<&'a str>,
    shortcut: bool,
}

impl<'a> Ctx<'a> {
    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn ms(&self, t: Instant) -> String {
        format!(
            "+{:.3}ms",
            t.saturating_duration_since(self.base).as_secs_f64() * 1e3
        )
    }

    /// `#12 client 3 read "k" -> Some("a") [call +1.000ms, ret +2.000ms]`
    fn describe(&self, ev: usize) -> String {
        let e = &self.events[ev];
        let what = match (&e.op, &e.outcome) {
            (Op::Write { key, value }, Outcome::Ok) => {
                format!("write {key:?} = {value:?} (acknowledged)")
            }
            (Op::Write { key, value }, Outcome::Unknown) => {
                format!("write {key:?} = {value:?} (outcome unknown)")
            }
            (Op::Write { key, value }, Outcome::Failed) => {
                format!("write {key:?} = {value:?} (failed)")
            }
            (Op::Read { key }, Outcome::Value(v)) => format!("read {key:?} -> {:?}", v.as_deref()),
            (op, outcome) => format!("{op:?} with outcome {outcome:?}"),
        };
        let ret = match (e.ret, &e.outcome) {
            (Some(r), Outcome::Unknown) => format!("gave up {}", self.ms(r)),
            (Some(r), _) => format!("ret {}", self.ms(r)),
            (None, _) => "never returned".to_string(),
        };
        format!(
            "#{ev} client {} {what} [call {}, {ret}]",
            e.client,
            self.ms(e.call)
        )
    }

    fn check_key(&self, key: &str, idx: &[usize], report: &mut Report, max_steps: u64) -> Verdict {
        // Intern values: 0 is "no value".
        let mut names: Vec<Option<&'a str>> = vec![None];
        let mut ids: HashMap<&'a str, u32> = HashMap::new();
        let mut intern = |v: Option<&'a str>| -> u32 {
            match v {
                None => NO_VALUE,
                Some(s) => *ids.entry(s).or_insert_with(|| {
                    names.push(Some(s));
                    (names.len() - 1) as u32
                }),
            }
        };
        let initial = intern(self.initial);

        let mut ops: Vec<KeyOp> = Vec::with_capacity(idx.len());
        let mut failed_writes: Vec<(usize, u32)> = Vec::new();
        for &ev in idx {
            let e = &self.events[ev];
            let call = self.nanos(e.call);
            let ret = e.ret.map(|r| self.nanos(r).max(call));
            match (&e.op, &e.outcome) {
                (Op::Write { value, .. }, Outcome::Ok) => ops.push(KeyOp {
                    ev,
                    kind: Kind::Write(intern(Some(value))),
                    call,
                    ret,
                    optional: false,
                }),
                (Op::Write { value, .. }, Outcome::Unknown) => ops.push(KeyOp {
                    ev,
                    kind: Kind::Write(intern(Some(value))),
                    call,
                    ret: None,
                    optional: true,
                }),
                (Op::Write { value, .. }, Outcome::Failed) => {
                    failed_writes.push((ev, intern(Some(value))))
                }
                (Op::Read { .. }, Outcome::Value(v)) => ops.push(KeyOp {
                    ev,
                    kind: Kind::Read(intern(v.as_deref())),
                    call,
                    ret,
                    optional: false,
                }),
                (Op::Read { .. }, Outcome::Failed | Outcome::Unknown) => {}
                (Op::Write { .. }, Outcome::Value(_)) | (Op::Read { .. }, Outcome::Ok) => {
                    return Verdict::Violation(format!(
                        "key {key:?}: malformed event (a write has a read result or a read was \
                         acknowledged like a write):\n    {}",
                        self.describe(ev)
                    ));
                }
            }
        }
        report.ops += ops.len();

        // Every value read must be the initial value or written by a write that may have taken
        // effect; otherwise no search is needed (and the message can say exactly why).
        let written: HashSet<u32> = ops
            .iter()
            .filter_map(|o| match o.kind {
                Kind::Write(v) => Some(v),
                Kind::Read(_) => None,
            })
            .collect();
        let mut read_values: HashSet<u32> = HashSet::new();
        for o in &ops {
            if let Kind::Read(v) = o.kind {
                read_values.insert(v);
                if v != initial && !written.contains(&v) {
                    let mut msg = format!(
                        "key {key:?}: a read returned {:?}, which is neither the initial value ({:?}) \
                         nor written by any write of this key that may have taken effect:\n    {}",
                        names[v as usize],
                        self.initial,
                        self.describe(o.ev)
                    );
                    let failed: Vec<_> = failed_writes.iter().filter(|f| f.1 == v).collect();
                    if !failed.is_empty() {
                        msg.push_str("\n  failed writes of that value (a failed write must never take effect):");
                        for f in failed.iter().take(5) {
                            msg.push_str(&format!("\n    {}", self.describe(f.0)));
                        }
                    }
                    return Verdict::Violation(msg);
                }
            }
        }
        // The common anomaly is found (and explained) directly; the search decides the rest.
        if self.shortcut
            && let Some(msg) = self.stale_read(key, &ops, &names, initial)
        {
            return Verdict::Violation(msg);
        }
        // Unknown writes of values nobody read can always be left out.
        ops.retain(|o| {
            !(o.optional && matches!(o.kind, Kind::Write(v) if !read_values.contains(&v)))
        });
        if ops.iter().all(|o| o.optional) {
            return Verdict::Linearizable;
        }
        // Values no read returned are indistinguishable to the search: one class for them all,
        // so that configurations differing only in which of them is current are merged.
        let unread = names.len() as u32;
        let class = |v: u32| if read_values.contains(&v) { v } else { unread };
        for o in &mut ops {
            if let Kind::Write(v) = &mut o.kind {
                *v = class(*v);
            }
        }
        // Deterministic numbering: by call time.
        ops.sort_by_key(|o| (o.call, o.ev));

        let budget = max_steps.saturating_sub(report.steps);
        let mut steps = 0;
        let result = wgl(&ops, class(initial), budget, &mut steps);
        report.steps += steps;
        match result {
            SearchResult::Linearizable => Verdict::Linearizable,
            SearchResult::Budget { memo } => {
                let why = if memo {
                    format!("the memoisation table reached {} MiB", MAX_MEMO_BYTES >> 20)
                } else {
                    format!("{max_steps} steps over all keys were used")
                };
                Verdict::Budget(format!(
                    "key {key:?}: search budget exceeded ({why}) while checking its {} ops; \
                     linearizability undecided",
                    ops.len()
                ))
            }
            SearchResult::Violation(stuck) => {
                Verdict::Violation(self.explain(key, &ops, &names, initial, stuck))
            }
        }
    }

    /// Finds a read that is stale beyond doubt: it returned `x`, whose only write had returned
    /// before any write of some other value `y` was called, and `y` was already in place (a
    /// write of it acknowledged, or a read returned it) before the read was called. Any
    /// linearization then has a write of `y` between the write of `x` and the read. (`x` may also
    /// be the initial value, if never written.) Only a quick, sound shortcut: [`wgl`] finds
    /// every violation, this one sooner and with a clearer explanation.
    fn stale_read(
        &self,
        key: &str,
        ops: &[KeyOp],
        names: &[Option<&str>],
        initial: u32,
    ) -> Option<String> {
        let n_values = names.len();
        let mut writers: Vec<Vec<usize>> = vec![Vec::new(); n_values];
        // Per value, the earliest return proving some write of it had taken effect.
        let mut known: Vec<Option<(u64, usize)>> = vec![None; n_values];
        for (i, o) in ops.iter().enumerate() {
            let (v, proof) = match o.kind {
                Kind::Write(v) => {
                    writers[v as usize].push(i);
                    (v, if o.optional { None } else { o.ret })
                }
                // A read of the initial value may have read the initial state, not a write.
                Kind::Read(v) => (v, if v == initial { None } else { o.ret }),
            };
            if let Some(r) = proof {
                let k = &mut known[v as usize];
                if k.is_none_or(|(kr, _)| r < kr) {
                    *k = Some((r, i));
                }
            }
        }
        // (first call of a write of y, earliest proof y was in place, its op, the first writer)
        let mut ys: Vec<(u64, u64, usize, usize)> = (0..n_values)
            .filter_map(|v| {
                let (proof, by) = known[v]?;
                let first = *writers[v]
                    .iter()
                    .min_by_key(|&&i| (ops[i].call, ops[i].ev))?;
                Some((ops[first].call, proof, by, first))
            })
            .collect();
        ys.sort_unstable();
        // suffix[j]: the earliest proof among ys[j..].
        let mut suffix: Vec<Option<(u64, usize, usize)>> = vec![None; ys.len() + 1];
        for j in (0..ys.len()).rev() {
            let (_, proof, by, first) = ys[j];
            suffix[j] = match suffix[j + 1] {
                Some(best) if best.0 <= proof => Some(best),
                _ => Some((proof, by, first)),
            };
        }
        let mut reads: Vec<usize> = (0..ops.len())
            .filter(|&i| matches!(ops[i].kind, Kind::Read(_)))
            .collect();
        reads.sort_by_key(|&i| (ops[i].call, ops[i].ev));
        for r in reads {
            let Kind::Read(x) = ops[r].kind else { continue };
            // The write of x must have returned by `done` (None: the initial value, at -∞).
            let done = match writers[x as usize][..] {
                [] if x == initial => None,
                [w] if !ops[w].optional => match ops[w].ret {
                    Some(t) => Some(t),
                    None => continue,
                },
                _ => continue,
            };
            let j = done.map_or(0, |d| ys.partition_point(|y| y.0 <= d));
            let Some((proof, by, first)) = suffix[j] else {
                continue;
            };
            if proof >= ops[r].call {
                continue;
            }
            let y = match ops[first].kind {
                Kind::Write(y) => names[y as usize],
                Kind::Read(_) => unreachable!("writers are writes"),
            };
            let value = names[x as usize];
            let mut msg = format!(
                "key {key:?}: not linearizable: stale read. This read returned {value:?}:\n    {}",
                self.describe(ops[r].ev)
            );
            match done {
                None => msg.push_str(&format!(
                    "\n  {value:?} is the initial value, never written; {y:?} was first written by:"
                )),
                Some(_) => {
                    let w = writers[x as usize][0];
                    msg.push_str(&format!(
                        "\n  The only write of {value:?} had returned:\n    {}\n  before any write of {y:?} \
                         was called; the first:",
                        self.describe(ops[w].ev)
                    ));
                }
            }
            msg.push_str(&format!("\n    {}", self.describe(ops[first].ev)));
            if by == first {
                msg.push_str("\n  which was acknowledged before the read was called.");
            } else {
                msg.push_str(&format!(
                    "\n  and {y:?} had taken effect before the read was called, as shown by:\n    {}",
                    self.describe(ops[by].ev)
                ));
            }
            msg.push_str(&format!(
                "\n  So every order puts a write of {y:?} after the write of {value:?} and before the read."
            ));
            return Some(msg);
        }
        None
    }

    fn explain(
        &self,
        key: &str,
        ops: &[KeyOp],
        names: &[Option<&str>],
        initial: u32,
        stuck: Option<Stuck>,
    ) -> String {
        let mut msg = format!(
            "key {key:?}: not linearizable: no order of its {} ops respects both real time and \
             register semantics (initial value {:?}).",
            ops.len(),
            self.initial
        );
        let Some(stuck) = stuck else {
            return msg;
        };
        let value = |v: u32| names[v as usize];
        // The register after the prefix: its last write, or the initial value.
        let state = stuck
            .prefix
            .iter()
            .rev()
            .find_map(|&i| match &self.events[ops[i].ev].op {
                Op::Write { value, .. } => Some(Some(value.as_str())),
                Op::Read { .. } => None,
            })
            .unwrap_or(self.initial);
        msg.push_str(&format!(
            "\n  The longest valid prefix found places {} op(s) and leaves the register at {:?}",
            stuck.prefix.len(),
            state
        ));
        const SHOWN: usize = 8;
        if stuck.prefix.is_empty() {
            msg.push('.');
        } else {
            msg.push_str("; its last ops, in order:");
            let skip = stuck.prefix.len().saturating_sub(SHOWN);
            if skip > 0 {
                msg.push_str(&format!("\n    … {skip} earlier"));
            }
            for &i in &stuck.prefix[skip..] {
                msg.push_str(&format!("\n    {}", self.describe(ops[i].ev)));
            }
        }
        let blocked = &ops[stuck.blocked];
        msg.push_str(&format!(
            "\n  After it, this op cannot take effect before it returned, whatever the order of \
             the ops still in flight:\n    {}",
            self.describe(blocked.ev)
        ));
        if let Kind::Read(v) = blocked.kind {
            let writers: Vec<_> = ops
                .iter()
                .filter(|o| matches!(o.kind, Kind::Write(w) if w == v))
                .collect();
            if v == initial && writers.is_empty() {
                msg.push_str(&format!(
                    "\n  {:?} is the initial value, never written again.",
                    value(v)
                ));
            } else {
                msg.push_str(&format!("\n  Writes of {:?}:", value(v)));
                if v == initial {
                    msg.push_str(" (it is also the initial value)");
                }
                for w in writers.iter().take(SHOWN) {
                    msg.push_str(&format!("\n    {}", self.describe(w.ev)));
                }
                if writers.len() > SHOWN {
                    msg.push_str(&format!("\n    … {} more", writers.len() - SHOWN));
                }
            }
        }
        if !stuck.in_flight.is_empty() {
            msg.push_str("\n  Other ops in flight at that point (called, not placed):");
            for &i in stuck.in_flight.iter().take(2 * SHOWN) {
                msg.push_str(&format!("\n    {}", self.describe(ops[i].ev)));
            }
            if stuck.in_flight.len() > 2 * SHOWN {
                msg.push_str(&format!(
                    "\n    … {} more",
                    stuck.in_flight.len() - 2 * SHOWN
                ));
            }
        }
        msg
    }
}

// ---------------------------------------------------------------------------------------------
// The Wing–Gong–Lowe search

/// Where the search got furthest before failing.
struct Stuck {
    /// Ops placed, in linearization order (indices into the key's ops).
    prefix: Vec<usize>,
    /// The op whose return was reached without it being placed.
    blocked: usize,
    /// Ops called before that return and not placed.
    in_flight: Vec<usize>,
}

enum SearchResult {
    Linearizable,
    Violation(Option<Stuck>),
    Budget { memo: bool },
}

const HEAD: usize = 0;
const TAIL: usize = 1;

/// The history as a doubly linked list of call and return entries in time order, with
/// "dancing links" removal and reinsertion.
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The op of each node.
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// The return node of each op (`None` for optional ops).
    ret_node: Vec<Option<usize>>,
}

impl Entries {
    fn new(ops: &[KeyOp]) -> Self {
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (i, o) in ops.iter().enumerate() {
            order.push((o.call, 0, i));
            if !o.optional {
                order.push((o.ret.unwrap_or(u64::MAX), 1, i));
            }
        }
        // At equal times calls come first: touching intervals count as concurrent.
        order.sort_unstable();
        let n = order.len() + 2;
        let mut e = Entries {
            next: vec![TAIL; n],
            prev: vec![HEAD; n],
            op: vec![usize::MAX; n],
            is_call: vec![false; n],
            ret_node: vec![None; ops.len()],
        };
        let mut last = HEAD;
        for (k, &(_, kind, i)) in order.iter().enumerate() {
            let node = k + 2;
            e.op[node] = i;
            e.is_call[node] = kind == 0;
            if kind == 1 {
                e.ret_node[i] = Some(node);
            }
            e.next[last] = node;
            e.prev[node] = last;
            last = node;
        }
        e.next[last] = TAIL;
        e.prev[TAIL] = last;
        e
    }

    fn unlink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = x;
        self.prev[n] = x;
    }

    /// Removes a call entry and its return entry.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Some(r) = self.ret_node[self.op[call]] {
            self.unlink(r);
        }
    }

    /// Undoes the matching [`Self::lift`] (lifts are undone in reverse order).
    fn unlift(&mut self, call: usize) {
        if let Some(r) = self.ret_node[self.op[call]] {
            self.relink(r);
        }
        self.relink(call);
    }
}

fn wgl(ops: &[KeyOp], initial: u32, max_steps: u64, steps: &mut u64) -> SearchResult {
    let mut list = Entries::new(ops);
    let mut remaining = ops.iter().filter(|o| !o.optional).count();
    let words = ops.len().div_ceil(64);
    let mut bits = vec![0u64; words];
    let zobrist: Vec<u64> = (0..ops.len() as u64).map(|i| splitmix64(i + 1)).collect();
    let mut zhash = 0u64;
    let memo_hash = |zhash: u64, state: u32| zhash ^ splitmix64(u64::from(state) ^ 0xA5A5_5A5A);
    let mut memo = Memo::new(words);
    let mut state = initial;
    // Reads not yet placed, per value: an optional write is only worth placing while a read of
    // its value remains (otherwise leaving it out is equivalent).
    let n_values = ops
        .iter()
        .map(|o| match o.kind {
            Kind::Write(v) | Kind::Read(v) => v as usize + 1,
        })
        .max()
        .unwrap_or(0)
        .max(initial as usize + 1);
    let mut unplaced_reads = vec![0u32; n_values];
    for o in ops {
        if let Kind::Read(v) = o.kind {
            unplaced_reads[v as usize] += 1;
        }
    }
    // (call node placed, register value before it, forced)
    let mut stack: Vec<(usize, u32, bool)> = Vec::new();
    let mut best: Option<Stuck> = None;
    // At a configuration not seen before: look for a read that can be placed first.
    let mut fresh = true;
    let mut entry = list.next[HEAD];
    loop {
        if remaining == 0 {
            // Only optional ops are left: they can all be left out.
            return SearchResult::Linearizable;
        }
        if *steps >= max_steps {
            return SearchResult::Budget { memo: false };
        }
        *steps += 1;
        if memo.bytes() > MAX_MEMO_BYTES {
            return SearchResult::Budget { memo: true };
        }

        // Each step places an op (moving to a new configuration, `fresh`), moves `entry` along
        // the list, or yields `true` to backtrack.
        let backtrack = 'step: {
            if fresh {
                fresh = false;
                entry = list.next[HEAD];
                // A read of the current value whose call precedes every pending return can be
                // placed right now without loss: in any valid completion it can be moved here
                // (nothing it must follow is unplaced, and reads change nothing). So place it
                // without branching: if that fails, this configuration fails.
                let mut n = entry;
                while n != TAIL && list.is_call[n] {
                    *steps += 1;
                    let i = list.op[n];
                    if matches!(ops[i].kind, Kind::Read(v) if v == state) {
                        bits[i / 64] |= 1 << (i % 64);
                        zhash ^= zobrist[i];
                        if !memo.insert(&bits, state, memo_hash(zhash, state)) {
                            bits[i / 64] &= !(1 << (i % 64));
                            zhash ^= zobrist[i];
                            break 'step true;
                        }
                        stack.push((n, state, true));
                        list.lift(n);
                        unplaced_reads[state as usize] -= 1;
                        remaining -= 1;
                        fresh = true;
                        break 'step false;
                    }
                    n = list.next[n];
                }
            }
            if entry != TAIL && list.is_call[entry] {
                let i = list.op[entry];
                let after = match ops[i].kind {
                    Kind::Write(v) => {
                        (!ops[i].optional || unplaced_reads[v as usize] > 0).then_some(v)
                    }
                    Kind::Read(v) => (v == state).then_some(state),
                };
                if let Some(after) = after {
                    bits[i / 64] |= 1 << (i % 64);
                    zhash ^= zobrist[i];
                    if memo.insert(&bits, after, memo_hash(zhash, after)) {
                        stack.push((entry, state, false));
                        state = after;
                        list.lift(entry);
                        if let Kind::Read(v) = ops[i].kind {
                            unplaced_reads[v as usize] -= 1;
                        }
                        if !ops[i].optional {
                            remaining -= 1;
                        }
                        fresh = true;
                        break 'step false;
                    }
                    bits[i / 64] &= !(1 << (i % 64));
                    zhash ^= zobrist[i];
                }
                entry = list.next[entry];
                false
            } else {
                // A return entry: its op was not placed in time. (The end of the list cannot be
                // reached while a return entry remains; backtrack there too.)
                if entry != TAIL && best.as_ref().is_none_or(|b| stack.len() > b.prefix.len()) {
                    let mut in_flight = Vec::new();
                    let mut n = list.next[HEAD];
                    while n != entry && n != TAIL {
                        if list.is_call[n] && list.op[n] != list.op[entry] {
                            in_flight.push(list.op[n]);
                        }
                        n = list.next[n];
                    }
                    best = Some(Stuck {
                        prefix: stack.iter().map(|&(node, _, _)| list.op[node]).collect(),
                        blocked: list.op[entry],
                        in_flight,
                    });
                }
                true
            }
        };
        if backtrack {
            // Undo placements up to and including the latest one that was a real choice, and
            // try the entries after it.
            loop {
                let Some((node, before, forced)) = stack.pop() else {
                    return SearchResult::Violation(best);
                };
                let i = list.op[node];
                bits[i / 64] &= !(1 << (i % 64));
                zhash ^= zobrist[i];
                state = before;
                list.unlift(node);
                if let Kind::Read(v) = ops[i].kind {
                    unplaced_reads[v as usize] += 1;
                }
                if !ops[i].optional {
                    remaining += 1;
                }
                if !forced {
                    entry = list.next[node];
                    break;
                }
            }
        }
    }
}

/// Set of visited (linearized set, register value) configurations, stored exactly in a flat
/// arena and indexed by an incrementally maintained (Zobrist) hash.
struct Memo {
    words: usize,
    arena: Vec<u64>,
    states: Vec<u32>,
    chain: Vec<u32>,
    heads: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
}

const NIL: u32 = u32::MAX;

impl Memo {
    fn new(words: usize) -> Self {
        Memo {
            words,
            arena: Vec::new(),
            states: Vec::new(),
            chain: Vec::new(),
            heads: HashMap::default(),
        }
    }

    /// Inserts the configuration; false if it was already there.
    fn insert(&mut self, bits: &[u64], state: u32, hash: u64) -> bool {
        let w = self.words;
        let mut cur = self.heads.get(&hash).copied().unwrap_or(NIL);
        while cur != NIL {
            let c = cur as usize;
            if self.states[c] == state && self.arena[c * w..(c + 1) * w] == *bits {
                return false;
            }
            cur = self.chain[c];
        }
        let idx =
            u32::try_from(self.states.len()).expect("memo entries fit u32 under the memory cap");
        self.arena.extend_from_slice(bits);
        self.states.push(state);
        self.chain.push(self.heads.insert(hash, idx).unwrap_or(NIL));
        true
    }

    fn bytes(&self) -> usize {
        self.arena.capacity() * 8
            + self.states.capacity() * 4
            + self.chain.capacity() * 4
            + self.heads.capacity() * 16
    }
}

/// Hasher for keys that are already well-mixed 64-bit hashes.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
#[path = "linearizability/tests.rs"]
mod tests;
