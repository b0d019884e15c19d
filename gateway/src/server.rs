//! Listeners: the HTTPS API (mutual TLS) and the plain-HTTP admin endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::{self, PeerIdentity};
use crate::node::Node;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds both listeners; returns their addresses and a future that serves until
/// `shutdown` turns true.
pub async fn bind(
    node: Arc<Node>,
    shutdown: watch::Receiver<bool>,
) -> Result<(
    SocketAddr,
    SocketAddr,
    impl std::future::Future<Output = ()>,
)> {
    let cfg = &node.config;
    let tls = node.tls.server_config()?;
    let api_listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (API)", cfg.listen))?;
    let admin_listener = TcpListener::bind(cfg.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin)", cfg.admin_listen))?;
    let api_addr = api_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let api = serve_api(
        api_listener,
        TlsAcceptor::from(Arc::new(tls)),
        node.clone(),
        shutdown.clone(),
    );
    let admin = serve_admin(admin_listener, node, shutdown);
    Ok((api_addr, admin_addr, async move {
        tokio::join!(api, admin);
    }))
}

async fn serve_api(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    node: Arc<Node>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = api::router(node.clone());
    let grace = Duration::from_secs(node.config.limits.shutdown_grace_s);
    let header_timeout = Duration::from_secs(node.config.limits.header_read_timeout_s);
    // Every connection's task, so that a stop waits for requests in flight.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let node = node.clone();
        let mut conn_shutdown = shutdown.clone();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    node.metrics.tls_handshake_failures.inc();
                    tracing::debug!("TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    node.metrics.tls_handshake_failures.inc();
                    tracing::debug!("TLS handshake with {peer} timed out");
                    return;
                }
            };
            // The identity belongs to the connection: read it once, attach it to
            // every request that arrives on it.
            let identity = PeerIdentity(Arc::new(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .ok_or_else(|| "no client certificate".to_string())
                    .and_then(crate::tls::spiffe_id),
            ));
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(identity.clone());
                    router.clone().oneshot(req.map(axum::body::Body::new))
                });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                }
                _ = conn_shutdown.changed() => {
                    // No new requests on this connection; those in flight finish, for
                    // up to the grace period.
                    conn.as_mut().graceful_shutdown();
                    if tokio::time::timeout(grace, conn).await.is_err() {
                        tracing::warn!(
                            "connection from {peer} still busy after {} s of grace; closing it",
                            grace.as_secs()
                        );
                    }
                }
            }
        });
    }
    // The listener is closed (no new connections); wait for the open ones to finish.
    let open = connections.len();
    if open > 0 {
        tracing::info!("waiting for {open} open connection(s) to finish");
    }
    while connections.join_next().await.is_some() {}
}

async fn serve_admin(listener: TcpListener, node: Arc<Node>, mut shutdown: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(
                |axum::extract::State(node): axum::extract::State<Arc<Node>>| async move {
                    match node.readiness() {
                        Ok(()) => {
                            (axum::http::StatusCode::OK, "ready\n".to_string()).into_response()
                        }
                        Err(why) => (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n"),
                        )
                            .into_response(),
                    }
                },
            ),
        )
        .route(
            "/metrics",
            get(
                |axum::extract::State(node): axum::extract::State<Arc<Node>>| async move {
                    node.refresh_metrics();
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        node.metrics.encode(),
                    )
                },
            ),
        )
        .with_state(node);
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    });
    if let Err(e) = serve.await {
        tracing::error!("admin listener failed: {e}");
    }
}
