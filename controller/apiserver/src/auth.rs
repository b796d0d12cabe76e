//! Authentication: a client certificate verified by TLS, or a bearer token.

use bramble_api::{Reason, Status};
use bramble_pki::{TokenAuthenticator, UserInfo};

/// Who may call the API.
pub struct Authenticator {
    tokens: TokenAuthenticator,
}

impl Authenticator {
    pub fn new(tokens: TokenAuthenticator) -> Self {
        Authenticator { tokens }
    }

    /// The caller of one request: the connection's verified certificate identity, else the
    /// `Authorization: Bearer` token. Anonymous requests are refused with 401.
    pub fn authenticate(
        &self,
        cert_identity: Option<&UserInfo>,
        headers: &http::HeaderMap,
    ) -> Result<UserInfo, Status> {
        if let Some(value) = headers.get(http::header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty());
            return token
                .and_then(|t| self.tokens.authenticate(t))
                .ok_or_else(unauthorized);
        }
        cert_identity.cloned().ok_or_else(unauthorized)
    }
}

pub fn unauthorized() -> Status {
    Status::new(Reason::Unauthorized, "Unauthorized")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authn() -> Authenticator {
        let mut tokens = TokenAuthenticator::new();
        tokens.add("s3cret", bramble_pki::admin_user());
        Authenticator::new(tokens)
    }

    #[test]
    fn bearer_tokens() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer s3cret".parse().unwrap(),
        );
        assert!(authn().authenticate(None, &h).is_ok());
        h.insert(http::header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert_eq!(authn().authenticate(None, &h).unwrap_err().code(), 401);
    }

    #[test]
    fn anonymous_is_refused() {
        assert_eq!(
            authn()
                .authenticate(None, &http::HeaderMap::new())
                .unwrap_err()
                .code(),
            401
        );
    }
}
