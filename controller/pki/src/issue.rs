//! Certificate issuance with rcgen: the self-signed cluster CA and the leaves it signs.
//!
//! Keys are ECDSA P-256 (small and fast to sign and verify on a Raspberry Pi). Certificates
//! are back-dated by one hour so that nodes whose clocks lag a little (boards without a
//! real-time clock) still accept them.

use std::time::Duration;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use crate::options::San;
use crate::{subject, PkiError};

/// How long the cluster CA is valid: 10 years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long serving and client certificates are valid: 1 year.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Common name of the API server's serving certificate (as kubeadm names it).
pub const APISERVER_CN: &str = "kube-apiserver";
/// How far certificates are back-dated to tolerate clock skew between nodes.
const BACKDATE: time::Duration = time::Duration::hours(1);

/// A certificate and its private key, both PEM (`CERTIFICATE`, PKCS#8 `PRIVATE KEY`).
#[derive(Clone, PartialEq, Eq)]
pub struct CertAndKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish()
    }
}

/// The cluster CA's signing identity, able to issue leaves.
pub struct CaSigner {
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaSigner").finish_non_exhaustive()
    }
}

impl CaSigner {
    /// Rebuilds the signer from the CA certificate and key PEM found on disk.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<CaSigner, rcgen::Error> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(CaSigner {
            issuer: Issuer::from_ca_cert_pem(cert_pem, key)?,
        })
    }

    /// The rcgen issuer (CA certificate and key).
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Issues a serving certificate for `sans` (DNS names and IP addresses).
    pub fn issue_serving(&self, sans: &[String]) -> Result<CertAndKey, PkiError> {
        let mut params = leaf_params(APISERVER_CN, LEAF_VALIDITY)?;
        params.subject_alt_names = sans
            .iter()
            .map(|s| {
                Ok(match San::parse(s)? {
                    San::Ip(ip) => SanType::IpAddress(ip),
                    San::Dns(d) => SanType::DnsName(
                        d.try_into()
                            .map_err(|_| PkiError::InvalidSan(s.to_string()))?,
                    ),
                })
            })
            .collect::<Result<_, PkiError>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(&params)
    }

    /// Issues a client certificate with common name `cn` (the user name) and one
    /// organization per entry of `orgs` (the groups), valid for `validity`.
    pub fn issue_client(
        &self,
        cn: &str,
        orgs: &[&str],
        validity: Duration,
    ) -> Result<CertAndKey, PkiError> {
        // rcgen writes one O at most; the real subject (all O's, then CN) is put in afterwards.
        let mut params = leaf_params(cn, validity)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let der = subject::replace_subject(
            cert.der(),
            &subject::encode_subject(cn, orgs),
            self.issuer.key(),
        )?;
        Ok(CertAndKey {
            cert_pem: pem_encode("CERTIFICATE", &der),
            key_pem: key.serialize_pem(),
        })
    }

    fn sign(&self, params: &CertificateParams) -> Result<CertAndKey, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Creates a new self-signed CA for `cluster_name`, returning its PEM files and signer.
pub fn new_ca(cluster_name: &str) -> Result<(CertAndKey, CaSigner), PkiError> {
    let now = OffsetDateTime::now_utc();
    if now.year() < 2025 {
        // Boards without a real-time clock start in the past until NTP has run; a CA made
        // now would expire years early (leaves are reissued at start-up, the CA is not).
        tracing::warn!(%now, "system clock looks unset; the new CA's validity starts now");
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    // Like k3s ("k3s-server-ca@<unix time>"): a new CA never has the same name as an old one.
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{cluster_name}-ca@{}", now.unix_timestamp()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + to_time(CA_VALIDITY)?;
    params.serial_number = Some(random_serial());
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    let files = CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    let signer = CaSigner {
        issuer: Issuer::new(params, key),
    };
    Ok((files, signer))
}

pub(crate) fn leaf_params(cn: &str, validity: Duration) -> Result<CertificateParams, PkiError> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + to_time(validity)?;
    params.serial_number = Some(random_serial());
    Ok(params)
}

fn to_time(d: Duration) -> Result<time::Duration, PkiError> {
    time::Duration::try_from(d).map_err(|_| PkiError::parse("validity", format!("{d:?} too long")))
}

/// A random 128-bit serial number (RFC 5280 allows up to 20 octets; rcgen encodes it as a
/// positive integer).
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

/// PEM-encodes `der` with the given label (64-character lines, LF endings).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
