//! rustls configurations built from the cluster PKI, always with the ring provider given
//! explicitly (no reliance on a process-wide default provider).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::inspect::{pem_certs, pem_private_key};
use crate::PkiError;

/// ALPN protocols the API server offers, preferred first (as kube-apiserver: h2, http/1.1).
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The ring crypto provider, for every rustls configuration in Bramble.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding the certificates of `ca_pem`.
pub fn root_store(ca_pem: &str) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in pem_certs(ca_pem, Path::new("CA certificate"))? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// A server configuration presenting `cert_pem`/`key_pem`, offering h2 and http/1.1, and
/// asking for (but not requiring) a client certificate, which must chain to `ca_pem` when
/// one is sent. Requests without one can still authenticate with a bearer token.
pub fn server_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<ServerConfig>, PkiError> {
    let provider = crypto_provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(root_store(ca_pem)?),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let chain = pem_certs(cert_pem, Path::new("serving certificate"))?;
    let key = pem_private_key(key_pem, Path::new("serving key"))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client configuration trusting only `ca_pem` and, if given, presenting the client
/// certificate and key (PEM). No ALPN protocols are set: the HTTP client sets those it speaks.
pub fn client_config(
    ca_pem: &str,
    client_identity: Option<(&str, &str)>,
) -> Result<ClientConfig, PkiError> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(ca_pem)?);
    Ok(match client_identity {
        Some((cert_pem, key_pem)) => builder.with_client_auth_cert(
            pem_certs(cert_pem, Path::new("client certificate"))?,
            pem_private_key(key_pem, Path::new("client key"))?,
        )?,
        None => builder.with_no_client_auth(),
    })
}
