//! Errors of the image builder.

use std::path::PathBuf;

/// Everything that can stop an image build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Board or node config is invalid (the message names file and field).
    #[error(transparent)]
    Config(#[from] bramble_boards::BoardError),
    /// File system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// An external tool could not be started.
    #[error("cannot run `{tool}` (install the Debian package `{package}`): {source}")]
    ToolMissing {
        /// Tool name.
        tool: String,
        /// Debian package providing it.
        package: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// An external tool failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    ToolFailed {
        /// Command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its standard error (trimmed).
        stderr: String,
    },
    /// A Debian package could not be found or downloaded.
    #[error("Debian package `{package}` ({suite}, arm64) not available: {detail}")]
    PackageMissing {
        /// Package name.
        package: String,
        /// Suite searched.
        suite: String,
        /// apt's message.
        detail: String,
    },
    /// A file the board needs is not in the package it should come from.
    #[error("board `{board}`: `{file}` not found in {package} (looked in {looked})")]
    FileMissing {
        /// Board name.
        board: String,
        /// File named by the board config.
        file: String,
        /// Package it should come from.
        package: String,
        /// Directory searched.
        looked: PathBuf,
    },
    /// A kernel module named by the board is not built for its kernel.
    #[error("board `{board}`: kernel module `{module}` does not exist in kernel {kernel}")]
    ModuleMissing {
        /// Board name.
        board: String,
        /// Module name.
        module: String,
        /// Kernel release.
        kernel: String,
    },
    /// The `bramble` binary given for the image is not a static aarch64 executable.
    #[error("{path}: not a static aarch64 executable ({reason}); build one with scripts/build-aarch64.sh")]
    BadBinary {
        /// Binary path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A dynamically linked file shipped in the root could not be read as an ELF object.
    #[error("{path}: not a readable ELF object ({reason})")]
    BadElf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A computed layout does not fit.
    #[error("layout: {0}")]
    Layout(String),
}

/// Attach a path to an I/O error.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    move |source| BuildError::Io { path, source }
}
