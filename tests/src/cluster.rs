//! Multi-process clusters on loopback for fault tests: node k of a test listens on
//! 127.0.X.k (X differs between tests), is a real `yiwang serve` process, and — with
//! proxies — is reached by the other nodes through a fault-injecting proxy.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::proxy::Proxy;
use crate::{Api, binary};

pub struct ClusterOptions {
    pub nodes: u64,
    pub election_ms: u64,
    pub snapshot_logs: Option<u64>,
    /// Route node-to-node traffic through proxies (for partitions).
    pub proxies: bool,
    pub demo: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            election_ms: 500,
            snapshot_logs: None,
            proxies: false,
            demo: true,
        }
    }
}

pub struct Cluster {
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    pub prefix: String,
    pub port: u16,
    pub admin_port: u16,
    pub proxy_port: u16,
    children: Vec<Option<Child>>,
    proxies: Vec<Proxy>,
    pub nodes: u64,
}

fn setup_prefix(port: u16) -> String {
    // Pick a /24 of loopback that is free on our ports: 127.0.X.0 with X from the pid
    // and time, so concurrent tests land on different addresses.
    let seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64 ^ rand_u64();
    for i in 0..250u64 {
        let x = 2 + (seed + i * 37) % 250;
        let prefix = format!("127.0.{x}");
        let free = (1..=5)
            .all(|k| std::net::TcpListener::bind((format!("{prefix}.{k}").as_str(), port)).is_ok());
        if free {
            return prefix;
        }
    }
    panic!("no free loopback /24 for a test cluster");
}

fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.as_nanos() as u64
}

impl Cluster {
    pub fn start(opts: ClusterOptions) -> Result<Cluster> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("cluster");
        let (port, admin_port, proxy_port) = (18443, 19090, 18444);
        let prefix = setup_prefix(port);
        let mut args: Vec<String> = vec![
            "cluster".into(),
            "local-setup".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--nodes".into(),
            opts.nodes.to_string(),
            "--ip-prefix".into(),
            prefix.clone(),
            "--port".into(),
            port.to_string(),
            "--admin-port".into(),
            admin_port.to_string(),
            "--election-ms".into(),
            opts.election_ms.to_string(),
        ];
        if opts.proxies {
            args.push("--advertise-port".into());
            args.push(proxy_port.to_string());
        }
        if let Some(s) = opts.snapshot_logs {
            args.push("--snapshot-logs".into());
            args.push(s.to_string());
        }
        if opts.demo {
            args.push("--demo".into());
        }
        let out = Command::new(binary()).args(&args).output()?;
        if !out.status.success() {
            bail!(
                "local-setup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut proxies = Vec::new();
        if opts.proxies {
            for k in 1..=opts.nodes {
                let ip: IpAddr = format!("{prefix}.{k}").parse()?;
                proxies.push(Proxy::start(
                    SocketAddr::new(ip, proxy_port),
                    SocketAddr::new(ip, port),
                )?);
            }
        }
        let mut c = Cluster {
            dir,
            _tmp: tmp,
            prefix,
            port,
            admin_port,
            proxy_port,
            children: (0..opts.nodes).map(|_| None).collect(),
            proxies,
            nodes: opts.nodes,
        };
        c.start_node(1)?;
        c.wait_ready(1, Duration::from_secs(60))?;
        for k in 2..=opts.nodes {
            c.start_node(k)?;
        }
        let admin = c.api(1, "admin");
        for k in 2..=opts.nodes {
            let addr = c.advertised(k);
            let r = admin.post(
                "/v1/cluster/learners",
                &serde_json::json!({"id": k, "addr": addr}),
            );
            if r.status != 200 {
                bail!("add-learner {k}: {} {}", r.status, r.body);
            }
        }
        if opts.nodes > 1 {
            let ids: Vec<u64> = (2..=opts.nodes).collect();
            let r = admin.post("/v1/cluster/voters", &serde_json::json!({ "ids": ids }));
            if r.status != 200 {
                bail!("promote: {} {}", r.status, r.body);
            }
        }
        for k in 1..=opts.nodes {
            c.wait_ready(k, Duration::from_secs(60))?;
        }
        Ok(c)
    }

    pub fn ip(&self, k: u64) -> IpAddr {
        format!("{}.{k}", self.prefix).parse().unwrap()
    }

    /// The address other nodes use for node k.
    pub fn advertised(&self, k: u64) -> String {
        if self.proxies.is_empty() {
            format!("{}:{}", self.ip(k), self.port)
        } else {
            format!("{}:{}", self.ip(k), self.proxy_port)
        }
    }

    pub fn node_dir(&self, k: u64) -> PathBuf {
        self.dir.join(format!("node-{k}"))
    }

    pub fn log(&self, k: u64) -> String {
        std::fs::read_to_string(self.node_dir(k).join("node.log")).unwrap_or_default()
    }

    pub fn start_node(&mut self, k: u64) -> Result<()> {
        let node_dir = self.node_dir(k);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node_dir.join("node.log"))?;
        let child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(node_dir.join("node.toml"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("start yiwang serve")?;
        self.children[(k - 1) as usize] = Some(child);
        Ok(())
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self, k: u64) {
        if let Some(mut c) = self.children[(k - 1) as usize].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(&mut self, k: u64) {
        if let Some(mut c) = self.children[(k - 1) as usize].take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self, k: u64) -> bool {
        self.children[(k - 1) as usize].is_some()
    }

    pub fn api(&self, k: u64, principal: &str) -> Api {
        let c = self.dir.join("certs");
        Api::new(
            &format!("https://{}:{}", self.ip(k), self.port),
            &c.join("ca.pem"),
            &c.join(format!("{principal}.pem")),
            &c.join(format!("{principal}.key")),
        )
    }

    pub fn http_admin(&self, k: u64, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(
            &SocketAddr::new(self.ip(k), self.admin_port),
            Duration::from_millis(500),
        )
        .ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        let status = buf.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, buf))
    }

    pub fn wait_ready(&self, k: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = self.http_admin(k, "/readyz") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("node {k} not ready after {timeout:?}:\n{}", self.log(k));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Node k's own Raft view (via the stale-capable cluster status).
    pub fn status(&self, k: u64) -> Option<Value> {
        let api = self.api(k, "admin");
        let r = api.try_get("/v1/cluster")?;
        (r.status == 200).then(|| r.json())
    }

    /// The leader as seen by any running node.
    pub fn leader(&self) -> Option<u64> {
        (1..=self.nodes)
            .filter(|k| self.is_running(*k))
            .filter_map(|k| self.status(k))
            .find_map(|s| {
                (s["state"] == "Leader")
                    .then(|| s["node"].as_u64())
                    .flatten()
            })
    }

    /// Waits for a leader other than `not`; returns it and how long it took.
    pub fn wait_leader(&self, not: Option<u64>, timeout: Duration) -> Result<(u64, Duration)> {
        let start = Instant::now();
        loop {
            if let Some(l) = self.leader()
                && Some(l) != not
            {
                return Ok((l, start.elapsed()));
            }
            if start.elapsed() > timeout {
                bail!("no new leader within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Cuts node k off from the other nodes (both directions).
    pub fn isolate(&self, k: u64) {
        assert!(!self.proxies.is_empty(), "start the cluster with proxies");
        for j in 1..=self.nodes {
            let p = &self.proxies[(j - 1) as usize];
            if j == k {
                let others: Vec<IpAddr> = (1..=self.nodes)
                    .filter(|o| *o != k)
                    .map(|o| self.ip(o))
                    .collect();
                p.block(&others);
            } else {
                p.block(&[self.ip(k)]);
            }
        }
    }

    pub fn heal(&self) {
        for p in &self.proxies {
            p.block(&[]);
        }
    }

    /// Last applied index of node k (its own view).
    pub fn applied(&self, k: u64) -> Option<u64> {
        self.status(k)?["applied_index"].as_u64()
    }

    pub fn certs(&self) -> &Path {
        &self.dir
    }

    /// Waits until every running node has applied the same index, then returns it.
    pub fn converge(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let applied: Vec<Option<u64>> = (1..=self.nodes)
                .filter(|k| self.is_running(*k))
                .map(|k| self.applied(k))
                .collect();
            if let Some(Some(first)) = applied.first()
                && applied.iter().all(|a| *a == Some(*first))
            {
                return *first;
            }
            assert!(
                Instant::now() < deadline,
                "nodes did not converge: {applied:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The [`TEST_DEPT`] dataset ids node k holds, read locally; `None` when it does not
    /// answer.
    pub fn try_ids_on(&self, k: u64) -> Option<BTreeSet<String>> {
        let r = self.api(k, "gaj-system").try_get(&format!(
            "/v1/datasets?dept={TEST_DEPT}&limit=1000&status=all&consistency=stale"
        ))?;
        (r.status == 200).then(|| {
            r.json()["datasets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_string())
                .collect()
        })
    }

    /// The [`TEST_DEPT`] dataset ids node k holds, read locally.
    pub fn ids_on(&self, k: u64) -> BTreeSet<String> {
        self.try_ids_on(k)
            .unwrap_or_else(|| panic!("node {k} did not list its datasets"))
    }

    /// The sum of node k's Prometheus samples named `name` whose labels contain
    /// `labels` (e.g. `route="/raft/forward"`; empty for any), from its admin listener:
    /// 0 when there is no such sample, `None` when the node does not answer.
    pub fn metric(&self, k: u64, name: &str, labels: &str) -> Option<f64> {
        let (_, text) = self.http_admin(k, "/metrics")?;
        Some(crate::prometheus_sum(&text, name, labels))
    }
}

/// The department whose datasets the cluster tests write (南通市公安局).
pub const TEST_DEPT: &str = "320600-GAJ";

/// A minimal dataset of [`TEST_DEPT`] with the given id and title.
pub fn test_dataset(id: &str, title: &str) -> Value {
    json!({
        "id": id, "dept": TEST_DEPT, "title": title, "theme": "公共安全", "format": "table",
        "share_type": "unconditional", "update_cycle": "daily",
        "fields": [{"name": "a", "title": "甲", "type": "string", "sensitivity": "public"}]
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for k in 1..=self.nodes {
            self.kill(k);
        }
    }
}
