//! Reading certificates and keys back from PEM, and deciding whether an issued certificate on
//! disk can still be used.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rcgen::{KeyPair, PublicKeyData};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::time::ASN1Time;

use crate::options::San;
use crate::PkiError;

/// How close to expiry a leaf certificate may get before it is reissued at start-up.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// When a certificate on disk is too close to its expiry to be kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Renewal {
    /// Reissue when less than this is left ([`RENEW_BEFORE`] for the controller's own).
    Before(Duration),
    /// Reissue when less than this fraction of its whole lifetime is left (0.2: the last 20%).
    LastFraction(f64),
}

/// All certificates in a PEM text, DER-encoded, in order. `source` names the text in errors.
pub fn pem_certs(pem: &str, source: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::parse(source, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(PkiError::parse(source, "no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The first private key in a PEM text (PKCS#8, SEC1 or PKCS#1).
pub fn pem_private_key(pem: &str, source: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| PkiError::parse(source, format!("bad PEM: {e}")))?
        .ok_or_else(|| PkiError::parse(source, "no private key block"))
}

/// What an issued certificate on disk must satisfy to be kept.
pub struct LeafRequirements<'a> {
    /// DER of the CA certificate that must have signed it.
    pub ca_der: &'a [u8],
    /// Names the certificate must carry (serving certificates).
    pub sans: &'a [San],
    /// Required subject common name, if any.
    pub common_name: Option<&'a str>,
    /// The subject organizations (groups) it must have: exactly these, in any order (an extra
    /// group is another identity).
    pub organizations: &'a [&'a str],
    /// How close to expiry it may be.
    pub renewal: Renewal,
}

/// Why the certificate in `cert_pem` (with key `key_pem`) must be reissued, or `None` if it
/// can be kept. Unreadable files are a reason too: leaves can always be issued again.
pub fn leaf_reissue_reason(
    cert_pem: &str,
    key_pem: &str,
    req: &LeafRequirements<'_>,
) -> Option<String> {
    let der = match pem_certs(cert_pem, Path::new("certificate")) {
        Ok(certs) => certs.into_iter().next()?,
        Err(e) => return Some(e.to_string()),
    };
    let cert = match X509Certificate::from_der(&der) {
        Ok((_, c)) => c,
        Err(e) => return Some(format!("certificate does not parse: {e}")),
    };
    let ca = match X509Certificate::from_der(req.ca_der) {
        Ok((_, c)) => c,
        Err(e) => return Some(format!("CA certificate does not parse: {e}")),
    };
    if cert.verify_signature(Some(ca.public_key())).is_err() {
        return Some("not signed by the cluster CA".into());
    }
    match KeyPair::from_pem(key_pem) {
        Ok(key) if key.der_bytes() == cert.public_key().subject_public_key.data.as_ref() => {}
        Ok(_) => return Some("private key does not match the certificate".into()),
        Err(e) => return Some(format!("private key unusable: {e}")),
    }
    let now = ASN1Time::now().timestamp();
    let validity = cert.validity();
    if validity.not_before.timestamp() > now {
        return Some("not valid yet (clock moved back?)".into());
    }
    let remaining = validity.not_after.timestamp() - now;
    match req.renewal {
        Renewal::Before(before) if remaining < before.as_secs() as i64 => {
            return Some(format!(
                "expires in less than {} days",
                before.as_secs() / 86400
            ));
        }
        Renewal::LastFraction(fraction) => {
            let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
            if (remaining as f64) < lifetime as f64 * fraction {
                return Some(format!(
                    "in the last {:.0}% of its lifetime ({remaining} s left)",
                    fraction * 100.0
                ));
            }
        }
        Renewal::Before(_) => {}
    }
    let present = cert_sans(&cert);
    if let Some(missing) = req.sans.iter().find(|s| !present.contains(s)) {
        return Some(format!("lacks subject alternative name {missing:?}"));
    }
    let subject = cert.subject();
    if let Some(cn) = req.common_name {
        let actual = subject
            .iter_common_name()
            .last()
            .and_then(|a| a.as_str().ok());
        if actual != Some(cn) {
            return Some(format!("common name is {actual:?}, want {cn:?}"));
        }
    }
    let orgs: Vec<&str> = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .collect();
    if let Some(o) = req.organizations.iter().find(|o| !orgs.contains(o)) {
        return Some(format!("lacks organization {o:?}"));
    }
    if let Some(o) = orgs.iter().find(|o| !req.organizations.contains(o)) {
        return Some(format!("has organization {o:?}, not asked for"));
    }
    None
}

/// The subject alternative names of a certificate (DNS names lower-cased).
pub fn cert_sans(cert: &X509Certificate<'_>) -> Vec<San> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(San::Dns(d.to_ascii_lowercase())),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(San::Ip(IpAddr::from(<[u8; 4]>::try_from(*b).ok()?))),
                16 => Some(San::Ip(IpAddr::from(<[u8; 16]>::try_from(*b).ok()?))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Seconds since the Unix epoch at which the first certificate of `cert_pem` expires.
pub fn not_after_unix(cert_pem: &str) -> Result<i64, PkiError> {
    let source = Path::new("certificate");
    let der = pem_certs(cert_pem, source)?.remove(0);
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|e| PkiError::parse(source, format!("does not parse: {e}")))?;
    Ok(cert.validity().not_after.timestamp())
}

/// Seconds since the Unix epoch of the first certificate's notBefore and notAfter.
pub fn validity_unix(cert_pem: &str) -> Result<(i64, i64), PkiError> {
    let source = Path::new("certificate");
    let der = pem_certs(cert_pem, source)?.remove(0);
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|e| PkiError::parse(source, format!("does not parse: {e}")))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}
