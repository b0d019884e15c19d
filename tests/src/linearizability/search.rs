//! The Wing–Gong–Lowe search over one key's ops: a depth-first search with "dancing links",
//! memoised on (linearized set, register value), bounded by a step budget and a memory cap.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::prepare::{KeyOp, Kind};

/// Memory the memoisation table of one key may use before the search gives up.
pub(super) const MAX_MEMO_BYTES: usize = 512 << 20;

/// Where the search got furthest before failing.
pub(super) struct Stuck {
    /// Ops placed, in linearization order (indices into the key's ops).
    pub(super) prefix: Vec<usize>,
    /// The op whose return was reached without it being placed.
    pub(super) blocked: usize,
    /// Ops called before that return and not placed.
    pub(super) in_flight: Vec<usize>,
}

pub(super) enum SearchResult {
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

pub(super) fn wgl(ops: &[KeyOp], initial: u32, max_steps: u64, steps: &mut u64) -> SearchResult {
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
