//! The controller's TLS client identity toward kubelets.
//!
//! The controller presents a client certificate signed by the cluster CA
//! (`CN=kube-apiserver-kubelet-client, O=system:masters`, kubeadm's name), which the
//! kubelet requires. Kubelet serving certificates are self-signed by each kubelet until
//! they are issued through certificate signing requests, so the controller does not verify
//! the kubelet's chain or name, only that the peer holds the key of the certificate it
//! presented (the handshake signature). That is upstream's behaviour without
//! `--kubelet-certificate-authority`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use bramble_pki::{ClusterPki, PkiError, LEAF_VALIDITY, SYSTEM_MASTERS};

/// User name of the controller's kubelet client certificate.
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

/// Accepts any kubelet serving certificate whose key signed the handshake.
#[derive(Debug)]
struct KubeletServerVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for KubeletServerVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn pem_error(what: &str, e: impl std::fmt::Display) -> PkiError {
    PkiError::Tls(rustls::Error::General(format!("{what}: {e}")))
}

/// Issues the kubelet client certificate and builds the client configuration (HTTP/1.1:
/// streams are upgrades).
pub fn client_config(pki: &ClusterPki) -> Result<Arc<ClientConfig>, PkiError> {
    let (cert_pem, key_pem) =
        pki.issue_client_cert(KUBELET_CLIENT_USER, &[SYSTEM_MASTERS], LEAF_VALIDITY)?;
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("kubelet client certificate", e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| pem_error("kubelet client key", e))?;
    let provider = bramble_pki::crypto_provider();
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(KubeletServerVerifier(provider)))
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
