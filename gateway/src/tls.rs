//! The one place that builds TLS configurations, for the API listener, for the Raft
//! client and for the CLI, and that reads identities out of certificates.
//!
//! Protocol versions are TLS 1.3 and 1.2; with the ring provider rustls offers only
//! AEAD suites (AES-GCM, ChaCha20-Poly1305) with ECDHE key exchange, and we pin that
//! list explicitly so a future default cannot widen it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use rustls::client::ResolvesClientCert;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
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

/// Checks that `cert` (DER) chains to the CA certificate(s) in `ca` (for any
/// purpose our certificates have: all carry client authentication).
pub fn verify_issued_by(ca: &Path, cert: &[u8]) -> Result<()> {
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
        .build()
        .context("cannot build a certificate verifier")?;
    verifier
        .verify_client_cert(&CertificateDer::from(cert.to_vec()), &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| anyhow!("{e}"))
}

/// Client side (CLI, tests): present our certificate, trust only the CA.
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
pub fn peer_client(tls: &Arc<NodeTls>, bind: Option<std::net::IpAddr>) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls.client_config()?)
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

/// The files of a node's TLS identity and trust (`[tls]` of node.toml).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Certificate revocation lists (PEM, one or more in the file), if any.
    pub crl: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.ca, &self.cert, &self.key]
            .into_iter()
            .chain(&self.crl)
    }

    /// Size and modification time of every file: what a reload check compares.
    fn stamp(&self) -> Vec<Option<(u64, SystemTime)>> {
        self.paths()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .and_then(|m| Some((m.len(), m.modified().ok()?)))
            })
            .collect()
    }
}

/// One consistent set of TLS material.
struct Material {
    key: Arc<CertifiedKey>,
    clients: Arc<dyn ClientCertVerifier>,
    servers: Arc<dyn ServerCertVerifier>,
    /// The node certificate's end of validity (Unix seconds).
    not_after: i64,
    revoked: usize,
}

impl Material {
    fn load(files: &TlsFiles) -> Result<Material> {
        let provider = provider();
        let certs = load_certs(&files.cert)?;
        let key =
            CertifiedKey::from_der(certs, load_key(&files.key)?, &provider).with_context(|| {
                format!(
                    "{} and {} do not make a usable certificate and key",
                    files.cert.display(),
                    files.key.display()
                )
            })?;
        let roots = Arc::new(roots(&files.ca)?);
        let crls = match &files.crl {
            Some(path) => load_crls(path)?,
            None => Vec::new(),
        };
        let revoked = crls.iter().map(|c| revoked_count(c)).sum();
        // Only end-entity certificates are checked against the lists: the CA issues
        // them directly, and its lists cover exactly those.
        let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .with_crls(crls.clone())
            .only_check_end_entity_revocation()
            .build()
            .context("cannot build the client certificate verifier")?;
        let servers = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .build()
            .context("cannot build the peer certificate verifier")?;
        let not_after = x509_parser::parse_x509_certificate(key.cert[0].as_ref())
            .map(|(_, c)| c.validity().not_after.timestamp())
            .map_err(|e| anyhow!("unreadable certificate {}: {e}", files.cert.display()))?;
        Ok(Material {
            key: Arc::new(key),
            clients,
            servers,
            not_after,
            revoked,
        })
    }
}

/// Every PEM object of type `T` (`what`, for the error) in a file; an error if there is
/// none.
pub fn load_pem<T: PemObject>(path: &Path, what: &str) -> Result<Vec<T>> {
    let items: Vec<T> = T::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad PEM in {}", path.display()))?;
    if items.is_empty() {
        bail!("no {what} in {}", path.display());
    }
    Ok(items)
}

fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    let crls =
        load_pem::<CertificateRevocationListDer<'static>>(path, "revocation list (X509 CRL)")?;
    for crl in &crls {
        x509_parser::parse_x509_crl(crl.as_ref())
            .map_err(|e| anyhow!("unreadable revocation list in {}: {e}", path.display()))?;
    }
    Ok(crls)
}

fn revoked_count(crl: &CertificateRevocationListDer<'_>) -> usize {
    x509_parser::parse_x509_crl(crl.as_ref())
        .map(|(_, c)| c.iter_revoked_certificates().count())
        .unwrap_or(0)
}

/// A node's TLS material, replaceable while the node runs: the listener and the client
/// for other nodes take certificate, key, CA and revocation lists from here at every
/// handshake, so a reload applies to every new connection (open ones keep theirs).
pub struct NodeTls {
    files: TlsFiles,
    current: RwLock<Arc<Material>>,
    stamp: Mutex<Vec<Option<(u64, SystemTime)>>>,
    /// The SPIFFE ID of the certificate: a reload may not change who the node is.
    identity: String,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub not_after: i64,
    pub revoked: usize,
}

impl NodeTls {
    pub fn load(files: TlsFiles) -> Result<Arc<NodeTls>> {
        let stamp = files.stamp();
        let material = Material::load(&files)?;
        let identity = spiffe_id(&material.key.cert[0])
            .map_err(|e| anyhow!("{}: {e}", files.cert.display()))?
            .to_string();
        Ok(Arc::new(NodeTls {
            files,
            current: RwLock::new(Arc::new(material)),
            stamp: Mutex::new(stamp),
            identity,
        }))
    }

    fn material(&self) -> Arc<Material> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The node certificate's end of validity (Unix seconds) and the number of revoked
    /// certificates in force.
    pub fn status(&self) -> Reloaded {
        let m = self.material();
        Reloaded {
            not_after: m.not_after,
            revoked: m.revoked,
        }
    }

    /// Reads the files again and, if they make a usable set for the same identity,
    /// switches to them. On any error the material in use stays.
    pub fn reload(&self) -> Result<Reloaded> {
        let stamp = self.files.stamp();
        let material = Material::load(&self.files)?;
        let identity = spiffe_id(&material.key.cert[0])
            .map_err(|e| anyhow!("{}: {e}", self.files.cert.display()))?
            .to_string();
        if identity != self.identity {
            bail!(
                "{} is for {identity}, not this node ({}); keeping the certificate in use",
                self.files.cert.display(),
                self.identity
            );
        }
        let done = Reloaded {
            not_after: material.not_after,
            revoked: material.revoked,
        };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(material);
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        Ok(done)
    }

    /// Reloads if any file changed (size or modification time) since the last load.
    pub fn reload_if_changed(&self) -> Option<Result<Reloaded>> {
        let now = self.files.stamp();
        let changed = *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) != now;
        if !changed {
            return None;
        }
        let r = self.reload();
        if r.is_err() {
            // Report a broken set once, not at every check; a further change retries.
            *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = now;
        }
        Some(r)
    }

    /// The listener's configuration: client certificates required.
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig> {
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)?
            .with_client_cert_verifier(Arc::new(Live(self.clone())))
            .with_cert_resolver(Arc::new(Live(self.clone())));
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }

    /// The configuration for connections to other nodes.
    pub fn client_config(self: &Arc<Self>) -> Result<ClientConfig> {
        let mut cfg = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Live(self.clone())))
            .with_client_cert_resolver(Arc::new(Live(self.clone())));
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// Hands every handshake the material in force at that moment.
struct Live(Arc<NodeTls>);

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeTls({})", self.0.identity)
    }
}

impl ResolvesServerCert for Live {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.material().key.clone())
    }
}

impl ResolvesClientCert for Live {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.material().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for Live {
    /// No hints: our clients hold one certificate each, and the CA may change.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .material()
            .clients
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .material()
            .clients
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .material()
            .clients
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.material().clients.supported_verify_schemes()
    }
}

impl ServerCertVerifier for Live {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.material().servers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .material()
            .servers
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .material()
            .servers
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.material().servers.supported_verify_schemes()
    }
}
