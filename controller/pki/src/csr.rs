//! Certificate signing requests (PKCS#10): creating one for a joining node, reading and
//! signing one with the cluster CA, and kubeadm's CA public-key hash for discovery.

use std::time::Duration;

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::issue::{pem_encode, CaSigner};
use crate::{inspect, subject, PkiError};

/// The subject of a CSR: common name and organizations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrSubject {
    /// The common name (the user name it asks for).
    pub common_name: String,
    /// The organizations (the groups it asks for).
    pub organizations: Vec<String>,
}

fn csr_der(csr_pem: &str) -> Result<Vec<u8>, PkiError> {
    let mut reader = std::io::BufReader::new(csr_pem.as_bytes());
    for item in rustls_pemfile::read_all(&mut reader) {
        if let Ok(rustls_pemfile::Item::Csr(der)) = item {
            return Ok(der.as_ref().to_vec());
        }
    }
    Err(PkiError::parse("csr", "no CERTIFICATE REQUEST block"))
}

/// Parses a PEM CSR, checks its self-signature and returns its subject.
pub fn csr_subject(csr_pem: &str) -> Result<CsrSubject, PkiError> {
    use x509_parser::certification_request::X509CertificationRequest;
    let der = csr_der(csr_pem)?;
    let (_, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| PkiError::parse("csr", e.to_string()))?;
    csr.verify_signature()
        .map_err(|e| PkiError::parse("csr", format!("bad signature: {e}")))?;
    let subj = &csr.certification_request_info.subject;
    let common_name = subj
        .iter_common_name()
        .last()
        .and_then(|a| a.as_str().ok())
        .unwrap_or("")
        .to_string();
    let organizations = subj
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    Ok(CsrSubject {
        common_name,
        organizations,
    })
}

/// A new ECDSA P-256 key and a CSR for `cn` with organizations `orgs`: `(csr_pem, key_pem)`.
pub fn new_client_csr(cn: &str, orgs: &[&str]) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key)?;
    Ok((csr.pem()?, key.serialize_pem()))
}

impl CaSigner {
    /// Signs a client certificate for the key and subject of `csr_pem`, valid `validity`.
    pub fn sign_client_csr(&self, csr_pem: &str, validity: Duration) -> Result<String, PkiError> {
        let subj = csr_subject(csr_pem)?;
        let der = csr_der(csr_pem)?;
        let mut req = CertificateSigningRequestParams::from_der(&der.into())?;
        let mut leaf = crate::issue::leaf_params(&subj.common_name, validity)?;
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        req.params = leaf;
        let cert = req.signed_by(self.issuer())?;
        let orgs: Vec<&str> = subj.organizations.iter().map(String::as_str).collect();
        let der = subject::replace_subject(
            cert.der(),
            &subject::encode_subject(&subj.common_name, &orgs),
            self.issuer().key(),
        )?;
        Ok(pem_encode("CERTIFICATE", &der))
    }
}

/// The subject alternative names a CSR asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrSans {
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<std::net::IpAddr>,
    /// How many other names (email, URI, other) it asks for.
    pub others: usize,
}

/// The SANs of a PEM CSR (after checking its self-signature).
pub fn csr_sans(csr_pem: &str) -> Result<CsrSans, PkiError> {
    csr_subject(csr_pem)?;
    let req = CertificateSigningRequestParams::from_der(&csr_der(csr_pem)?.into())?;
    let mut out = CsrSans::default();
    for san in req.params.subject_alt_names {
        match san {
            SanType::DnsName(d) => out.dns.push(d.as_str().to_string()),
            SanType::IpAddress(ip) => out.ips.push(ip),
            _ => out.others += 1,
        }
    }
    Ok(out)
}

/// A new ECDSA P-256 key and a serving-certificate CSR for `cn` in `orgs` with DNS names
/// `dns` and addresses `ips` (what a kubelet sends to `kubernetes.io/kubelet-serving`):
/// `(csr_pem, key_pem)`.
pub fn new_serving_csr(
    cn: &str,
    orgs: &[&str],
    dns: &[String],
    ips: &[std::net::IpAddr],
) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    let mut sans = Vec::new();
    for d in dns {
        sans.push(SanType::DnsName(
            d.clone()
                .try_into()
                .map_err(|_| PkiError::InvalidSan(d.clone()))?,
        ));
    }
    sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    let csr = params.serialize_request(&key)?;
    Ok((csr.pem()?, key.serialize_pem()))
}

/// Signs the serving certificate `csr_pem` asks for (its subject and SANs, usage server
/// auth) with the CA in `ca_cert_pem`/`ca_key_pem`, valid `validity`.
pub fn sign_serving_csr_with_ca(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    csr_pem: &str,
    validity: Duration,
) -> Result<String, PkiError> {
    let signer = CaSigner::from_pem(ca_cert_pem, ca_key_pem)?;
    let subj = csr_subject(csr_pem)?;
    let mut req = CertificateSigningRequestParams::from_der(&csr_der(csr_pem)?.into())?;
    let mut leaf = crate::issue::leaf_params(&subj.common_name, validity)?;
    leaf.subject_alt_names = std::mem::take(&mut req.params.subject_alt_names);
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    req.params = leaf;
    let cert = req.signed_by(signer.issuer())?;
    let orgs: Vec<&str> = subj.organizations.iter().map(String::as_str).collect();
    let der = subject::replace_subject(
        cert.der(),
        &subject::encode_subject(&subj.common_name, &orgs),
        signer.issuer().key(),
    )?;
    Ok(pem_encode("CERTIFICATE", &der))
}

/// kubeadm's CA hash: `sha256:<hex>` of the CA certificate's DER SubjectPublicKeyInfo
/// (what `--discovery-token-ca-cert-hash` pins).
pub fn ca_cert_hash(ca_pem: &str) -> Result<String, PkiError> {
    let certs = inspect::pem_certs(ca_pem, std::path::Path::new("ca"))?;
    let (_, cert) = X509Certificate::from_der(certs[0].as_ref())
        .map_err(|e| PkiError::parse("ca", e.to_string()))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    let digest = Sha256::digest(spki);
    Ok(format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// Issues a client certificate from CA files already on disk (`ca.crt`/`ca.key` PEM), for
/// tools and tests that act for the cluster without loading the whole PKI.
pub fn issue_client_with_ca(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    cn: &str,
    orgs: &[&str],
    validity: Duration,
) -> Result<(String, String), PkiError> {
    let signer = CaSigner::from_pem(ca_cert_pem, ca_key_pem)?;
    let issued = signer.issue_client(cn, orgs, validity)?;
    Ok((issued.cert_pem, issued.key_pem))
}

/// Signs the client certificate `csr_pem` asks for with the CA in `ca_cert_pem`/`ca_key_pem`
/// (a signer loop that holds the CA files rather than the whole PKI).
pub fn sign_client_csr_with_ca(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    csr_pem: &str,
    validity: Duration,
) -> Result<String, PkiError> {
    CaSigner::from_pem(ca_cert_pem, ca_key_pem)?.sign_client_csr(csr_pem, validity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::identity_from_client_cert;

    #[test]
    fn csr_round_trip_signed_by_ca() {
        let (ca, signer) = crate::issue::new_ca("t").unwrap();
        let (csr, _key) = new_client_csr("system:node:pi-1", &["system:nodes"]).unwrap();
        let subj = csr_subject(&csr).unwrap();
        assert_eq!(subj.common_name, "system:node:pi-1");
        assert_eq!(subj.organizations, ["system:nodes"]);
        let cert = signer
            .sign_client_csr(&csr, Duration::from_secs(3600))
            .unwrap();
        let der = inspect::pem_certs(&cert, std::path::Path::new("c")).unwrap();
        let user = identity_from_client_cert(der[0].as_ref()).unwrap();
        assert_eq!(user.name, "system:node:pi-1");
        assert_eq!(user.groups, ["system:nodes"]);
        let h = ca_cert_hash(&ca.cert_pem).unwrap();
        assert!(h.starts_with("sha256:") && h.len() == 71);
        assert!(csr_subject("garbage").is_err());
    }

    #[test]
    fn serving_csr_keeps_sans_and_subject() {
        let (ca, _) = crate::issue::new_ca("t").unwrap();
        let ip: std::net::IpAddr = "10.0.0.7".parse().unwrap();
        let (csr, _key) = new_serving_csr(
            "system:node:pi-1",
            &["system:nodes"],
            &["pi-1".into()],
            &[ip],
        )
        .unwrap();
        let sans = csr_sans(&csr).unwrap();
        assert_eq!(sans.dns, ["pi-1"]);
        assert_eq!(sans.ips, [ip]);
        assert_eq!(sans.others, 0);
        let cert =
            sign_serving_csr_with_ca(&ca.cert_pem, &ca.key_pem, &csr, Duration::from_secs(3600))
                .unwrap();
        let der = inspect::pem_certs(&cert, std::path::Path::new("c")).unwrap();
        let (_, x) = X509Certificate::from_der(der[0].as_ref()).unwrap();
        let names = inspect::cert_sans(&x);
        assert!(names.contains(&crate::options::San::Ip(ip)), "{names:?}");
        let user = identity_from_client_cert(der[0].as_ref()).unwrap();
        assert_eq!(user.name, "system:node:pi-1");
        assert_eq!(user.groups, ["system:nodes"]);
    }
}
