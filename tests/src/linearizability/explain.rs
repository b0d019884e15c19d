//! Reporting: describing recorded ops and explaining why the search failed.

use std::time::Instant;

use super::prepare::{Ctx, KeyOp, Kind};
use super::search::Stuck;
use super::{Op, Outcome};

impl Ctx<'_> {
    fn ms(&self, t: Instant) -> String {
        format!(
            "+{:.3}ms",
            t.saturating_duration_since(self.base).as_secs_f64() * 1e3
        )
    }

    /// `#12 client 3 read "k" -> Some("a") [call +1.000ms, ret +2.000ms]`
    pub(super) fn describe(&self, ev: usize) -> String {
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

    pub(super) fn explain(
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
