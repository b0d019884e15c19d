//! yiwang's own certificate authority: `yiwang cert init-ca`, `yiwang cert issue` and
//! `yiwang cert revoke`.
//!
//! Keys are ECDSA P-256. Every issued certificate carries exactly one SPIFFE ID as a
//! URI SAN; node certificates also carry the IPs and DNS names they serve on. Key files
//! are written with mode 0600.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
pub use rcgen::RevocationReason;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use yiwang_catalog::identity::SpiffeId;

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
/// The CA's certificate revocation list, kept beside it by `yiwang cert revoke`.
pub const CA_CRL: &str = "ca.crl.pem";

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
    let (issuer, _) = load_issuer(ca_dir)?;

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

/// The CA in `ca_dir` as an issuer, and its certificate (DER).
fn load_issuer(ca_dir: &Path) -> Result<(Issuer<'static, KeyPair>, Vec<u8>)> {
    let ca_pem = fs::read_to_string(ca_dir.join(CA_CERT))
        .with_context(|| format!("cannot read {}", ca_dir.join(CA_CERT).display()))?;
    let ca_key_pem = fs::read_to_string(ca_dir.join(CA_KEY))
        .with_context(|| format!("cannot read {}", ca_dir.join(CA_KEY).display()))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).context("cannot parse CA key")?;
    let der = crate::tls::load_certs(&ca_dir.join(CA_CERT))?[0].to_vec();
    let issuer =
        Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("cannot parse CA certificate")?;
    Ok((issuer, der))
}

/// What `revoke` did.
#[derive(Debug)]
pub struct Revoked {
    pub crl: PathBuf,
    /// The revoked certificate's serial number (hex).
    pub serial: String,
    /// Certificates the list now holds.
    pub listed: usize,
    pub crl_number: u64,
}

/// Adds the certificate in `cert_file` to the CA's revocation list (`ca.crl.pem` in
/// `ca_dir`, created on first use) and signs the list again with the next CRL number.
/// Nodes whose `tls.crl` names the file refuse the certificate once they reload it.
pub fn revoke(ca_dir: &Path, cert_file: &Path, reason: RevocationReason) -> Result<Revoked> {
    let (issuer, ca_der) = load_issuer(ca_dir)?;
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der)
        .map_err(|e| anyhow::anyhow!("unreadable CA certificate: {e}"))?;
    let cert_der = crate::tls::load_certs(cert_file)?[0].to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| anyhow::anyhow!("unreadable certificate {}: {e}", cert_file.display()))?;
    // The signature decides, not the names: two CAs made by `init-ca` for one trust
    // domain have the same subject.
    if let Err(e) = crate::tls::verify_issued_by(&ca_dir.join(CA_CERT), &cert_der) {
        bail!(
            "{} was not issued by the CA in {}: {e}",
            cert_file.display(),
            ca_dir.display()
        );
    }
    let serial = cert.raw_serial().to_vec();
    let crl_path = ca_dir.join(CA_CRL);
    let mut revoked = Vec::new();
    let mut number = 0u64;
    if crl_path.exists() {
        let crls = crate::tls::load_pem::<rustls_pki_types::CertificateRevocationListDer<'static>>(
            &crl_path,
            "revocation list (X509 CRL)",
        )?;
        let (_, old) = x509_parser::parse_x509_crl(crls[0].as_ref())
            .map_err(|e| anyhow::anyhow!("unreadable {}: {e}", crl_path.display()))?;
        if old.issuer().as_raw() != ca.subject().as_raw() {
            bail!("{} is not this CA's revocation list", crl_path.display());
        }
        number = old
            .crl_number()
            .map(|n| n.to_u64_digits().first().copied().unwrap_or(0))
            .unwrap_or(0);
        for r in old.iter_revoked_certificates() {
            if r.raw_serial() == serial.as_slice() {
                bail!(
                    "{} (serial {}) is already revoked",
                    cert_file.display(),
                    r.raw_serial_as_string()
                );
            }
            revoked.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(r.raw_serial()),
                revocation_time: r.revocation_date.to_datetime(),
                reason_code: r.reason_code().and_then(|(_, c)| reason_from_code(c.0)),
                invalidity_date: None,
            });
        }
    }
    let now = OffsetDateTime::now_utc();
    revoked.push(RevokedCertParams {
        serial_number: SerialNumber::from_slice(&serial),
        revocation_time: now,
        reason_code: Some(reason),
        invalidity_date: None,
    });
    let listed = revoked.len();
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + Duration::days(365),
        crl_number: SerialNumber::from(number + 1),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params
        .signed_by(&issuer)
        .context("cannot sign the revocation list")?;
    write_file(
        &crl_path,
        crl.pem()
            .context("cannot encode the revocation list")?
            .as_bytes(),
        0o644,
    )?;
    Ok(Revoked {
        crl: crl_path,
        serial: cert.raw_serial_as_string(),
        listed,
        crl_number: number + 1,
    })
}

fn reason_from_code(code: u8) -> Option<RevocationReason> {
    use RevocationReason as R;
    Some(match code {
        0 => R::Unspecified,
        1 => R::KeyCompromise,
        2 => R::CaCompromise,
        3 => R::AffiliationChanged,
        4 => R::Superseded,
        5 => R::CessationOfOperation,
        6 => R::CertificateHold,
        9 => R::PrivilegeWithdrawn,
        10 => R::AaCompromise,
        _ => return None,
    })
}
