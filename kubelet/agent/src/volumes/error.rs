//! Volume errors. A failed set-up is reported as upstream's FailedMount:
//! `MountVolume.SetUp failed for volume "<name>" : <cause>`.

use std::path::{Path, PathBuf};

/// Why a volume could not be set up or mounted into a container.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The source object or path is not usable (upstream's message).
    #[error("{0}")]
    Setup(String),
    /// An API request failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A mount syscall failed.
    #[error("mount {what} on {path}: {source}")]
    Mount {
        /// What was mounted.
        what: String,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustix::io::Errno,
    },
}

/// An [`VolumeError::Io`] builder for `map_err`.
pub fn io(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let path = path.as_ref().to_path_buf();
    move |source| VolumeError::Io { op, path, source }
}

/// A volume's failure with the volume's name, for events and container status.
#[derive(Debug, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume {volume:?} : {source}")]
pub struct FailedMount {
    /// The volume's name in the pod spec.
    pub volume: String,
    /// The cause.
    #[source]
    pub source: VolumeError,
}
