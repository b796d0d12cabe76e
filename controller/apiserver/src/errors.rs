//! Errors of the API server: start-up failures, and store errors as `Status`.

use std::path::PathBuf;

use bramble_api::{ResourceInfo, Status};
use bramble_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("pki: {0}")]
    Pki(#[from] bramble_pki::PkiError),
    #[error("io on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bootstrapping {what}: {status}")]
    Bootstrap { what: String, status: Status },
    #[error("audit log: {0}")]
    Audit(#[from] crate::audit::AuditError),
}

/// Turns a store error about one object into the `Status` upstream would return.
pub fn store_status(err: StoreError, info: &ResourceInfo, name: &str) -> Status {
    match err {
        StoreError::NotFound(_) => Status::not_found(&info.qualified_resource(), &info.group, name),
        StoreError::AlreadyExists(_) => {
            Status::already_exists(&info.qualified_resource(), &info.group, name)
        }
        StoreError::Conflict { .. } => {
            Status::conflict(&info.qualified_resource(), &info.group, name)
        }
        StoreError::Compacted {
            requested,
            compacted,
        } => Status::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        other => Status::internal(other.to_string()),
    }
}
