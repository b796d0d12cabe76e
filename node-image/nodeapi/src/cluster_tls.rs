//! Mutual TLS with the cluster CA, as Talos's apid does with its machine CA.
//!
//! A board learns its cluster's CA after init started the node API: the controller creates it
//! at its first start, a worker receives it when its kubelet joins. So both sides of the
//! handshake read the node's files at each handshake (a node API connection is rare):
//! - to a client that says it verifies the node against the cluster CA (ALPN
//!   [`CLUSTER_ALPN`]), the node presents its kubelet's serving certificate (signed by the
//!   cluster CA through a `kubernetes.io/kubelet-serving` CSR, naming the node's addresses)
//!   once there is one; to every other client, its own self-signed certificate, which they pin
//!   by the fingerprint init printed at boot (so a pin stays valid when the kubelet's
//!   certificate appears);
//! - a client certificate is asked for, not required: one that chains to the cluster CA is
//!   verified, and [`admin_of`] tells whether it may manage the node (the cluster's admins,
//!   group `system:masters`); without one, the bearer token of the node config is the
//!   credential (the way in before the node knows its cluster).

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::error::NodeApiError;
use crate::tls::Identity;

/// The cluster's admins: the group whose client certificates may manage a node.
pub const ADMIN_GROUP: &str = bramble_pki::SYSTEM_MASTERS;

/// The ALPN protocol a client offers when it verifies the node against the cluster CA (it is
/// not negotiated: the server only looks at the offer to pick its certificate).
pub const CLUSTER_ALPN: &[u8] = b"bramble-node-api/cluster-ca";

/// What the node knows of its cluster, read at each handshake.
pub trait ClusterFiles: Send + Sync + Debug {
    /// The cluster CA certificate (PEM), once the node has one.
    fn cluster_ca(&self) -> Option<String>;
    /// A serving certificate (PEM chain) and key signed by the cluster CA, once there is one.
    fn serving_pair(&self) -> Option<(String, String)>;
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, NodeApiError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| NodeApiError::Cert(e.to_string()))?;
    if certs.is_empty() {
        return Err(NodeApiError::Cert("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn pem_key(pem: &str) -> Result<PrivateKeyDer<'static>, NodeApiError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| NodeApiError::Cert(e.to_string()))?
        .ok_or_else(|| NodeApiError::Cert("no PRIVATE KEY block".into()))
}

fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, NodeApiError> {
    let mut roots = RootCertStore::empty();
    for c in pem_certs(ca_pem)? {
        roots.add(c)?;
    }
    Ok(Arc::new(roots))
}

/// The server configuration of a node: [`NodeServingCert`] and [`ClusterClientVerifier`].
pub fn cluster_server_config(
    own: &Identity,
    files: Arc<dyn ClusterFiles>,
) -> Result<Arc<rustls::ServerConfig>, NodeApiError> {
    let fallback = Arc::new(CertifiedKey::new(
        own.certs.clone(),
        provider()
            .key_provider
            .load_private_key(own.key.clone_key())?,
    ));
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(ClusterClientVerifier {
            files: files.clone(),
            provider: provider(),
            cache: Mutex::new(None),
        }))
        .with_cert_resolver(Arc::new(NodeServingCert {
            fallback,
            files,
            cache: Mutex::new(None),
        }));
    Ok(Arc::new(cfg))
}

/// A client configuration that verifies the node against the cluster CA and presents a
/// client certificate from it (an admin kubeconfig's).
pub fn cluster_client_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>, NodeApiError> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem)?)
        .with_client_auth_cert(pem_certs(cert_pem)?, pem_key(key_pem)?)?;
    cfg.alpn_protocols = vec![CLUSTER_ALPN.to_vec()];
    Ok(Arc::new(cfg))
}

/// The user a verified client certificate names, if it may manage the node; otherwise why not.
pub fn admin_of(cert: &CertificateDer<'_>) -> Result<String, String> {
    let user = bramble_pki::identity_from_client_cert(cert.as_ref())
        .ok_or_else(|| "the client certificate names no user".to_string())?;
    if user.groups.iter().any(|g| g == ADMIN_GROUP) {
        Ok(user.name)
    } else {
        Err(format!(
            "user {:?} (groups {:?}) is not a cluster admin ({ADMIN_GROUP})",
            user.name, user.groups
        ))
    }
}

/// The serving certificate: the cluster-signed one for clients offering [`CLUSTER_ALPN`] when
/// the node has it, else its own.
#[derive(Debug)]
struct NodeServingCert {
    fallback: Arc<CertifiedKey>,
    files: Arc<dyn ClusterFiles>,
    /// The last cluster-signed pair read, by its certificate PEM.
    cache: Mutex<Option<(String, Arc<CertifiedKey>)>>,
}

impl NodeServingCert {
    fn cluster_signed(&self) -> Option<Arc<CertifiedKey>> {
        let (cert_pem, key_pem) = self.files.serving_pair()?;
        let mut cache = self.cache.lock().ok()?;
        if let Some((pem, key)) = cache.as_ref() {
            if *pem == cert_pem {
                return Some(key.clone());
            }
        }
        let signing = provider()
            .key_provider
            .load_private_key(pem_key(&key_pem).ok()?)
            .ok()?;
        let key = Arc::new(CertifiedKey::new(pem_certs(&cert_pem).ok()?, signing));
        *cache = Some((cert_pem, key.clone()));
        Some(key)
    }
}

impl ResolvesServerCert for NodeServingCert {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let wants_cluster = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == CLUSTER_ALPN));
        let cluster = wants_cluster.then(|| self.cluster_signed()).flatten();
        Some(cluster.unwrap_or_else(|| self.fallback.clone()))
    }
}

/// Asks for a client certificate and verifies one against the cluster CA the node knows now.
#[derive(Debug)]
struct ClusterClientVerifier {
    files: Arc<dyn ClusterFiles>,
    provider: Arc<CryptoProvider>,
    /// The verifier for the last CA read, by its PEM.
    cache: Mutex<Option<(String, Arc<dyn ClientCertVerifier>)>>,
}

impl ClusterClientVerifier {
    fn current(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        let ca = self.files.cluster_ca().ok_or_else(|| {
            rustls::Error::General(
                "this node does not know its cluster CA yet: use the node API token".into(),
            )
        })?;
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| rustls::Error::General("client verifier lock".into()))?;
        if let Some((pem, v)) = cache.as_ref() {
            if *pem == ca {
                return Ok(v.clone());
            }
        }
        let roots = roots(&ca).map_err(|e| rustls::Error::General(e.to_string()))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        *cache = Some((ca, verifier.clone()));
        Ok(verifier)
    }
}

impl ClientCertVerifier for ClusterClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()?
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
