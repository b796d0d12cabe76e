use std::path::PathBuf;

use crate::Revision;

/// Everything a [`crate::Store`] operation can fail with.
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
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is newer than the store's {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
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
    /// The key is longer than the backend accepts (LMDB: 511 bytes).
    #[error("key {key} is {len} bytes long; the store accepts at most {max}")]
    KeyTooLong { key: String, len: usize, max: usize },
    /// A stored record could not be decoded (a bug or on-disk corruption).
    #[error("stored record {what} is malformed: {reason}")]
    BadRecord { what: String, reason: &'static str },
    /// The commit shared by a group of transactions failed; none of them was applied.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// The store configuration is unusable.
    #[error("invalid store configuration: {0}")]
    InvalidConfig(&'static str),
}
