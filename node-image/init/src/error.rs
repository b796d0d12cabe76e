//! Errors of PID 1.

use std::path::PathBuf;

/// Errors of `bramble init`.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A system call on a path failed.
    #[error("{op} {path}: {source}")]
    Sys {
        /// Operation (`mount`, `finit_module`, ...).
        op: &'static str,
        /// Path involved.
        path: PathBuf,
        /// errno.
        source: std::io::Error,
    },
    /// Node or board config problem (names file and field).
    #[error(transparent)]
    Config(#[from] bramble_boards::BoardError),
    /// A partition named on the kernel command line was not found.
    #[error("no block device with {0} appeared (waited {1} s)")]
    DeviceNotFound(String, u64),
    /// The kernel command line lacks a parameter init needs.
    #[error("kernel command line has no `{0}=`")]
    MissingParam(&'static str),
    /// A kernel module could not be found in modules.dep.
    #[error("module `{0}` not found in {1}")]
    ModuleNotFound(String, PathBuf),
    /// A module file was not loaded because a file it depends on failed.
    #[error("{0} not loaded: its dependency {1} failed")]
    ModuleDependency(String, String),
    /// Partition table problem.
    #[error("partition table of {path}: {message}")]
    PartitionTable {
        /// Disk.
        path: PathBuf,
        /// Problem.
        message: String,
    },
    /// Network configuration failed.
    #[error("network {interface}: {message}")]
    Network {
        /// Interface.
        interface: String,
        /// Problem.
        message: String,
    },
    /// Not running where init can run.
    #[error("{0}")]
    Usage(String),
    /// The A/B boot record on the boot partition is malformed.
    #[error(transparent)]
    BootRecord(#[from] bramble_boards::RecordError),
}

/// Build an `InitError::Sys` from the last OS error.
pub(crate) fn last_os(op: &'static str, path: impl Into<PathBuf>) -> InitError {
    InitError::Sys {
        op,
        path: path.into(),
        source: std::io::Error::last_os_error(),
    }
}

/// Attach an operation and path to an I/O error.
pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> InitError {
    let path = path.into();
    move |source| InitError::Sys { op, path, source }
}

/// Public alias of [`last_os`] for the crate root.
pub(crate) fn last_os_pub(op: &'static str, path: impl Into<PathBuf>) -> InitError {
    last_os(op, path)
}
