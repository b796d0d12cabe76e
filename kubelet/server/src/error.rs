//! Errors of the streaming server.

use std::path::PathBuf;

/// Failures to set the server up or to serve one stream.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// TLS configuration failure (bad PEM, unusable key).
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// A PEM input without what it should hold.
    #[error("{what}: {message}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Certificate generation failure.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// Client certificate verifier construction failure.
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// I/O on a file.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Other I/O (sockets, pipes).
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// The container runtime refused.
    #[error("{0}")]
    Runtime(#[from] bramble_runtime::RuntimeError),
    /// The WebSocket layer failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}
