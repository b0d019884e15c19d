//! `yiwang demo`: the embedded default. One node on this machine with a CA,
//! certificates for demo principals of several departments, the demo catalog of a city
//! and SQLite databases holding the Nantong scenario — all in one directory that is
//! reused on the next run.

mod principals;
mod seed;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use yiwang_catalog::identity::SpiffeId;

pub use principals::DemoPrincipal;
pub use seed::scenario_datasets;

use crate::config::{NodeConfig, TlsConfig};
use crate::{pki, serve};

/// Options of `yiwang demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    pub port: u16,
    pub admin_port: u16,
    /// Print the walk-through (off for tests that only need the node).
    pub walkthrough: bool,
}

/// What every node of a demo or local cluster shares: the CA and principals'
/// certificates, `principals.json`, and the scenario databases.
pub struct Layout {
    pub dir: PathBuf,
    pub certs: PathBuf,
    pub principals: Vec<DemoPrincipal>,
    pub sources: BTreeMap<String, yiwang_adapters::SourceConfig>,
}

const TRUST_DOMAIN: &str = yiwang_catalog::identity::DEFAULT_TRUST_DOMAIN;

/// The cross-department question of the scenario: which plant ordered shut still
/// receives hazardous goods at night and uses power at night? It needs grants on the
/// truck records (consignee_uscc, pass_time) and the power use (uscc, hour, kwh).
pub const SCENARIO_SQL: &str = r#"WITH night_trucks AS (
  SELECT consignee_uscc AS uscc, count(*) AS night_entries
  FROM "320600-JTJ"."320600-JTJ-00001"
  WHERE date_part('hour', pass_time) >= 22 OR date_part('hour', pass_time) < 5
  GROUP BY consignee_uscc),
night_power AS (
  SELECT uscc, sum(kwh) AS night_kwh
  FROM "320600-GDGS"."320600-GDGS-00001"
  WHERE date_part('hour', hour) >= 22 OR date_part('hour', hour) < 5
  GROUP BY uscc)
SELECT e.uscc, e.name, e.address, t.night_entries, p.night_kwh
FROM "320600-YJJ"."320600-YJJ-00001" e
JOIN night_trucks t ON t.uscc = e.uscc
JOIN night_power p ON p.uscc = e.uscc
WHERE e.status = '责令关停'
"#;

/// Creates (or completes) the shared part of a demo directory.
pub fn prepare_layout(dir: &Path) -> Result<Layout> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let certs = dir.join("certs");
    if !certs.join(pki::CA_CERT).exists() {
        eprintln!("  creating a CA in {}", certs.display());
        pki::init_ca(&certs, TRUST_DOMAIN)?;
    }
    let principals = principals::ensure(&certs, TRUST_DOMAIN)?;
    let json = serde_json::to_vec_pretty(&principals)?;
    pki::write_file(&dir.join("principals.json"), &json, 0o644)?;
    pki::write_file(&dir.join("scenario.sql"), SCENARIO_SQL.as_bytes(), 0o644)?;
    let body = serde_json::json!({"sql": SCENARIO_SQL, "purpose": "核查责令关停企业夜间生产"});
    pki::write_file(
        &dir.join("scenario-query.json"),
        &serde_json::to_vec_pretty(&body)?,
        0o644,
    )?;

    let created = yiwang_adapters::demo::create_scenario_databases(&dir.join("sources"))
        .map_err(|e| anyhow::anyhow!("cannot create the scenario databases: {e}"))?;
    let sources = created
        .into_iter()
        .map(|(id, path)| {
            let cfg = yiwang_adapters::SourceConfig::Sqlite {
                path,
                pool_size: None,
                timeout_ms: None,
                aggregate_pushdown: None,
            };
            (id, cfg)
        })
        .collect();
    Ok(Layout {
        dir,
        certs,
        principals,
        sources,
    })
}

/// Where one node of a demo or local cluster listens.
pub struct NodeSpec {
    pub node_id: u64,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub advertise: Option<String>,
    pub data_dir: PathBuf,
    pub bootstrap: bool,
}

/// The configuration of one node, issuing its certificate (for its IP) if missing.
pub fn node_config(layout: &Layout, spec: NodeSpec) -> Result<NodeConfig> {
    let name = format!("node-{}", spec.node_id);
    if !layout.certs.join(format!("{name}.pem")).exists() {
        let ip = spec.listen.ip();
        let mut ips = vec![ip];
        if ip != IpAddr::V4(Ipv4Addr::LOCALHOST) {
            ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        pki::issue(
            &layout.certs,
            &layout.certs,
            &pki::IssueRequest {
                spiffe: &SpiffeId::node(TRUST_DOMAIN, spec.node_id),
                name: &name,
                ips: &ips,
                dns: &["localhost".to_string()],
                days: 825,
            },
        )?;
    }
    let mut raft = crate::config::RaftConfig::default();
    if !spec.listen.ip().is_unspecified() {
        raft.bind_ip = Some(spec.listen.ip());
    }
    Ok(NodeConfig {
        node_id: spec.node_id,
        listen: spec.listen,
        advertise: spec.advertise,
        admin_listen: spec.admin_listen,
        data_dir: spec.data_dir,
        trust_domain: TRUST_DOMAIN.to_string(),
        bootstrap: spec.bootstrap,
        admins: vec![
            SpiffeId::principal(TRUST_DOMAIN, yiwang_catalog::demo::DATA_BUREAU, "admin")
                .to_string(),
        ],
        demo_seed: None,
        tls: TlsConfig {
            ca: layout.certs.join(pki::CA_CERT),
            cert: layout.certs.join(format!("{name}.pem")),
            key: layout.certs.join(format!("{name}.key")),
            crl: None,
            reload_interval_s: 30,
        },
        raft,
        limits: Default::default(),
        audit: Default::default(),
        query: Default::default(),
        telemetry: Default::default(),
        sources: layout.sources.clone(),
        start_not_ready: false,
        base_dir: layout.dir.clone(),
    })
}

/// Writes a node configuration as TOML.
pub fn write_config(config: &NodeConfig, path: &Path) -> Result<()> {
    let toml = toml::to_string_pretty(config)?;
    let text = format!(
        "# `yiwang serve --config {}` runs this node.\n{toml}",
        path.display()
    );
    pki::write_file(path, text.as_bytes(), 0o644)
}

/// Creates (or completes) the demo directory and returns the node configuration.
pub fn prepare(opts: &DemoOptions) -> Result<(NodeConfig, Vec<DemoPrincipal>)> {
    let layout = prepare_layout(&opts.dir)?;
    let config = node_config(
        &layout,
        NodeSpec {
            node_id: 1,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), opts.port),
            admin_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), opts.admin_port),
            advertise: None,
            data_dir: layout.dir.join("node-1"),
            bootstrap: true,
        },
    )?;
    // The config is written out so `yiwang serve --config DIR/node.toml` runs the same
    // node without the demo wrapper.
    write_config(&config, &layout.dir.join("node.toml"))?;
    Ok((config, layout.principals))
}

/// Options of a local multi-node cluster (`yiwang cluster local-setup`, used by
/// `ops/cluster-local.sh`).
#[derive(Debug, Clone)]
pub struct LocalCluster {
    pub dir: PathBuf,
    pub nodes: u64,
    /// Node k listens on `<ip_prefix>.k`.
    pub ip_prefix: String,
    pub port: u16,
    pub admin_port: u16,
    /// Advertise this port instead of `port` (a proxy in front of each node).
    pub advertise_port: Option<u16>,
    pub demo: bool,
    pub election_min_ms: Option<u64>,
    pub snapshot_logs: Option<u64>,
}

/// Writes certificates, `principals.json` and `node-k/node.toml` for every node.
pub fn local_setup(opts: &LocalCluster) -> Result<Vec<PathBuf>> {
    let layout = prepare_layout(&opts.dir)?;
    let mut paths = Vec::new();
    for k in 1..=opts.nodes {
        let ip: IpAddr = format!("{}.{k}", opts.ip_prefix).parse().with_context(|| {
            format!(
                "'{}.{k}' is not an IP address; --ip-prefix takes three octets",
                opts.ip_prefix
            )
        })?;
        let node_dir = layout.dir.join(format!("node-{k}"));
        let mut cfg = node_config(
            &layout,
            NodeSpec {
                node_id: k,
                listen: SocketAddr::new(ip, opts.port),
                admin_listen: SocketAddr::new(ip, opts.admin_port),
                advertise: opts.advertise_port.map(|p| format!("{ip}:{p}")),
                data_dir: node_dir.join("data"),
                bootstrap: k == 1,
            },
        )?;
        if let Some(min) = opts.election_min_ms {
            cfg.raft.heartbeat_ms = (min / 4).max(20);
            cfg.raft.election_timeout_min_ms = min;
            cfg.raft.election_timeout_max_ms = min * 2;
        }
        if let Some(n) = opts.snapshot_logs {
            cfg.raft.snapshot_logs = n;
            cfg.raft.keep_logs = (n / 10).max(1);
        }
        if !opts.demo {
            cfg.sources.clear();
        }
        if opts.demo && k == 1 {
            cfg.demo_seed = Some(layout.dir.join("principals.json"));
        }
        cfg.check()?;
        let path = node_dir.join("node.toml");
        write_config(&cfg, &path)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Seeds the demo catalog from a node configured with `demo_seed` (principals.json).
pub async fn seed_from_config(node: &crate::node::Node) -> Result<()> {
    use std::sync::atomic::Ordering;
    let Some(path) = node.config.demo_seed.clone() else {
        return Ok(());
    };
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let principals: Vec<DemoPrincipal> =
        serde_json::from_slice(&text).with_context(|| format!("bad {}", path.display()))?;
    // Not ready until the demo catalog is complete: `ops/cluster-local.sh up --demo`
    // returns on readiness, and its users expect the catalog to be there.
    node.starting.store(true, Ordering::Release);
    let result = async {
        node.wait_serving(std::time::Duration::from_secs(60))
            .await?;
        let added = seed::seed(node, &principals).await?;
        if added > 0 {
            eprintln!("  seeded {added} datasets");
        }
        node.wait_search(std::time::Duration::from_secs(30)).await
    }
    .await;
    node.starting.store(false, Ordering::Release);
    result
}

/// Runs the demo until interrupted.
pub async fn run(opts: DemoOptions) -> Result<()> {
    eprintln!("yiwang demo: preparing {}", opts.dir.display());
    let (mut config, principals) = prepare(&opts)?;
    config.start_not_ready = true;
    let dir = config.base_dir.clone();
    serve::run(config, move |node: Arc<crate::node::Node>| {
        Box::pin(async move {
            // Not ready (`/readyz`) until the demo catalog is complete (the node starts
            // so): scripts that start the demo wait for readiness and expect the
            // catalog to be there.
            let seeded = async {
                node.wait_serving(std::time::Duration::from_secs(30)).await?;
                let added = seed::seed(&node, &principals).await?;
                if added > 0 {
                    eprintln!("  seeded {added} datasets");
                }
                node.wait_search(std::time::Duration::from_secs(30)).await
            }
            .await;
            node.starting.store(false, std::sync::atomic::Ordering::Release);
            seeded?;
            node.wait_ready(std::time::Duration::from_secs(30)).await?;
            let (depts, datasets) = {
                let s = node.state.read();
                (s.departments.len(), s.datasets.len())
            };
            eprintln!("  catalog: {depts} departments, {datasets} datasets");
            if opts.walkthrough {
                println!("{}", walkthrough(&dir, opts.port));
            }
            println!("yiwang demo is serving https://127.0.0.1:{} (admin http://127.0.0.1:{}); Ctrl-C stops it", opts.port, opts.admin_port);
            Ok(())
        })
    })
    .await
}

/// The copy-paste walk-through, with this directory's certificate paths.
pub fn walkthrough(dir: &Path, port: u16) -> String {
    let c = dir.join("certs");
    let ca = c.join("ca.pem");
    let as_ = |name: &str| {
        format!(
            "curl -sS --cacert {} --cert {} --key {}",
            ca.display(),
            c.join(format!("{name}.pem")).display(),
            c.join(format!("{name}.key")).display()
        )
    };
    let base = format!("https://127.0.0.1:{port}");
    let purpose =
        "X-Purpose: %E6%A0%B8%E6%9F%A5%E8%B4%A3%E4%BB%A4%E5%85%B3%E5%81%9C%E4%BC%81%E4%B8%9A";
    let uscc = yiwang_adapters::demo::SCENARIO_SHUTDOWN_USCC;
    format!(
        r#"
=== yiwang walk-through ===========================================================
Principals and their certificates: {principals}
The consumer is 南通市大数据管理局's city-operations system (dsj-system).
X-Purpose is the read's purpose, percent-encoded UTF-8 (here: 核查责令关停企业).

1. Search the catalog (Chinese full text, facets):
   {dsj} '{base}/v1/search?q=%E5%8D%B1%E5%8C%96%E5%93%81&limit=5'

2. Read an unconditional dataset of 应急管理局 — the legal representative's ID is masked:
   {dsj} -H '{purpose}' '{base}/v1/datasets/320600-YJJ-00001/records?limit=3'

3. Try the conditional truck records of 交通运输局 — 403, no grant yet:
   {dsj} -H '{purpose}' '{base}/v1/datasets/320600-JTJ-00001/records?limit=3'

4. Ask for access:
   {dsj} -H 'Content-Type: application/json' -d '{{"dataset":"320600-JTJ-00001","fields":["plate","pass_time","consignee_uscc","consignee_name","dest_address","goods_class"],"purpose":"核查责令关停企业夜间危险货物运输","days":30}}' {base}/v1/access-requests

5. As 交通运输局's steward, list pending requests and approve (use the id from step 4):
   {jtj} '{base}/v1/access-requests?state=pending'
   {jtj} -X POST -H 'Content-Type: application/json' -d '{{"days":30}}' {base}/v1/access-requests/<ID>/approve

6. Read it now — night entries to the shut-down plant:
   {dsj} -H '{purpose}' -G '{base}/v1/datasets/320600-JTJ-00001/records' --data-urlencode "filter=consignee_uscc = '{uscc}' and pass_time >= '2026-10-01'" --data-urlencode limit=5

7. One question across three departments — the plant ordered shut that works at night
   ({dir}/scenario.sql). Without a grant on the power data it is refused, naming it:
   {dsj} -H 'Content-Type: application/json' -d @{dir}/scenario-query.json {base}/v1/query
   Ask for the power data, approve as 供电公司's steward, and ask again:
   {dsj} -H 'Content-Type: application/json' -d '{{"dataset":"320600-GDGS-00001","fields":["uscc","hour","kwh"],"purpose":"核查责令关停企业夜间生产"}}' {base}/v1/access-requests
   {gdgs} '{base}/v1/access-requests?state=pending'
   {gdgs} -X POST {base}/v1/access-requests/<ID>/approve
   {dsj} -H 'Content-Type: application/json' -d @{dir}/scenario-query.json {base}/v1/query

8. As the city auditor, see who read what, who reads whom, and verify the chain:
   {aud} '{base}/v1/audit?limit=20'
   {aud} '{base}/v1/audit/summary'
   {aud} '{base}/v1/audit/verify'

The same with the CLI: export YIWANG_SERVER={base} YIWANG_CA={ca} YIWANG_CERT={cdir}/dsj-system.pem YIWANG_KEY={cdir}/dsj-system.key
   yiwang search 危化品 ; yiwang records 320600-YJJ-00001 --purpose 核查 --limit 3
   yiwang query --file {dir}/scenario.sql --purpose 核查责令关停企业夜间生产
====================================================================================
"#,
        principals = dir.join("principals.json").display(),
        dsj = as_("dsj-system"),
        jtj = as_("jtj-steward"),
        gdgs = as_("gdgs-steward"),
        dir = dir.display(),
        aud = as_("auditor"),
        ca = ca.display(),
        cdir = c.display(),
    )
}
