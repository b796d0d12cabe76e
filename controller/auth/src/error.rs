//! Errors of the auth crate.

/// Why a token or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A JWT that is malformed, badly signed, expired or for someone else.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The signing key could not be created or parsed.
    #[error("signing key: {0}")]
    Key(String),
    /// A bootstrap token that does not have the `[a-z0-9]{6}.[a-z0-9]{16}` form.
    #[error("malformed bootstrap token")]
    MalformedBootstrapToken,
    /// JSON (de)serialization of claims or objects.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}
