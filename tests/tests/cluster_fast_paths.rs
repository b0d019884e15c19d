//! The write and read paths' shared work keeps every guarantee: concurrent writes
//! share Raft entries and forwarding requests yet each keeps its own outcome, and a
//! leader's read lease never lets it answer from state it cannot bring up to date.
//! Real `yiwang serve` processes on 127.0.X.k, as in `cluster.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use yiwang_tests::cluster::{Cluster, ClusterOptions, TEST_DEPT as DEPT, test_dataset as dataset};

/// Concurrent writes share Raft entries (the leader's proposer batches them) and
/// forwarding requests (so does each follower's forwarder), and each command still gets
/// its own outcome: every dataset is registered exactly once even when two nodes are
/// asked to register it at the same moment, and all nodes agree.
#[test]
fn concurrent_writes_share_entries_and_keep_their_own_outcomes() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let before = c.converge(Duration::from_secs(10));
    let leader = c.leader().unwrap();
    // `/raft/forward` requests the leader answered (writes and read barriers forwarded
    // by the followers).
    let forwards = || {
        c.metric(
            leader,
            "yiwang_http_request_seconds_count",
            r#"route="/raft/forward""#,
        )
        .expect("the leader's metrics") as u64
    };
    let forwards_before = forwards();
    let ids: Vec<String> = (0..48).map(|i| format!("{DEPT}-8{i:04}")).collect();
    // Each id is registered twice, through two different nodes, all at once.
    let jobs: Vec<(u64, String)> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            let a = i as u64 % 3 + 1;
            [(a, id.clone()), (a % 3 + 1, id.clone())]
        })
        .collect();
    let start = Arc::new(std::sync::Barrier::new(jobs.len()));
    let threads: Vec<_> = jobs
        .into_iter()
        .map(|(node, id)| {
            let api = c.api(node, "gaj-steward");
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let r = api.post("/v1/datasets", &dataset(&id, "并发登记"));
                (id, r.status, r.body)
            })
        })
        .collect();
    let mut created: std::collections::BTreeMap<String, usize> = Default::default();
    for t in threads {
        let (id, status, body) = t.join().unwrap();
        match status {
            201 => *created.entry(id).or_default() += 1,
            409 => {
                created.entry(id).or_default();
            }
            other => panic!("registering {id}: {other} {body}"),
        }
    }
    assert_eq!(created.len(), ids.len());
    for (id, n) in &created {
        assert_eq!(*n, 1, "{id} was created {n} times");
    }

    // The followers forwarded 64 of the writes; together they travel in fewer requests.
    let forwarded = forwards() - forwards_before;
    eprintln!("64 forwarded writes took {forwarded} /raft/forward requests");
    assert!(
        forwarded < 64,
        "64 forwarded writes took {forwarded} requests: they were not batched"
    );

    let after = c.converge(Duration::from_secs(10));
    let entries = after - before;
    eprintln!("96 concurrent commands took {entries} Raft entries");
    // One entry each without batching (96); 5–10 in practice with it.
    assert!(
        entries <= 48,
        "96 concurrent commands took {entries} Raft entries: they were not batched"
    );
    let on_1 = c.ids_on(1);
    for k in 2..=3 {
        assert_eq!(c.ids_on(k), on_1, "node {k} differs from node 1");
    }
    for id in &ids {
        assert!(on_1.contains(id), "{id} missing");
    }
}

/// A leader cut off from its majority while it holds a read lease: a linearizable read
/// must wait for the entries in its log, and when they cannot commit it answers 503 —
/// never its older state after the lease has run out (by then the majority may have
/// elected a leader and committed writes this node has not seen).
#[test]
fn a_leased_read_that_cannot_catch_up_is_refused() {
    let c = Cluster::start(ClusterOptions {
        proxies: true,
        // A long election timeout gives a long lease (half of it, 3 s): time to act
        // within, even on a loaded machine.
        election_ms: 6000,
        ..Default::default()
    })
    .unwrap();
    let old = c.leader().unwrap();
    let sys = c.api(old, "gaj-system");
    // Let any earlier lease run out, so that this read runs a quorum round and starts a
    // fresh one; then the leader is cut off and takes a write it can append but never
    // commit.
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(sys.get("/v1/departments").status, 200);
    // From the node's own metrics (local and quick; `/v1/cluster` would also ask the
    // peers it can no longer reach).
    let last_log = || {
        c.metric(old, "yiwang_raft_last_log_index", "")
            .map(|v| v as u64)
    };
    let before = last_log().unwrap();
    c.isolate(old);
    let writer = c.api(old, "gaj-steward");
    let write = std::thread::spawn(move || {
        let req = writer
            .req(reqwest::Method::POST, "/v1/datasets")
            .timeout(Duration::from_secs(30))
            .json(&dataset(&format!("{DEPT}-72001"), "cut off"));
        writer.try_send(req).map(|r| r.status)
    });
    let deadline = Instant::now() + Duration::from_secs(2);
    while last_log().is_none_or(|l| l <= before) {
        assert!(
            Instant::now() < deadline,
            "the cut-off leader did not append the write"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = sys.send(
        sys.req(reqwest::Method::GET, "/v1/departments")
            .timeout(Duration::from_secs(30)),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.contains("has not applied log index"),
        "refused for another reason: {}",
        r.body
    );
    assert!(
        !matches!(write.join().unwrap(), Ok(s) if s < 300),
        "the cut-off write must not succeed"
    );
    c.heal();
}
