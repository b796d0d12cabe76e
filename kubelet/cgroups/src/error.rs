//! Errors of cgroup operations.

use std::path::PathBuf;

/// Everything that can go wrong while driving cgroupfs.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Reading, writing, creating or removing a cgroupfs entry failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted (`read`, `write`, `mkdir`, `rmdir`).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A control file held something that could not be parsed.
    #[error("cannot parse {path}: {detail}")]
    Parse {
        /// The control file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The root is neither a cgroup v2 mount nor a directory of v1 controller mounts.
    #[error("{0} is not a cgroup v1 or v2 root")]
    UnknownRoot(PathBuf),
    /// A relative cgroup path was absolute or climbed out with `..`.
    #[error("cgroup path {0:?} must be relative and stay under the root")]
    BadPath(PathBuf),
    /// The cgroup still holds processes, so it cannot be removed.
    #[error("cgroup {path} still has processes {pids:?}")]
    Busy {
        /// The cgroup directory.
        path: PathBuf,
        /// Processes still in it.
        pids: Vec<u32>,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CgroupError>;
