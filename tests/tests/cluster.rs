//! Fault tests: real `yiwang serve` processes on 127.0.X.k, killed, restarted and
//! partitioned (a fault-injecting TCP proxy in front of each node, see
//! `yiwang_tests::proxy`), with a history of concurrent operations checked for
//! linearizability by a Wing–Gong checker.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yiwang_tests::cluster::{Cluster, ClusterOptions, TEST_DEPT as DEPT, test_dataset as dataset};
use yiwang_tests::linearizability::{self, History, Op, Outcome};
use yiwang_tests::{Api, SendError, binary};

/// A tiny deterministic PRNG for workload choices.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The keys of the register workload: datasets whose title is the register value.
fn keys() -> Vec<String> {
    (1..=3).map(|i| format!("{DEPT}-7000{i}")).collect()
}

fn prepare_keys(c: &Cluster) {
    let steward = c.api(1, "gaj-steward");
    for k in keys() {
        let r = steward.post("/v1/datasets", &dataset(&k, "init"));
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

/// Concurrent clients writing and reading the registers through random live nodes,
/// and creating datasets whose acknowledgement is recorded; runs until `stop`.
fn workload(
    c: &Cluster,
    clients: usize,
    stop: Arc<AtomicBool>,
    history: History,
    acked: Arc<std::sync::Mutex<Vec<String>>>,
    live: Arc<std::sync::Mutex<BTreeSet<u64>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let nodes = c.nodes;
    let apis: Vec<Vec<(Api, Api)>> = (0..clients)
        .map(|_| {
            (1..=nodes)
                .map(|k| (c.api(k, "gaj-steward"), c.api(k, "gaj-system")))
                .collect()
        })
        .collect();
    apis.into_iter()
        .enumerate()
        .map(|(client, apis)| {
            let stop = stop.clone();
            let history = history.clone();
            let acked = acked.clone();
            let live = live.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((client as u64 + 1) * 0x1000_0001));
                let mut seq = 0u64;
                let keys = keys();
                while !stop.load(Ordering::Relaxed) {
                    let up: Vec<u64> = live.lock().unwrap().iter().copied().collect();
                    let node = up[(rng.next() % up.len() as u64) as usize];
                    let (steward, system) = &apis[(node - 1) as usize];
                    let key = keys[(rng.next() % keys.len() as u64) as usize].clone();
                    seq += 1;
                    match rng.next() % 3 {
                        0 => {
                            let value = format!("c{client}-{seq}");
                            let p = history.begin(
                                client,
                                Op::Write {
                                    key: key.clone(),
                                    value: value.clone(),
                                },
                            );
                            let req = steward
                                .req(reqwest::Method::PUT, &format!("/v1/datasets/{key}"))
                                .timeout(Duration::from_secs(8))
                                .json(&dataset(&key, &value));
                            p.end(match steward.try_send(req) {
                                Ok(r) if r.status == 200 => Outcome::Ok,
                                Ok(r) if r.status < 500 => Outcome::Failed,
                                Ok(_) => Outcome::Unknown,
                                Err(SendError::Connect(_)) => Outcome::Failed,
                                Err(SendError::Other(_)) => Outcome::Unknown,
                            });
                        }
                        1 => {
                            let p = history.begin(client, Op::Read { key: key.clone() });
                            let req = system
                                .req(reqwest::Method::GET, &format!("/v1/datasets/{key}"))
                                .timeout(Duration::from_secs(8));
                            p.end(match system.try_send(req) {
                                Ok(r) if r.status == 200 => {
                                    Outcome::Value(r.json()["title"].as_str().map(String::from))
                                }
                                _ => Outcome::Failed,
                            });
                        }
                        _ => {
                            let id = format!("{DEPT}-{client}{seq:05}");
                            let req = steward
                                .req(reqwest::Method::POST, "/v1/datasets")
                                .timeout(Duration::from_secs(8))
                                .json(&dataset(&id, "load"));
                            if let Ok(r) = steward.try_send(req)
                                && r.status == 201
                            {
                                acked.lock().unwrap().push(id);
                            }
                        }
                    }
                }
            })
        })
        .collect()
}

#[test]
fn leader_crash_under_load_loses_nothing_and_stays_linearizable() {
    let mut c = Cluster::start(ClusterOptions {
        demo: true,
        ..Default::default()
    })
    .unwrap();
    prepare_keys(&c);
    let history = History::new();
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let live = Arc::new(std::sync::Mutex::new((1..=3).collect::<BTreeSet<u64>>()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads = workload(
        &c,
        4,
        stop.clone(),
        history.clone(),
        acked.clone(),
        live.clone(),
    );

    std::thread::sleep(Duration::from_millis(1500));
    let old = c.leader().expect("a leader");
    live.lock().unwrap().remove(&old);
    c.kill(old);
    let (new, took) = c
        .wait_leader(Some(old), Duration::from_secs(5))
        .expect("a new leader within 5 s");
    assert_ne!(new, old);
    eprintln!("leader {old} killed; node {new} elected after {took:?}");
    std::thread::sleep(Duration::from_millis(2000));
    c.start_node(old).unwrap();
    c.wait_ready(old, Duration::from_secs(30)).unwrap();
    live.lock().unwrap().insert(old);
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    c.converge(Duration::from_secs(30));
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "the workload made progress: {}",
        acked.len()
    );
    let sets: Vec<BTreeSet<String>> = (1..=3).map(|k| c.ids_on(k)).collect();
    assert_eq!(sets[0], sets[1], "nodes 1 and 2 agree");
    assert_eq!(
        sets[0], sets[2],
        "nodes 1 and 3 agree (the old leader converged)"
    );
    let missing: Vec<&String> = acked.iter().filter(|id| !sets[0].contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");

    let events = history.events();
    let report = linearizability::check(&events, Some("init".into()));
    assert!(report.ok, "not linearizable: {:?}", report.violation);
    assert!(
        report.ops > 50,
        "too few operations checked: {}",
        report.ops
    );

    // The checker is not vacuous: one stale read injected into this very history is caught.
    let stale = linearizability::inject_stale_read(&events)
        .expect("history has a completed write to make stale");
    let report = linearizability::check(&stale, Some("init".into()));
    assert!(!report.ok, "a stale read must be detected");
}

#[test]
fn minority_partition_cannot_commit_and_majority_can() {
    let c = Cluster::start(ClusterOptions {
        proxies: true,
        ..Default::default()
    })
    .unwrap();
    prepare_keys(&c);
    let old = c.leader().unwrap();
    c.isolate(old);
    let majority: Vec<u64> = (1..=3).filter(|k| *k != old).collect();
    // The majority elects a leader among itself and commits.
    let deadline = Instant::now() + Duration::from_secs(10);
    let new = loop {
        let seen: Vec<u64> = majority
            .iter()
            .filter_map(|k| c.status(*k))
            .filter(|s| s["state"] == "Leader")
            .filter_map(|s| s["node"].as_u64())
            .collect();
        if let Some(l) = seen.first() {
            break *l;
        }
        assert!(Instant::now() < deadline, "majority elected no leader");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(majority.contains(&new));
    let r = c.api(majority[0], "gaj-steward").post(
        "/v1/datasets",
        &dataset(&format!("{DEPT}-71001"), "majority"),
    );
    assert_eq!(r.status, 201, "the majority commits: {}", r.body);

    // The old leader, alone, cannot commit: the write does not succeed...
    let minority = c.api(old, "gaj-steward");
    let req = minority
        .req(reqwest::Method::POST, "/v1/datasets")
        .timeout(Duration::from_secs(20))
        .json(&dataset(&format!("{DEPT}-71002"), "minority"));
    match minority.try_send(req) {
        Ok(r) => assert!(
            r.status >= 500,
            "minority write must not succeed: {} {}",
            r.status,
            r.body
        ),
        Err(e) => eprintln!("minority write: {e:?}"),
    }
    // ...nor serve a linearizable read, though a stale local read works.
    let sys = c.api(old, "gaj-system");
    let r = sys.send(
        sys.req(reqwest::Method::GET, "/v1/departments")
            .timeout(Duration::from_secs(20)),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(sys.get("/v1/departments?consistency=stale").status, 200);

    // Heal: the old leader rejoins, its uncommitted write is gone, and it has the
    // majority's write.
    c.heal();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids = c.ids_on(old);
        if ids.contains(&format!("{DEPT}-71001")) {
            assert!(
                !ids.contains(&format!("{DEPT}-71002")),
                "the minority write must never commit"
            );
            break;
        }
        assert!(Instant::now() < deadline, "old leader did not converge");
        std::thread::sleep(Duration::from_millis(100));
    }
    c.converge(Duration::from_secs(20));
    for k in 1..=3 {
        assert!(!c.ids_on(k).contains(&format!("{DEPT}-71002")));
    }
}

#[test]
fn membership_changes_and_any_node_serves() {
    let mut c = Cluster::start(ClusterOptions {
        nodes: 4,
        ..Default::default()
    })
    .unwrap();
    let status = c.api(2, "gaj-system").get("/v1/cluster").json();
    let members = status["members"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    assert!(
        members
            .iter()
            .all(|m| m["role"] == "voter" && m["reachable"] == true),
        "{status}"
    );

    // A write on a follower is forwarded; a read on another follower sees it at once.
    let leader = c.leader().unwrap();
    let followers: Vec<u64> = (1..=4).filter(|k| *k != leader).collect();
    let r = c.api(followers[0], "gaj-steward").post(
        "/v1/datasets",
        &dataset(&format!("{DEPT}-72001"), "via follower"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = c
        .api(followers[1], "gaj-system")
        .get(&format!("/v1/datasets/{DEPT}-72001"));
    assert_eq!(
        r.status, 200,
        "read-after-write on another node: {}",
        r.body
    );

    // Every node's search index follows its applied catalog: the other follower finds
    // the new dataset within a second. Synonyms an admin sets through one node apply to
    // the next search on another.
    let searcher = c.api(followers[1], "gaj-system");
    let found = |q: &str| {
        searcher.get(&format!("/v1/search?q={q}")).json()["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == format!("{DEPT}-72001"))
    };
    let started = Instant::now();
    while !found("follower") && started.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        found("follower"),
        "not searchable on another node within 1 s"
    );
    assert!(!found("sidekick"));
    let r = c.api(followers[0], "admin").put(
        "/v1/search/synonyms",
        &json!({"groups": [["sidekick", "follower"]]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        found("sidekick"),
        "synonyms set on one node apply on another"
    );

    // Remove a follower; the cluster keeps serving with 3.
    let gone = followers[2];
    let admin = c.api(leader, "admin");
    let r = admin.post("/v1/cluster/remove", &json!({"id": gone}));
    assert_eq!(r.status, 200, "{}", r.body);
    let members = r.json()["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 3);
    assert!(!members.iter().any(|m| m["id"] == gone));
    c.kill(gone);
    let r = c.api(followers[0], "gaj-steward").post(
        "/v1/datasets",
        &dataset(&format!("{DEPT}-72002"), "after remove"),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    // Any node searches and verifies every member's audit trail: the registration was
    // recorded by the follower that took it.
    let auditor = c.api(followers[1], "auditor");
    let page = auditor
        .get("/v1/audit?action=dataset.register&limit=1000")
        .json();
    assert_eq!(page["complete"], true, "{page}");
    let recorded_on: Vec<u64> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["dataset"] == format!("{DEPT}-72001"))
        .map(|r| r["node"].as_u64().unwrap())
        .collect();
    assert_eq!(recorded_on, vec![followers[0]], "{page}");
    let v = auditor.get("/v1/audit/verify").json();
    assert_eq!(v["ok"], true, "{v}");
    let verified: BTreeSet<u64> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_u64().unwrap())
        .collect();
    assert_eq!(verified.len(), 3, "{v}");
    assert!(!verified.contains(&gone));

    // Bad membership requests are refused clearly; only admins may change membership.
    let r = admin.post("/v1/cluster/voters", &json!({"ids": [9]}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.message().contains("not a learner"), "{}", r.body);
    let r = admin.post("/v1/cluster/remove", &json!({"id": 9}));
    assert_eq!(r.status, 404, "{}", r.body);
    let r = c
        .api(leader, "gaj-steward")
        .post("/v1/cluster/remove", &json!({"id": followers[0]}));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = admin.post("/v1/cluster/init", &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
}

#[test]
fn restarts_and_a_lost_data_dir_rejoin_from_snapshot() {
    let mut c = Cluster::start(ClusterOptions {
        snapshot_logs: Some(20),
        ..Default::default()
    })
    .unwrap();
    let steward = c.api(1, "gaj-steward");
    for i in 0..60 {
        let r = steward.post(
            "/v1/datasets",
            &dataset(&format!("{DEPT}-73{i:03}"), "snap"),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let before = c.ids_on(1);

    // Node 3 loses its data directory and comes back empty: it is sent a snapshot.
    c.stop(3);
    std::fs::remove_dir_all(c.node_dir(3).join("data")).unwrap();
    c.start_node(3).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.try_ids_on(3).as_ref() != Some(&before) {
        assert!(
            Instant::now() < deadline,
            "node 3 did not catch up:\n{}\n--- node 1:\n{}\n--- status on 1: {:?}",
            c.log(3),
            c.log(1),
            c.status(1)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let s3 = c.api(3, "admin").get("/v1/cluster").json();
    assert!(
        s3["snapshot_index"].as_u64().unwrap_or(0) > 0,
        "node 3 was restored from a snapshot: {s3}"
    );

    // All nodes stop cleanly and restart: same state.
    for k in 1..=3 {
        c.stop(k);
    }
    for k in 1..=3 {
        c.start_node(k).unwrap();
    }
    for k in 1..=3 {
        c.wait_ready(k, Duration::from_secs(30)).unwrap();
    }
    c.converge(Duration::from_secs(30));
    for k in 1..=3 {
        assert_eq!(c.ids_on(k), before, "node {k} after a full restart");
    }
    // All nodes crash at once and restart: same state.
    for k in 1..=3 {
        c.kill(k);
    }
    for k in 1..=3 {
        c.start_node(k).unwrap();
    }
    for k in 1..=3 {
        c.wait_ready(k, Duration::from_secs(30)).unwrap();
    }
    for k in 1..=3 {
        assert_eq!(c.ids_on(k), before, "node {k} after a crash of all nodes");
    }
}

#[test]
fn backup_and_restore_into_a_new_cluster() {
    let c = Cluster::start(ClusterOptions {
        demo: true,
        ..Default::default()
    })
    .unwrap();
    let r = c.api(2, "gaj-steward").post(
        "/v1/datasets",
        &dataset(&format!("{DEPT}-74001"), "backed up"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let certs = c.dir.join("certs");
    let file = c.dir.join("catalog.backup");
    let out = std::process::Command::new(binary())
        .args(["backup", "--out"])
        .arg(&file)
        .env("YIWANG_SERVER", format!("https://{}:{}", c.ip(3), c.port))
        .env("YIWANG_CA", certs.join("ca.pem"))
        .env("YIWANG_CERT", certs.join("admin.pem"))
        .env("YIWANG_KEY", certs.join("admin.key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Only admins back up.
    let r = c.api(1, "gaj-system").get("/v1/cluster/backup");
    assert_eq!(r.status, 403);

    // A new one-node cluster founded on the restored catalog.
    let mut fresh = Cluster::start(ClusterOptions {
        nodes: 1,
        ..Default::default()
    })
    .unwrap();
    fresh.stop(1);
    let data = fresh.node_dir(1).join("data");
    std::fs::remove_dir_all(&data).unwrap();
    let out = std::process::Command::new(binary())
        .args(["restore", "--from"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Restoring over existing data is refused.
    let again = std::process::Command::new(binary())
        .args(["restore", "--from"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    fresh.start_node(1).unwrap();
    fresh.wait_ready(1, Duration::from_secs(30)).unwrap();
    // The fresh cluster has its own CA; read with its certificates.
    let api = fresh.api(1, "gaj-system");
    assert_eq!(
        api.get(&format!("/v1/datasets/{DEPT}-74001")).json()["title"],
        "backed up"
    );
    assert_eq!(api.get("/v1/departments").json()["total"], 65);
    let total = api.get("/v1/datasets?limit=1").json()["total"].clone();
    assert_eq!(
        total,
        c.api(1, "gaj-system").get("/v1/datasets?limit=1").json()["total"]
    );

    // Disaster: two of three nodes gone, no quorum. A backup needs one, unless taken
    // from the survivor's own state with --stale (what the disaster-recovery runbook
    // does before founding a new cluster on it).
    let mut c = c;
    c.kill(1);
    c.kill(2);
    let backup = |file: &std::path::Path, stale: bool| {
        let mut cmd = std::process::Command::new(binary());
        cmd.args(["backup", "--out"]).arg(file);
        if stale {
            cmd.arg("--stale");
        }
        cmd.env("YIWANG_SERVER", format!("https://{}:{}", c.ip(3), c.port))
            .env("YIWANG_CA", certs.join("ca.pem"))
            .env("YIWANG_CERT", certs.join("admin.pem"))
            .env("YIWANG_KEY", certs.join("admin.key"))
            .output()
            .unwrap()
    };
    let survivor = c.dir.join("survivor.backup");
    let out = backup(&survivor, false);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("503") || stderr.contains("quorum"),
        "{stderr}"
    );
    assert!(!survivor.exists());
    let out = backup(&survivor, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&survivor).unwrap()).unwrap();
    assert_eq!(
        saved["state"]["datasets"][format!("{DEPT}-74001")]["title"],
        "backed up"
    );
    assert_eq!(saved["consistency"], "stale");
}

/// Promoting a learner that has not caught up (here: one that cannot be reached) would
/// make it count in the quorum at once and could stop the cluster from committing; it
/// is refused with 409, and the cluster keeps serving linearizable reads and writes.
#[test]
fn an_unreachable_learner_is_not_promoted() {
    let node = yiwang_tests::DemoNode::start();
    let admin = node.client("admin");
    let r = admin.post(
        "/v1/cluster/learners",
        &json!({"id": 2, "addr": "127.0.0.2:1"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin.post("/v1/cluster/voters", &json!({"ids": [2]}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.message().contains("learner 2"), "{}", r.body);
    assert!(r.message().contains("quorum"), "{}", r.body);
    // Still one voter: reads and writes go on.
    assert_eq!(node.client("gaj-system").get("/v1/whoami").status, 200);
    let r = node.client("gaj-steward").post(
        "/v1/datasets",
        &dataset(&format!("{DEPT}-79001"), "after refusal"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin.post("/v1/cluster/remove", &json!({"id": 2}));
    assert_eq!(r.status, 200, "{}", r.body);
}
