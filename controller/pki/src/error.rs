//! The error type of the PKI crate.

use std::path::PathBuf;

/// Everything that can go wrong while creating, loading or using Bramble's PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file or directory could not be read, written, created or renamed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "create directory", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// rcgen failed to generate a key or sign a certificate.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),

    /// A PEM file held no usable certificate or key, or a certificate did not parse.
    #[error("{path}: {reason}")]
    Parse {
        /// The file (or a description of the in-memory input) that did not parse.
        path: PathBuf,
        /// Why it did not parse.
        reason: String,
    },

    /// Some of the PKI files exist and some do not, so the CA cannot be trusted to be the one
    /// every issued credential chains to. Nothing is regenerated silently in that case.
    #[error("incomplete PKI in {dir}: {present} exists but {missing} is missing")]
    Incomplete {
        /// The PKI directory.
        dir: PathBuf,
        /// A file that exists.
        present: &'static str,
        /// A file that is missing.
        missing: &'static str,
    },

    /// A server name given in the options is neither an IP address nor a valid DNS name.
    #[error("invalid subject alternative name {0:?}")]
    InvalidSan(String),

    /// rustls refused the configuration (bad key, no usable protocol versions, ...).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),

    /// The client certificate verifier could not be built from the CA.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),

    /// A kubeconfig file could not be parsed or produced.
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A static token file line is malformed.
    #[error("{path}:{line}: {reason}")]
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
}

impl PkiError {
    /// Builds an [`PkiError::Io`] for `op` on `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PkiError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Builds a [`PkiError::Parse`] for `path`.
    pub(crate) fn parse(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        PkiError::Parse {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
