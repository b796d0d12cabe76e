//! Errors of the QEMU runner.

use std::path::PathBuf;

/// Errors starting or watching a QEMU board.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// Board config problem.
    #[error(transparent)]
    Board(#[from] bramble_boards::BoardError),
    /// The board has no `qemu:` section.
    #[error("board `{0}` cannot be emulated by QEMU (no `qemu:` section in its board file)")]
    NotEmulated(String),
    /// File operation failed.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// The image is not one `bramble image build` wrote.
    #[error("{path}: {message}")]
    BadImage {
        /// Image.
        path: PathBuf,
        /// Problem.
        message: String,
    },
    /// A tool failed or is missing.
    #[error("`{command}`: {message}")]
    Tool {
        /// Command.
        command: String,
        /// Problem (install hint or stderr).
        message: String,
    },
    /// A LAN for several boards could not be set up.
    #[error("virtual LAN: {0}")]
    Lan(String),
    /// The runner got a stop signal; QEMU was stopped.
    #[error("stopped by signal {signal}; QEMU stopped")]
    Interrupted {
        /// Signal number.
        signal: i32,
    },
    /// The expected console output did not appear in time.
    #[error("no `{marker}` on the console within {secs} s; last output:\n{tail}")]
    Timeout {
        /// Text waited for.
        marker: String,
        /// Seconds waited.
        secs: u64,
        /// End of the console output.
        tail: String,
    },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> QemuError {
    let path = path.into();
    move |source| QemuError::Io { path, source }
}
