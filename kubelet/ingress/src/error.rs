//! Errors of the ingress controller.

use std::net::SocketAddr;

/// What can stop the ingress controller or reject a TLS Secret.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// A listener could not be opened.
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A Secret's `tls.crt`/`tls.key` could not be used.
    #[error("TLS secret {secret}: {reason}")]
    BadSecret { secret: String, reason: String },
    /// The default certificate could not be generated.
    #[error("generating the default certificate: {0}")]
    DefaultCertificate(#[from] rcgen::Error),
    /// rustls refused a key or configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// An API request failed.
    #[error("API: {0}")]
    Kube(#[from] kube::Error),
}
