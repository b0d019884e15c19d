//! `yiwang demo`: the embedded default. One node on this machine with a CA,
//! certificates for demo principals of several departments, the demo catalog of a city
//! and SQLite databases holding the Nantong scenario — all in one directory that is
//! reused on the next run.

mod principals;
mod seed;

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

/// Creates (or completes) the demo directory and returns the node configuration.
pub fn prepare(opts: &DemoOptions) -> Result<(NodeConfig, Vec<DemoPrincipal>)> {
    let dir = &opts.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let certs = dir.join("certs");
    let trust_domain = yiwang_catalog::identity::DEFAULT_TRUST_DOMAIN;
    if !certs.join(pki::CA_CERT).exists() {
        eprintln!("  creating a CA in {}", certs.display());
        pki::init_ca(&certs, trust_domain)?;
    }
    if !certs.join("node-1.pem").exists() {
        pki::issue(
            &certs,
            &certs,
            &pki::IssueRequest {
                spiffe: &SpiffeId::node(trust_domain, 1),
                name: "node-1",
                ips: &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
                dns: &["localhost".to_string()],
                days: 825,
            },
        )?;
    }
    let principals = principals::ensure(&certs, trust_domain)?;
    let json = serde_json::to_vec_pretty(&principals)?;
    pki::write_file(&dir.join("principals.json"), &json, 0o644)?;

    let sources_dir = dir.join("sources");
    let created = yiwang_adapters::demo::create_scenario_databases(&sources_dir)
        .map_err(|e| anyhow::anyhow!("cannot create the scenario databases: {e}"))?;
    let mut sources = std::collections::BTreeMap::new();
    for (id, path) in created {
        sources.insert(
            id,
            yiwang_adapters::SourceConfig::Sqlite {
                path,
                pool_size: None,
                timeout_ms: None,
            },
        );
    }
    let config = NodeConfig {
        node_id: 1,
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), opts.port),
        advertise: None,
        admin_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), opts.admin_port),
        data_dir: dir.join("node-1"),
        trust_domain: trust_domain.to_string(),
        bootstrap: true,
        tls: TlsConfig {
            ca: certs.join(pki::CA_CERT),
            cert: certs.join("node-1.pem"),
            key: certs.join("node-1.key"),
        },
        raft: Default::default(),
        limits: Default::default(),
        audit: Default::default(),
        sources,
        base_dir: dir.clone(),
    };
    // The config is written out so `yiwang serve --config DIR/node.toml` runs the same
    // node without the demo wrapper.
    let toml = toml::to_string_pretty(&config)?;
    pki::write_file(
        &dir.join("node.toml"),
        format!(
            "# Written by `yiwang demo`; `yiwang serve --config {}` runs this node.\n{toml}",
            dir.join("node.toml").display()
        )
        .as_bytes(),
        0o644,
    )?;
    Ok((config, principals))
}

/// Runs the demo until interrupted.
pub async fn run(opts: DemoOptions) -> Result<()> {
    eprintln!("yiwang demo: preparing {}", opts.dir.display());
    let (config, principals) = prepare(&opts)?;
    let dir = config.base_dir.clone();
    serve::run(config, move |node: Arc<crate::node::Node>| {
        Box::pin(async move {
            node.wait_ready(std::time::Duration::from_secs(30)).await?;
            let added = seed::seed(&node, &principals).await?;
            if added > 0 {
                eprintln!("  seeded {added} datasets");
            }
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

7. As the city auditor, see who read what, and verify the chain:
   {aud} '{base}/v1/audit?limit=20'
   {aud} '{base}/v1/audit/verify'

The same with the CLI: export YIWANG_SERVER={base} YIWANG_CA={ca} YIWANG_CERT={cdir}/dsj-system.pem YIWANG_KEY={cdir}/dsj-system.key
   yiwang search 危化品 ; yiwang records 320600-YJJ-00001 --purpose 核查 --limit 3
====================================================================================
"#,
        principals = dir.join("principals.json").display(),
        dsj = as_("dsj-system"),
        jtj = as_("jtj-steward"),
        aud = as_("auditor"),
        ca = ca.display(),
        cdir = c.display(),
    )
}
