use std::collections::HashMap;

use super::*;

/// Builds events with times in microseconds from a common base.
struct Builder {
    base: Instant,
    events: Vec<Event>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            base: Instant::now(),
            events: Vec::new(),
        }
    }

    fn at(&self, us: u64) -> Instant {
        self.base + Duration::from_micros(us)
    }

    fn push(
        &mut self,
        client: usize,
        op: Op,
        call: u64,
        ret: Option<u64>,
        outcome: Outcome,
    ) -> &mut Self {
        let ret = ret.map(|r| self.at(r));
        self.events.push(Event {
            client,
            op,
            call: self.at(call),
            ret,
            outcome,
        });
        self
    }

    fn write(&mut self, client: usize, key: &str, value: &str, call: u64, ret: u64) -> &mut Self {
        self.push(client, Op::write(key, value), call, Some(ret), Outcome::Ok)
    }

    fn write_unknown(&mut self, client: usize, key: &str, value: &str, call: u64) -> &mut Self {
        self.push(client, Op::write(key, value), call, None, Outcome::Unknown)
    }

    fn write_failed(
        &mut self,
        client: usize,
        key: &str,
        value: &str,
        call: u64,
        ret: u64,
    ) -> &mut Self {
        self.push(
            client,
            Op::write(key, value),
            call,
            Some(ret),
            Outcome::Failed,
        )
    }

    fn read(
        &mut self,
        client: usize,
        key: &str,
        value: Option<&str>,
        call: u64,
        ret: u64,
    ) -> &mut Self {
        self.push(
            client,
            Op::read(key),
            call,
            Some(ret),
            Outcome::Value(value.map(str::to_string)),
        )
    }

    fn check(&self) -> Report {
        check(&self.events, None)
    }
}

fn violation(r: &Report) -> &str {
    assert!(!r.ok, "expected a violation, got {r}");
    assert!(!r.budget_exceeded, "{r}");
    r.violation.as_deref().expect("violation text")
}

#[test]
fn sequential_history_passes() {
    let mut h = Builder::new();
    h.read(0, "k", None, 0, 1)
        .write(0, "k", "a", 2, 3)
        .read(1, "k", Some("a"), 4, 5)
        .write(1, "k", "b", 6, 7)
        .read(0, "k", Some("b"), 8, 9)
        .write(2, "j", "x", 10, 11)
        .read(0, "j", Some("x"), 12, 13)
        .read(0, "k", Some("b"), 14, 15);
    let r = h.check();
    r.assert_ok();
    assert_eq!((r.keys, r.ops), (2, 8));
}

#[test]
fn overlapping_read_may_see_either_value() {
    for seen in ["a", "b"] {
        let mut h = Builder::new();
        h.write(0, "k", "a", 0, 10)
            .write(1, "k", "b", 20, 60)
            .read(2, "k", Some(seen), 30, 50);
        h.check().assert_ok();
    }
    // Two concurrent writes, then reads agreeing on the order either way.
    for (first, second) in [("a", "b"), ("b", "a")] {
        let mut h = Builder::new();
        h.write(0, "k", "a", 0, 10)
            .write(1, "k", "b", 0, 10)
            .read(2, "k", Some(second), 20, 30)
            .read(2, "k", Some(second), 40, 50);
        h.check().assert_ok();
        // …but not both orders at once (found by the search, not the stale-read shortcut).
        let mut h = Builder::new();
        h.write(0, "k", "a", 0, 10)
            .write(1, "k", "b", 0, 10)
            .read(2, "k", Some(second), 20, 30)
            .read(3, "k", Some(first), 40, 50);
        let v = violation(&h.check()).to_string();
        assert!(v.contains("longest valid prefix"), "{v}");
        assert!(
            v.contains(&format!("#3 client 3 read \"k\" -> Some({first:?})")),
            "{v}"
        );
    }
}

#[test]
fn stale_read_fails_and_is_named() {
    let mut h = Builder::new();
    h.write(0, "k1", "a", 0, 1000)
        .write(0, "k1", "b", 2000, 3000)
        .read(1, "k1", Some("a"), 4000, 5000)
        .write(2, "k2", "z", 0, 1000);
    let r = h.check();
    let v = violation(&r);
    assert!(v.contains("key \"k1\""), "{v}");
    assert!(
        v.contains("#2 client 1 read \"k1\" -> Some(\"a\") [call +4.000ms, ret +5.000ms]"),
        "{v}"
    );
    assert!(v.contains("stale read"), "{v}");
    assert!(v.contains("#1 client 0 write \"k1\" = \"b\""), "{v}");
    assert!(!v.contains("k2"), "only the bad key is reported: {v}");
    assert_eq!(r.keys, 2);
    // The search alone finds it too, and explains where it got stuck.
    let r = check_impl(&h.events, None, DEFAULT_MAX_STEPS, false);
    let v = violation(&r);
    assert!(v.contains("key \"k1\""), "{v}");
    assert!(
        v.contains("#2 client 1 read \"k1\" -> Some(\"a\") [call +4.000ms, ret +5.000ms]"),
        "{v}"
    );
    assert!(v.contains("leaves the register at Some(\"b\")"), "{v}");
    assert!(!v.contains("k2"), "only the bad key is reported: {v}");
}

#[test]
fn read_of_value_never_written_fails() {
    let mut h = Builder::new();
    h.write(0, "k", "a", 0, 1).read(1, "k", Some("zzz"), 2, 3);
    let v = violation(&h.check()).to_string();
    assert!(
        v.contains("\"zzz\"") && v.contains("#1 client 1 read"),
        "{v}"
    );
}

#[test]
fn read_of_none_after_completed_write_fails() {
    let mut h = Builder::new();
    h.write(0, "k", "a", 0, 1).read(1, "k", None, 2, 3);
    let v = violation(&h.check()).to_string();
    assert!(v.contains("#1 client 1 read \"k\" -> None"), "{v}");
    // Concurrent with the write, None is fine.
    let mut h = Builder::new();
    h.write(0, "k", "a", 0, 10).read(1, "k", None, 2, 3);
    h.check().assert_ok();
}

#[test]
fn unknown_writes_may_or_may_not_take_effect() {
    // Observed: it took effect (even after the client gave up).
    let mut h = Builder::new();
    h.write(0, "k", "a", 0, 1)
        .write_unknown(1, "k", "b", 2)
        .read(2, "k", Some("a"), 3, 4)
        .read(2, "k", Some("b"), 100, 101)
        .read(0, "k", Some("b"), 200, 201);
    h.check().assert_ok();
    // Never observed: it did not.
    let mut h = Builder::new();
    h.write(0, "k", "a", 0, 1)
        .write_unknown(1, "k", "b", 2)
        .read(2, "k", Some("a"), 3, 4)
        .read(2, "k", Some("a"), 100, 101);
    h.check().assert_ok();
    // But it cannot take effect before it was called…
    let mut h = Builder::new();
    h.read(2, "k", Some("b"), 0, 1)
        .write_unknown(1, "k", "b", 2);
    violation(&h.check());
    // …nor be undone once observed.
    let mut h = Builder::new();
    h.write(0, "k", "a", 0, 1)
        .write_unknown(1, "k", "b", 2)
        .read(2, "k", Some("b"), 3, 4)
        .read(2, "k", Some("a"), 5, 6);
    violation(&h.check());
    // Unknown and failed reads are ignored.
    let mut h = Builder::new();
    h.write(0, "k", "a", 0, 1)
        .push(1, Op::read("k"), 2, None, Outcome::Unknown)
        .push(1, Op::read("k"), 3, Some(4), Outcome::Failed)
        .read(2, "k", Some("a"), 5, 6);
    let r = h.check();
    r.assert_ok();
    assert_eq!(r.ops, 2);
}

#[test]
fn failed_write_must_not_take_effect() {
    let mut h = Builder::new();
    h.write(0, "k", "a", 0, 1)
        .write_failed(1, "k", "b", 2, 3)
        .read(2, "k", Some("b"), 4, 5);
    let v = violation(&h.check()).to_string();
    assert!(v.contains("#2 client 2 read \"k\" -> Some(\"b\")"), "{v}");
    assert!(
        v.contains("#1 client 1 write \"k\" = \"b\" (failed)"),
        "{v}"
    );
    // The same value written successfully by someone else is fine.
    h.write(3, "k", "b", 2, 3);
    h.check().assert_ok();
}

#[test]
fn initial_value_is_respected() {
    let mut h = Builder::new();
    h.read(0, "k", Some("init"), 0, 1)
        .write(0, "k", "a", 2, 3)
        .read(0, "j", Some("init"), 4, 5);
    check(&h.events, Some("init".into())).assert_ok();
    assert!(!check(&h.events, None).ok);
    let mut h = Builder::new();
    h.read(0, "k", None, 0, 1);
    assert!(!check(&h.events, Some("init".into())).ok);
}

#[test]
fn recorder_is_shared_across_threads() {
    let history = History::new();
    std::thread::scope(|s| {
        for client in 0..4 {
            let history = history.clone();
            s.spawn(move || {
                let key = format!("k{client}");
                let p = history.begin(client, Op::write(&key, "v"));
                p.end(Outcome::Ok);
                history
                    .begin(client, Op::read(&key))
                    .end(Outcome::Value(Some("v".into())));
                // Dropped without an outcome: recorded as unknown.
                drop(history.begin(client, Op::write(&key, "lost")));
            });
        }
    });
    let events = history.events();
    assert_eq!(events.len(), 12);
    let lost: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Unknown)
        .collect();
    assert_eq!(lost.len(), 4);
    assert!(lost.iter().all(|e| e.ret.is_none()));
    assert!(
        events
            .iter()
            .filter(|e| e.outcome != Outcome::Unknown)
            .all(|e| e.ret >= Some(e.call))
    );
    let r = history.check(None);
    r.assert_ok();
    assert_eq!((r.keys, r.ops), (4, 12));
}

#[test]
fn budget_exceeded_is_reported() {
    // Many concurrent writes with a read order that forces a wide search.
    let mut h = Builder::new();
    for c in 0..12 {
        h.write(c, "k", &format!("v{c}"), 0, 100);
    }
    h.read(20, "k", Some("v3"), 200, 201)
        .read(20, "k", Some("v4"), 300, 301);
    let r = check_with_budget(&h.events, None, 50);
    assert!(!r.ok && r.budget_exceeded, "{r}");
    let v = r.violation.as_deref().unwrap();
    assert!(
        v.contains("search budget exceeded") && v.contains("\"k\""),
        "{v}"
    );
    // With the default budget the answer is found (and is "no": v4 cannot follow v3 as
    // both writes had returned before the first read).
    violation(&h.check());
}

// -- randomized -------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A history of a truly linearizable register map: a sequencer applies ops one at a time at
/// increasing instants; each client's op gets a random call/return interval around that
/// instant (clients are sequential). Some writes fail (not applied) or time out (applied
/// or not, at random); some reads time out.
fn simulate(seed: u64, n_ops: usize, keys: u64, clients: usize) -> (Instant, Vec<Event>) {
    simulate_with(seed, n_ops, keys, clients, 10, 60)
}

/// `unknown_pct`: share of writes that time out; `spread`: max distance (µs) of call and
/// return from the linearization point.
fn simulate_with(
    seed: u64,
    n_ops: usize,
    keys: u64,
    clients: usize,
    unknown_pct: u64,
    spread: u64,
) -> (Instant, Vec<Event>) {
    let base = Instant::now();
    let at = |us: u64| base + Duration::from_micros(us);
    let mut rng = XorShift(seed);
    let mut state: HashMap<String, Option<String>> = HashMap::new();
    let mut free_at = vec![0u64; clients];
    let mut t = 100u64;
    let mut serial = 0;
    let mut events = Vec::new();
    while events.len() < n_ops {
        t += 1 + rng.below(4);
        let client = rng.below(clients as u64) as usize;
        if free_at[client] > t {
            continue;
        }
        let key = format!("k{}", rng.below(keys));
        let call = t - rng.below(spread).min(t - free_at[client]);
        let ret = t + rng.below(spread);
        free_at[client] = ret + 1;
        let (op, outcome) = if rng.below(100) < 45 {
            serial += 1;
            let value = format!("v{serial}");
            let roll = rng.below(100);
            let outcome = if roll < 5 {
                Outcome::Failed
            } else if roll < 5 + unknown_pct {
                Outcome::Unknown
            } else {
                Outcome::Ok
            };
            let applied = match outcome {
                Outcome::Failed => false,
                Outcome::Unknown => rng.below(2) == 0,
                _ => true,
            };
            if applied {
                state.insert(key.clone(), Some(value.clone()));
            }
            (Op::write(key, value), outcome)
        } else {
            let seen = state.get(&key).cloned().flatten();
            let outcome = if rng.below(20) == 0 {
                Outcome::Unknown
            } else {
                Outcome::Value(seen)
            };
            (Op::read(key), outcome)
        };
        let ret = (outcome != Outcome::Unknown).then(|| at(ret));
        events.push(Event {
            client,
            op,
            call: at(call),
            ret,
            outcome,
        });
    }
    (base, events)
}

/// Appends a read, after everything else, of the value of an acknowledged write that was
/// followed in real time by another acknowledged write of the same key: certainly stale.
fn inject_stale_read(base: Instant, events: &mut Vec<Event>) -> String {
    let acked: Vec<&Event> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Ok && matches!(e.op, Op::Write { .. }))
        .collect();
    let (key, stale) = acked
        .iter()
        .find_map(|w1| {
            acked
                .iter()
                .any(|w2| w2.op.key() == w1.op.key() && w1.ret.unwrap() < w2.call)
                .then(|| match &w1.op {
                    Op::Write { key, value } => (key.clone(), value.clone()),
                    Op::Read { .. } => unreachable!(),
                })
        })
        .expect("some acknowledged write is overwritten later");
    let end = events.iter().filter_map(|e| e.ret).max().unwrap_or(base) + Duration::from_micros(10);
    events.push(Event {
        client: 99,
        op: Op::read(&key),
        call: end,
        ret: Some(end + Duration::from_micros(10)),
        outcome: Outcome::Value(Some(stale.clone())),
    });
    format!(
        "#{} client 99 read {key:?} -> Some({stale:?})",
        events.len() - 1
    )
}

#[test]
fn randomized_linearizable_history_passes_and_stale_read_fails() {
    let started = Instant::now();
    let (base, mut events) = simulate(0x9E37_79B9_7F4A_7C15, 500, 3, 8);
    let r = check(&events, None);
    r.assert_ok();
    assert_eq!(r.keys, 3);
    assert!(r.ops > 400, "{r}");
    let needle = inject_stale_read(base, &mut events);
    let r = check(&events, None);
    let v = violation(&r);
    assert!(v.contains(&needle), "{needle} not in {v}");
    let elapsed = started.elapsed();
    eprintln!("randomized 500 ops: {} steps, {elapsed:?}", r.steps);
    assert!(r.steps < 100_000, "{r}");
}

#[test]
fn randomized_many_seeds() {
    for seed in 1..=20u64 {
        let (base, mut events) = simulate(seed.wrapping_mul(0x2545_F491_4F6C_DD1D), 300, 2, 6);
        check(&events, None).assert_ok();
        let needle = inject_stale_read(base, &mut events);
        for shortcut in [true, false] {
            let r = check_impl(&events, None, DEFAULT_MAX_STEPS, shortcut);
            assert!(violation(&r).contains(&needle), "{r}");
        }
    }
}

#[test]
fn randomized_large_single_key_history_is_fast() {
    // The largest per-key histories the fault tests produce.
    let (base, mut events) = simulate(42, 2000, 1, 16);
    let started = Instant::now();
    let r = check(&events, None);
    r.assert_ok();
    let needle = inject_stale_read(base, &mut events);
    let v = violation(&check(&events, None)).to_string();
    assert!(
        v.contains(&needle) && v.contains("stale read"),
        "{needle} not in {v}"
    );
    // Without the shortcut the search has to exhaust every order of the whole history.
    let bad = check_impl(&events, None, DEFAULT_MAX_STEPS, false);
    let v = violation(&bad);
    assert!(v.contains(&needle), "{needle} not in {v}");
    eprintln!(
        "randomized 2000 ops, 1 key, 16 clients: {} steps to pass, {} steps to fail, {:?}",
        r.steps,
        bad.steps,
        started.elapsed()
    );
    assert!(r.steps < 1_000_000, "{r}");
    assert!(bad.steps < DEFAULT_MAX_STEPS / 2, "{bad}");
}

// -- brute-force cross-check --------------------------------------------------------------

/// Exhaustive reference: some subset containing all required ops has an order respecting
/// real time (`a` before `b` whenever `a` returned strictly before `b` was called) in which
/// every read sees the latest write.
/// (is_write, value, call, ret (None = ∞), optional)
type SmallOp = (bool, Option<u8>, u64, Option<u64>, bool);

fn brute_force(ops: &[SmallOp], initial: Option<u8>) -> bool {
    fn dfs(
        ops: &[SmallOp],
        used: &mut Vec<bool>,
        placed: &mut Vec<usize>,
        state: Option<u8>,
    ) -> bool {
        if ops.iter().zip(used.iter()).all(|(o, &u)| u || o.4) {
            return true;
        }
        for x in 0..ops.len() {
            if used[x] {
                continue;
            }
            let (is_write, v, _, ret, _) = ops[x];
            // x after every placed op p: x must not have returned before p was called.
            if placed.iter().any(|&p| ret.is_some_and(|r| r < ops[p].2)) {
                continue;
            }
            if !is_write && v != state {
                continue;
            }
            used[x] = true;
            placed.push(x);
            let ok = dfs(ops, used, placed, if is_write { v } else { state });
            placed.pop();
            used[x] = false;
            if ok {
                return true;
            }
        }
        false
    }
    // Leaving an optional op out = never placing it; the dfs may stop once all required
    // ops are placed, so optional ops are naturally optional.
    dfs(ops, &mut vec![false; ops.len()], &mut Vec::new(), initial)
}

#[test]
fn agrees_with_brute_force_on_small_random_histories() {
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    let names = ["a", "b", "c"];
    let mut verdicts = [0usize; 2];
    for _ in 0..4000 {
        let n = 1 + rng.below(8) as usize;
        let base = Instant::now();
        let mut events = Vec::new();
        let mut model = Vec::new();
        for _ in 0..n {
            let call = rng.below(10);
            let ret = call + rng.below(6);
            let v = rng.below(3) as u8;
            let (op, outcome, m) = match rng.below(10) {
                0..=3 => (
                    Op::write("k", names[v as usize]),
                    Outcome::Ok,
                    (true, Some(v), call, Some(ret), false),
                ),
                4 => (
                    Op::write("k", names[v as usize]),
                    Outcome::Unknown,
                    (true, Some(v), call, None, true),
                ),
                5 => (
                    Op::write("k", names[v as usize]),
                    Outcome::Failed,
                    (true, None, 0, None, true),
                ),
                6 => (
                    Op::read("k"),
                    Outcome::Value(None),
                    (false, None, call, Some(ret), false),
                ),
                _ => (
                    Op::read("k"),
                    Outcome::Value(Some(names[v as usize].into())),
                    (false, Some(v), call, Some(ret), false),
                ),
            };
            if outcome != Outcome::Failed {
                model.push(m);
            }
            let ret = (outcome != Outcome::Unknown).then(|| base + Duration::from_micros(ret));
            events.push(Event {
                client: 0,
                op,
                call: base + Duration::from_micros(call),
                ret,
                outcome,
            });
        }
        let initial = (rng.below(2) == 0).then_some(0u8);
        let expected = brute_force(&model, initial);
        let initial_value = initial.map(|v| names[v as usize].to_string());
        for shortcut in [true, false] {
            let r = check_impl(&events, initial_value.clone(), DEFAULT_MAX_STEPS, shortcut);
            assert!(!r.budget_exceeded);
            assert_eq!(
                r.ok, expected,
                "history {events:#?} initial {initial:?} shortcut {shortcut}: {r}"
            );
        }
        verdicts[usize::from(expected)] += 1;
    }
    assert!(verdicts[0] > 300 && verdicts[1] > 300, "{verdicts:?}");
}
