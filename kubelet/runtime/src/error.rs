//! Errors the kubelet sees from the runtime.

use crate::frame::FrameError;

/// Errors of [`crate::ContainerRuntime`] calls.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The helper could not be started.
    #[error("start runtime helper: {0}")]
    Spawn(#[source] std::io::Error),
    /// The connection to the helper failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The helper closed the connection (it died).
    #[error("runtime helper closed the connection")]
    HelperGone,
    /// No such container or sandbox.
    #[error("not found: {0}")]
    NotFound(String),
    /// The id is already used.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The request does not fit the container's state.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The helper failed to carry the request out.
    #[error("runtime: {0}")]
    Helper(String),
    /// The helper answered with a response of the wrong kind.
    #[error("unexpected runtime response: {0}")]
    Unexpected(String),
    /// Local I/O (exec pipes).
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// An exec'd process could not be started or was lost.
    #[error("exec: {0}")]
    Exec(String),
    /// Waiting for an exec'd process timed out.
    #[error("exec timed out")]
    Timeout,
}
