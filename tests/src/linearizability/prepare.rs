//! Per-key preparation: interning values, dropping failed and unobserved ops, the exact
//! reductions that keep the search small, and the stale-read shortcut that explains the
//! common anomaly without searching.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::search::{MAX_MEMO_BYTES, SearchResult, wgl};
use super::{Event, Op, Outcome, Report};

/// Interned value id of "no value".
const NO_VALUE: u32 = 0;

#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    Write(u32),
    Read(u32),
}

/// An op of one key, ready for the search. Times are nanoseconds since the earliest call.
#[derive(Clone, Copy, Debug)]
pub(super) struct KeyOp {
    /// Index into the events.
    pub(super) ev: usize,
    pub(super) kind: Kind,
    pub(super) call: u64,
    /// `None`: +∞.
    pub(super) ret: Option<u64>,
    /// May be left out (an unknown write); has no return entry.
    pub(super) optional: bool,
}

pub(super) enum Verdict {
    Linearizable,
    Violation(String),
    Budget(String),
}

pub(super) struct Ctx<'a> {
    pub(super) events: &'a [Event],
    pub(super) base: Instant,
    pub(super) initial: Option<&'a str>,
    pub(super) shortcut: bool,
}

impl<'a> Ctx<'a> {
    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    pub(super) fn check_key(
        &self,
        key: &str,
        idx: &[usize],
        report: &mut Report,
        max_steps: u64,
    ) -> Verdict {
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
}
