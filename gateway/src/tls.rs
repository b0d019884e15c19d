//! The one place that builds TLS configurations, for the API listener, for the Raft
//! client and for the CLI, and that reads identities out of certificates.
//!
//! Protocol versions are TLS 1.3 and 1.2; with the ring provider rustls offers only
//! AEAD suites (AES-GCM, ChaCha20-Poly1305) with ECDHE key exchange, and we pin that
//! list explicitly so a future default cannot widen it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use yiwang_catalog::identity::SpiffeId;

/// TLS versions we speak.
static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The ring provider restricted to AEAD cipher suites.
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::cipher_suite as cs;
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(p)
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad PEM in {}", path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("cannot read private key from {}", path.display()))
}

fn roots(ca: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca)? {
        roots
            .add(c)
            .with_context(|| format!("bad CA certificate in {}", ca.display()))?;
    }
    Ok(roots)
}

/// Server side: our certificate, and a client certificate chaining to the CA is
/// required — a handshake without one fails.
pub fn server_config(ca: &Path, cert: &Path, key: &Path) -> Result<ServerConfig> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider.clone())
            .build()
            .context("cannot build client verifier")?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .context("certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Client side (CLI, tests, Raft peers): present our certificate, trust only the CA.
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<ClientConfig> {
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
        .context("certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// An HTTPS client presenting `cert`.
pub fn http_client(ca: &Path, cert: &Path, key: &Path) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(ca, cert, key)?)
        .build()
        .context("cannot build HTTPS client")
}

/// The node's client for other nodes: our node certificate, optionally bound to a local
/// address (a node with several addresses then always talks from the one in its
/// certificate), and short connect timeouts so an unreachable peer fails fast.
pub fn peer_client(
    ca: &Path,
    cert: &Path,
    key: &Path,
    bind: Option<std::net::IpAddr>,
) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(ca, cert, key)?)
        .local_address(bind)
        .connect_timeout(std::time::Duration::from_millis(500))
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build()
        .context("cannot build the peer HTTPS client")
}

/// The SPIFFE ID of a certificate: its one `spiffe://` URI SAN.
pub fn spiffe_id(cert: &CertificateDer<'_>) -> Result<SpiffeId, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("unreadable client certificate: {e}"))?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?
        .ok_or("client certificate has no subjectAltName with a SPIFFE ID")?;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) if u.starts_with("spiffe://") => Some(*u),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [one] => {
            SpiffeId::parse(one).ok_or_else(|| format!("'{one}' is not a valid yiwang SPIFFE ID"))
        }
        [] => Err("client certificate carries no SPIFFE ID".into()),
        _ => Err("client certificate carries more than one SPIFFE ID".into()),
    }
}
