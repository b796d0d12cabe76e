//! TLS for the node API: the node's self-signed serving certificate (created on first boot on
//! the data partition, its SHA-256 fingerprint shown on the console and in `status`), and a
//! client verifier that pins that fingerprint.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::{io_err, NodeApiError};

/// The node's serving identity.
#[derive(Debug)]
pub struct Identity {
    /// Certificate chain (one self-signed certificate).
    pub certs: Vec<CertificateDer<'static>>,
    /// Its key.
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Lower-case hex SHA-256 of the certificate (what clients pin).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.certs[0])
    }
}

/// Lower-case hex SHA-256 of a DER certificate.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads `dir/node-api.{crt,key}`, creating a self-signed pair for `names` if absent.
pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Identity, NodeApiError> {
    let (crt, key) = (dir.join("node-api.crt"), dir.join("node-api.key"));
    if !crt.exists() || !key.exists() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let ck = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| NodeApiError::Cert(e.to_string()))?;
        std::fs::write(&key, ck.signing_key.serialize_pem()).map_err(io_err(&key))?;
        std::fs::write(&crt, ck.cert.pem()).map_err(io_err(&crt))?;
    }
    let crt_pem = std::fs::read(&crt).map_err(io_err(&crt))?;
    let key_pem = std::fs::read(&key).map_err(io_err(&key))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &crt_pem[..])
        .collect::<Result<_, _>>()
        .map_err(io_err(&crt))?;
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(io_err(&key))?
        .ok_or_else(|| NodeApiError::Cert(format!("{}: no private key", key.display())))?;
    if certs.is_empty() {
        return Err(NodeApiError::Cert(format!(
            "{}: no certificate",
            crt.display()
        )));
    }
    Ok(Identity { certs, key })
}

/// rustls server config for `id`.
pub fn server_config(id: &Identity) -> Result<Arc<rustls::ServerConfig>, NodeApiError> {
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(id.certs.clone(), id.key.clone_key())?;
    Ok(Arc::new(cfg))
}

/// Accepts exactly the certificate with this SHA-256 fingerprint (or any, when `None`).
#[derive(Debug)]
struct Pinned {
    fingerprint: Option<String>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.fingerprint {
            None => Ok(ServerCertVerified::assertion()),
            Some(want) if fingerprint(end_entity) == want.to_ascii_lowercase().replace(':', "") => {
                Ok(ServerCertVerified::assertion())
            }
            Some(_) => Err(rustls::Error::General(format!(
                "node certificate fingerprint {} does not match the pinned one",
                fingerprint(end_entity)
            ))),
        }
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

/// rustls client config pinning `fingerprint` (`None`: accept any certificate, insecure).
pub fn client_config(fingerprint: Option<&str>) -> Result<Arc<rustls::ClientConfig>, NodeApiError> {
    let provider = provider();
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            fingerprint: fingerprint.map(str::to_string),
            provider,
        }))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}
