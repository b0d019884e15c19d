//! The one place the adapters build a TLS configuration: rustls with the ring provider
//! (never aws-lc-rs: one crypto provider per process), trusting only the CA a source's
//! configuration names.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// rustls with the ring provider, trusting only `ca_file`, presenting `cert` if given.
pub(crate) fn client_config(
    ca_file: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let cas =
        CertificateDer::pem_file_iter(ca_file).map_err(|e| format!("cannot read ca_file: {e}"))?;
    for ca in cas {
        let ca = ca.map_err(|e| format!("bad PEM in ca_file: {e}"))?;
        roots
            .add(ca)
            .map_err(|e| format!("bad CA certificate in ca_file: {e}"))?;
    }
    if roots.is_empty() {
        return Err("ca_file holds no certificate".to_string());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("cannot read cert: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("bad PEM in cert: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("cert and key do not match: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("cert and key go together".to_string()),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
