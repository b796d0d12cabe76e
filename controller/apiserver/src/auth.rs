//! Authentication: a client certificate verified by TLS, or a bearer token (static tokens,
//! bootstrap tokens, service-account JWTs). Requests without any credential are the
//! anonymous user, which authorization lets read only public information.

use std::sync::Arc;

use bramble_api::{Reason, Status};
use bramble_auth::bootstrap_token::{self, BootstrapToken};
use bramble_auth::jwt::{self, TokenSigner, DEFAULT_ISSUER};
use bramble_pki::{TokenAuthenticator, UserInfo};
use bramble_store::Store;

use crate::authz::{anonymous, RbacCache};
use crate::objects::decode_stored;

/// Group of every service account.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

/// Who may call the API, and the cached authorization data that goes with it.
pub struct Authenticator {
    tokens: TokenAuthenticator,
    store: Option<Arc<dyn Store>>,
    signer: Option<Arc<TokenSigner>>,
    audiences: Vec<String>,
    rbac: RbacCache,
}

impl Authenticator {
    /// An authenticator knowing only static tokens (and client certificates).
    pub fn new(tokens: TokenAuthenticator) -> Self {
        Authenticator {
            tokens,
            store: None,
            signer: None,
            audiences: vec![DEFAULT_ISSUER.to_string()],
            rbac: RbacCache::default(),
        }
    }

    /// Also authenticates bootstrap tokens (Secrets in `kube-system` of this store) and, with
    /// [`Self::with_service_account_signer`], checks that a token's service account exists.
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Also authenticates service-account JWTs signed by `signer`.
    pub fn with_service_account_signer(mut self, signer: Arc<TokenSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The service-account token signer, if configured.
    pub fn signer(&self) -> Option<&Arc<TokenSigner>> {
        self.signer.as_ref()
    }

    /// The API audiences tokens must carry one of.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The RBAC snapshot cache authorization reads.
    pub fn rbac_cache(&self) -> &RbacCache {
        &self.rbac
    }

    /// The caller of one request: the connection's verified certificate identity, else the
    /// `Authorization: Bearer` token if present (401 when it is not valid), else the
    /// anonymous user. Authenticated users get `system:authenticated`.
    pub fn authenticate(
        &self,
        cert_identity: Option<&UserInfo>,
        headers: &http::HeaderMap,
    ) -> Result<UserInfo, Status> {
        // As upstream's union authenticator: the client certificate is tried first and a
        // verified one wins; a bearer token is only consulted (and refused with 401 when
        // bad) for requests without one.
        if let Some(u) = cert_identity {
            return Ok(u.clone().with_authenticated_group());
        }
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
                .and_then(|t| self.authenticate_token(t))
                .ok_or_else(unauthorized);
        }
        Ok(anonymous())
    }

    /// The user a bearer token stands for (with `system:authenticated`).
    pub fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
        let user = if let Some(u) = self.tokens.authenticate(token) {
            Some(u)
        } else if let Ok(bt) = BootstrapToken::parse(token) {
            self.bootstrap_user(&bt)
        } else if jwt::looks_like_jwt(token) {
            self.service_account_user(token)
        } else {
            None
        };
        user.map(UserInfo::with_authenticated_group)
    }

    fn bootstrap_user(&self, token: &BootstrapToken) -> Option<UserInfo> {
        let store = self.store.as_ref()?;
        let key = format!("core/secrets/kube-system/{}", token.secret_name());
        let kv = store.get(&key).ok()??;
        let secret = decode_stored(&kv.value).ok()?;
        bootstrap_token::authenticate(token, &secret, chrono::Utc::now().timestamp())
    }

    fn service_account_user(&self, token: &str) -> Option<UserInfo> {
        let signer = self.signer.as_ref()?;
        let claims = signer
            .verify(token, chrono::Utc::now().timestamp(), &self.audiences)
            .map_err(|e| tracing::debug!(error = %e, "service account token refused"))
            .ok()?;
        let k = &claims.kubernetes;
        let store = self.store.as_ref()?;
        // the account (and the pod a bound token names) must still exist with the same uid
        let sa_key = format!(
            "core/serviceaccounts/{}/{}",
            k.namespace, k.serviceaccount.name
        );
        let sa = decode_stored(&store.get(&sa_key).ok()??.value).ok()?;
        if sa.pointer("/metadata/uid").and_then(|v| v.as_str()) != Some(&k.serviceaccount.uid) {
            return None;
        }
        if let Some(pod) = &k.pod {
            let pod_key = format!("core/pods/{}/{}", k.namespace, pod.name);
            let p = decode_stored(&store.get(&pod_key).ok()??.value).ok()?;
            if p.pointer("/metadata/uid").and_then(|v| v.as_str()) != Some(&pod.uid) {
                return None;
            }
        }
        Some(UserInfo {
            name: claims.sub.clone(),
            uid: k.serviceaccount.uid.clone(),
            groups: vec![
                SERVICE_ACCOUNTS_GROUP.to_string(),
                format!("{SERVICE_ACCOUNTS_GROUP}:{}", k.namespace),
            ],
        })
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
        let u = authn().authenticate(None, &h).unwrap();
        assert!(u.groups.iter().any(|g| g == "system:authenticated"));
        h.insert(http::header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert_eq!(authn().authenticate(None, &h).unwrap_err().code(), 401);
    }

    #[test]
    fn no_credential_is_anonymous() {
        let u = authn().authenticate(None, &http::HeaderMap::new()).unwrap();
        assert_eq!(u.name, "system:anonymous");
        assert_eq!(u.groups, ["system:unauthenticated"]);
    }
}
