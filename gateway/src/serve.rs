//! `yiwang serve`: run a node until SIGINT/SIGTERM, then stop cleanly.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::NodeConfig;
use crate::node::Node;

pub type AfterStart = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// Starts the node and its listeners, runs `after_start` (seeding, banners), and serves
/// until a stop signal.
pub async fn run<F>(config: NodeConfig, after_start: F) -> Result<()>
where
    F: FnOnce(Arc<Node>) -> AfterStart,
{
    let _telemetry = crate::telemetry::init_node(&config.telemetry)?;
    let node = Node::start(config).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (api_addr, admin_addr, serving) = crate::server::bind(node.clone(), stop_rx).await?;
    tracing::info!(
        "node {} serving https://{api_addr} (admin http://{admin_addr})",
        node.config.node_id
    );
    let server = tokio::spawn(serving);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let reload_every = node.config.tls.reload_interval_s;
    let mut tls_check = tokio::time::interval(std::time::Duration::from_secs(reload_every.max(1)));
    tls_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let startup = after_start(node.clone());
    tokio::pin!(startup);
    let mut started = false;
    loop {
        tokio::select! {
            r = &mut startup, if !started => {
                started = true;
                if let Err(e) = r {
                    let _ = stop_tx.send(true);
                    node.shutdown().await;
                    return Err(e);
                }
            }
            // SIGHUP (`systemctl reload`): read the TLS files again.
            _ = hup.recv() => {
                node.reload_tls(crate::node::TlsReload::Signal);
            }
            _ = tls_check.tick(), if reload_every > 0 => {
                node.reload_tls(crate::node::TlsReload::IfChanged);
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    eprintln!("yiwang: stopping");
    let _ = stop_tx.send(true);
    // Requests in flight finish (each connection gets `limits.shutdown_grace_s`) before
    // the node stops writing its audit trail and leaves the cluster.
    let grace = std::time::Duration::from_secs(node.config.limits.shutdown_grace_s + 2);
    if tokio::time::timeout(grace, server).await.is_err() {
        tracing::warn!("listeners did not stop within the grace period");
    }
    // The last records, fsynced and anchored: a tail removed while the node is stopped
    // is found.
    if let Err(e) = node.audit.flush().await {
        tracing::warn!("the last audit records could not be fsynced: {e}");
    }
    match tokio::time::timeout(std::time::Duration::from_secs(3), node.anchor_audit_head()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!("final audit anchor not published: {e}"),
        Err(_) => tracing::warn!("final audit anchor not published within 3 s"),
    }
    node.shutdown().await;
    Ok(())
}
