//! Errors of the node API server and client.

use std::path::PathBuf;

/// Node API errors.
#[derive(Debug, thiserror::Error)]
pub enum NodeApiError {
    /// File I/O on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Network I/O with the peer.
    #[error("{peer}: {source}")]
    Net {
        /// Address.
        peer: String,
        /// The error.
        source: std::io::Error,
    },
    /// TLS setup or handshake.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Certificate generation or parsing.
    #[error("certificate: {0}")]
    Cert(String),
    /// A malformed HTTP message.
    #[error("HTTP: {0}")]
    Http(String),
    /// The server answered with an error status.
    #[error("node answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Body text.
        message: String,
    },
    /// An image to upgrade from is not usable.
    #[error("{path}: {message}")]
    Image {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A JSON body did not decode.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> NodeApiError + '_ {
    move |source| NodeApiError::Io {
        path: path.to_path_buf(),
        source,
    }
}
