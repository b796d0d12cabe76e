//! TLS of the kubelet's streaming server: a serving certificate (signed by the cluster CA
//! through a `kubernetes.io/kubelet-serving` CSR, replaceable while serving; self-signed
//! only when no API client can ask for one) and mandatory client certificates chaining to
//! the cluster CA, which the controller's kubelet-client certificate does.

use std::sync::{Arc, RwLock};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::ServerError;

fn certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Pem {
            what,
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ServerError::Pem {
            what,
            message: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn key(pem: &str, what: &'static str) -> Result<PrivateKeyDer<'static>, ServerError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| ServerError::Pem {
            what,
            message: e.to_string(),
        })?
        .ok_or(ServerError::Pem {
            what,
            message: "no PRIVATE KEY block".into(),
        })
}

/// The server configuration: presents `cert_pem`/`key_pem`, requires a client certificate
/// chaining to `client_ca_pem`, and speaks HTTP/1.1 only (streams are HTTP/1.1 upgrades).
pub fn server_config(
    client_ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<ServerConfig>, ServerError> {
    server_config_with(client_ca_pem, ServingCert::new(cert_pem, key_pem)?)
}

/// [`server_config`] presenting whatever `serving` holds at each handshake.
pub fn server_config_with(
    client_ca_pem: &str,
    serving: Arc<ServingCert>,
) -> Result<Arc<ServerConfig>, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in certs(client_ca_pem, "client CA")? {
        roots.add(c)?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(serving);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The serving certificate and key, replaced when the kubelet renews them; new handshakes
/// present the newest.
#[derive(Debug)]
pub struct ServingCert(RwLock<Arc<CertifiedKey>>);

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, ServerError> {
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key(key_pem, "serving key")?)?;
    Ok(Arc::new(CertifiedKey::new(
        certs(cert_pem, "serving certificate")?,
        signing,
    )))
}

impl ServingCert {
    /// Holds `cert_pem` (chain) and `key_pem`.
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<Arc<ServingCert>, ServerError> {
        Ok(Arc::new(ServingCert(RwLock::new(certified_key(
            cert_pem, key_pem,
        )?))))
    }

    /// Replaces the certificate and key.
    pub fn set(&self, cert_pem: &str, key_pem: &str) -> Result<(), ServerError> {
        let new = certified_key(cert_pem, key_pem)?;
        *self.0.write().expect("serving certificate") = new;
        Ok(())
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().expect("serving certificate").clone())
    }
}

/// A self-signed serving certificate for `node_name` and `ips` (as upstream's kubelet makes
/// when it has no `--tls-cert-file`): `(cert_pem, key_pem)`.
pub fn self_signed_serving_cert(
    node_name: &str,
    ips: &[std::net::IpAddr],
) -> Result<(String, String), ServerError> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{node_name}@bramble-kubelet"));
    let mut sans = vec![SanType::DnsName(node_name.to_string().try_into()?)];
    sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // rcgen's default validity (1975 to 4096): boards without a real-time clock boot in the
    // past, and this certificate is replaced once the kubelet gets one signed by the CA.
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A verified client: its user name (certificate common name) and groups (organizations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Common name.
    pub user: String,
    /// Organizations.
    pub groups: Vec<String>,
}

/// The identity of a verified client certificate (DER).
pub fn client_identity(der: &[u8]) -> Option<ClientIdentity> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .last()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_string)
        .collect();
    Some(ClientIdentity { user, groups })
}

/// The user name of the controller's client certificate for kubelets (kubeadm's name).
pub const APISERVER_KUBELET_CLIENT: &str = "kube-apiserver-kubelet-client";
