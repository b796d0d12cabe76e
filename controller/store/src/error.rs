use std::path::PathBuf;

use crate::Revision;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {0} not found")]
    NotFound(String),
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {key}: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: u64,
        actual: u64,
    },
    #[error("revision {requested} has been compacted (oldest available: {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    #[error("revision {requested} is newer than the store's {current}")]
    FutureRevision { requested: Revision, current: Revision },
    #[error("watcher fell too far behind")]
    WatcherTooSlow,
    #[error("opening store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: heed::Error,
    },
    #[error("lmdb: {0}")]
    Lmdb(#[from] heed::Error),
    #[error("stored object under {key} is not valid JSON: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("object for {key} has no metadata map")]
    NoMetadata { key: String },
    #[error("the store is shut down")]
    Closed,
    #[error("io on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
