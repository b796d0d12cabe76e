//! The controller's TLS client toward kubelets.
//!
//! The controller presents a client certificate signed by the cluster CA
//! (`CN=kube-apiserver-kubelet-client, O=system:masters`, kubeadm's name), which the
//! kubelet requires, and verifies the kubelet's serving certificate against the cluster CA
//! and the address it dialled (upstream with `--kubelet-certificate-authority`): kubelets
//! get their serving certificates through `kubernetes.io/kubelet-serving` CSRs with their
//! node addresses as SANs, so a self-signed or foreign certificate is refused.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ClientConfig;

use bramble_pki::{ClusterPki, PkiError, LEAF_VALIDITY, SYSTEM_MASTERS};

/// User name of the controller's kubelet client certificate.
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

fn pem_error(what: &str, e: impl std::fmt::Display) -> PkiError {
    PkiError::Tls(rustls::Error::General(format!("{what}: {e}")))
}

/// Issues the kubelet client certificate and builds the client configuration (HTTP/1.1:
/// streams are upgrades).
pub fn client_config(pki: &ClusterPki) -> Result<Arc<ClientConfig>, PkiError> {
    let (cert_pem, key_pem) =
        pki.issue_client_cert(KUBELET_CLIENT_USER, &[SYSTEM_MASTERS], LEAF_VALIDITY)?;
    config_with(pki.ca_cert_pem(), &cert_pem, &key_pem)
}

/// The client configuration trusting `ca_pem` and presenting `cert_pem`/`key_pem`.
pub fn config_with(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<ClientConfig>, PkiError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("kubelet client certificate", e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| pem_error("kubelet client key", e))?;
    let mut config = ClientConfig::builder_with_provider(bramble_pki::crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(bramble_pki::root_store(ca_pem)?)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
