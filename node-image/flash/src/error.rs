//! Errors of `bramble flash`.

use std::path::PathBuf;

/// Why flashing stopped (before writing, for every refusal).
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    /// I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// The target is mounted.
    #[error("{device} is mounted ({detail}); unmount it first or pass --force")]
    Mounted {
        /// Target.
        device: PathBuf,
        /// Which mount.
        detail: String,
    },
    /// The target holds this system's root or boot file system.
    #[error("{device} holds this system's {mountpoint}; refusing (pass --force to override)")]
    SystemDisk {
        /// Target.
        device: PathBuf,
        /// Mount point found on it.
        mountpoint: String,
    },
    /// The target is a fixed disk.
    #[error("{device} is not a removable device (removable=0); pass --force if you are sure")]
    NotRemovable {
        /// Target.
        device: PathBuf,
    },
    /// The target is neither a block device nor a regular file.
    #[error("{device} is not a block device or regular file")]
    BadTarget {
        /// Target.
        device: PathBuf,
    },
    /// The image is not an image.
    #[error(
        "{image} has no MBR partition table: not a bramble image (pass --force to write it anyway)"
    )]
    NotAnImage {
        /// Image.
        image: PathBuf,
    },
    /// The device is smaller than the image.
    #[error("{device} holds {device_bytes} bytes, the image needs {image_bytes}")]
    TooSmall {
        /// Target.
        device: PathBuf,
        /// Its size.
        device_bytes: u64,
        /// Image size.
        image_bytes: u64,
    },
    /// Read-back verification failed.
    #[error("verification failed: wrote sha256 {expected}, read back {actual}")]
    Verify {
        /// Hash of the image.
        expected: String,
        /// Hash read back.
        actual: String,
    },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> FlashError {
    let path = path.into();
    move |source| FlashError::Io { path, source }
}
