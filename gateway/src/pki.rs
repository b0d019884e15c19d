//! yiwang's own certificate authority: `yiwang cert init-ca` and `yiwang cert issue`.
//!
//! Keys are ECDSA P-256. Every issued certificate carries exactly one SPIFFE ID as a
//! URI SAN; node certificates also carry the IPs and DNS names they serve on. Key files
//! are written with mode 0600.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};
use yiwang_catalog::identity::SpiffeId;

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";

/// Writes `contents` to `path` atomically (temp file + rename), with `mode` on Unix.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Creates a new CA in `out` (`ca.pem`, `ca.key`). Refuses to overwrite an existing CA:
/// that would orphan every certificate it issued.
pub fn init_ca(out: &Path, trust_domain: &str) -> Result<PathBuf> {
    let cert_path = out.join(CA_CERT);
    if cert_path.exists() {
        bail!(
            "{} already exists; refusing to replace an existing CA",
            cert_path.display()
        );
    }
    let key = KeyPair::generate().context("cannot generate CA key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("yiwang CA ({trust_domain})"));
    dn.push(DnType::OrganizationName, "yiwang");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
    let cert = params.self_signed(&key).context("cannot self-sign CA")?;
    write_file(&out.join(CA_KEY), key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(cert_path)
}

/// What to put in an issued certificate.
pub struct IssueRequest<'a> {
    pub spiffe: &'a SpiffeId,
    /// File stem: `<out>/<name>.pem` and `<name>.key`.
    pub name: &'a str,
    pub ips: &'a [IpAddr],
    pub dns: &'a [String],
    pub days: u32,
}

/// Issues a certificate signed by the CA in `ca_dir`, written to `out`.
pub fn issue(ca_dir: &Path, out: &Path, req: &IssueRequest<'_>) -> Result<(PathBuf, PathBuf)> {
    let existing = out.join(format!("{}.pem", req.name));
    if existing.exists() {
        bail!(
            "{} already exists; remove it first to issue a new certificate under that name",
            existing.display()
        );
    }
    let ca_pem = fs::read_to_string(ca_dir.join(CA_CERT))
        .with_context(|| format!("cannot read {}", ca_dir.join(CA_CERT).display()))?;
    let ca_key_pem = fs::read_to_string(ca_dir.join(CA_KEY))
        .with_context(|| format!("cannot read {}", ca_dir.join(CA_KEY).display()))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).context("cannot parse CA key")?;
    let issuer =
        Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("cannot parse CA certificate")?;

    let key = KeyPair::generate().context("cannot generate key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, req.name);
    if let Some(dept) = req.spiffe.dept() {
        dn.push(DnType::OrganizationalUnitName, dept);
    }
    params.distinguished_name = dn;
    params.subject_alt_names.push(SanType::URI(
        req.spiffe
            .to_string()
            .try_into()
            .context("SPIFFE ID is not a valid URI")?,
    ));
    for ip in req.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for name in req.dns {
        params.subject_alt_names.push(SanType::DnsName(
            name.clone()
                .try_into()
                .with_context(|| format!("'{name}' is not a DNS name"))?,
        ));
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if matches!(req.spiffe, SpiffeId::Node { .. }) {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(i64::from(req.days));
    let cert = params
        .signed_by(&key, &issuer)
        .context("cannot sign certificate")?;
    let cert_path = out.join(format!("{}.pem", req.name));
    let key_path = out.join(format!("{}.key", req.name));
    write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok((cert_path, key_path))
}
