//! Service-account tokens: JWTs signed ES256 (ECDSA P-256, SHA-256) with the controller's
//! key, carrying upstream's claims (`iss`, `sub: system:serviceaccount:<ns>:<name>`, `aud`,
//! `exp`, `iat`, `nbf`, `jti` and the private `kubernetes.io` claim with namespace, service
//! account, and for bound tokens pod and node).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// Upstream's default issuer and API audience.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Prefix of service-account user names.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
/// Longest accepted token, to keep parsing cheap on hostile input.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A name and uid reference inside the `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub name: String,
    pub uid: String,
}

/// The private `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaim {
    pub namespace: String,
    pub serviceaccount: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// The claims of a service-account token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
    pub nbf: i64,
    pub sub: String,
}

impl Claims {
    /// Claims for `namespace/name` (uid `sa_uid`) valid `expiration_seconds` from `now`.
    pub fn new(
        issuer: &str,
        audiences: Vec<String>,
        namespace: &str,
        name: &str,
        sa_uid: &str,
        now: i64,
        expiration_seconds: i64,
    ) -> Claims {
        Claims {
            aud: audiences,
            exp: now + expiration_seconds,
            iat: now,
            iss: issuer.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: KubernetesClaim {
                namespace: namespace.to_string(),
                serviceaccount: ObjectRef {
                    name: name.to_string(),
                    uid: sa_uid.to_string(),
                },
                pod: None,
                node: None,
                warnafter: None,
            },
            nbf: now,
            sub: format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// Signs and verifies service-account tokens with one ECDSA P-256 key.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    kid: String,
    issuer: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A new random P-256 key as PKCS#8 DER.
    pub fn generate_pkcs8() -> Result<Vec<u8>, AuthError> {
        let doc = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .map_err(|_| AuthError::Key("generating key failed".into()))?;
        Ok(doc.as_ref().to_vec())
    }

    /// The signer for a PKCS#8 DER P-256 key, issuing tokens with issuer `issuer`.
    pub fn from_pkcs8(der: &[u8], issuer: &str) -> Result<TokenSigner, AuthError> {
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
            &SystemRandom::new(),
        )
        .map_err(|e| AuthError::Key(e.to_string()))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        Ok(TokenSigner {
            kid: B64.encode(digest.as_ref()),
            key,
            issuer: issuer.to_string(),
        })
    }

    /// The issuer (`iss`) of this signer's tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The signed compact JWT for `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let header = Header {
            alg: "ES256".into(),
            kid: self.kid.clone(),
            typ: None,
        };
        let mut out = B64.encode(serde_json::to_vec(&header)?);
        out.push('.');
        out.push_str(&B64.encode(serde_json::to_vec(claims)?));
        let sig = self
            .key
            .sign(&SystemRandom::new(), out.as_bytes())
            .map_err(|_| AuthError::Key("signing failed".into()))?;
        out.push('.');
        out.push_str(&B64.encode(sig.as_ref()));
        Ok(out)
    }

    /// Checks the signature (ES256 only: `none` and every other algorithm are refused), the
    /// issuer, the validity window at `now` and that one of `audiences` is in `aud`.
    pub fn verify(&self, token: &str, now: i64, audiences: &[String]) -> Result<Claims, AuthError> {
        let bad = |m: &str| AuthError::InvalidToken(m.to_string());
        if token.len() > MAX_TOKEN_BYTES {
            return Err(bad("too long"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not a compact JWS"));
        };
        let header: Header =
            serde_json::from_slice(&B64.decode(h).map_err(|_| bad("header encoding"))?)
                .map_err(|_| bad("header"))?;
        if header.alg != "ES256" {
            return Err(bad("unexpected signing algorithm"));
        }
        let sig = B64.decode(s).map_err(|_| bad("signature encoding"))?;
        let signed_len = h.len() + 1 + c.len();
        UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        )
        .verify(&token.as_bytes()[..signed_len], &sig)
        .map_err(|_| bad("signature"))?;
        let claims: Claims =
            serde_json::from_slice(&B64.decode(c).map_err(|_| bad("claims encoding"))?)
                .map_err(|_| bad("claims"))?;
        if claims.iss != self.issuer {
            return Err(bad("issuer"));
        }
        if now >= claims.exp {
            return Err(bad("token has expired"));
        }
        if now + 60 < claims.nbf {
            return Err(bad("token used before issued"));
        }
        if !claims.aud.iter().any(|a| audiences.contains(a)) {
            return Err(bad("token audiences are not valid"));
        }
        Ok(claims)
    }
}

/// Whether `token` looks like a JWT (three base64url parts), to route it to this verifier.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::from_pkcs8(&TokenSigner::generate_pkcs8().unwrap(), DEFAULT_ISSUER).unwrap()
    }

    fn aud() -> Vec<String> {
        vec![DEFAULT_ISSUER.to_string()]
    }

    #[test]
    fn round_trip_and_expiry() {
        let s = signer();
        let claims = Claims::new(DEFAULT_ISSUER, aud(), "default", "bot", "uid-1", 1000, 3600);
        let tok = s.sign(&claims).unwrap();
        assert!(looks_like_jwt(&tok));
        assert_eq!(s.verify(&tok, 1001, &aud()).unwrap(), claims);
        assert!(s.verify(&tok, 4600, &aud()).is_err());
        assert!(s.verify(&tok, 1001, &["other".to_string()]).is_err());
        assert_eq!(claims.sub, "system:serviceaccount:default:bot");
    }

    #[test]
    fn forged_tokens_refused() {
        let s = signer();
        let claims = Claims::new(DEFAULT_ISSUER, aud(), "default", "bot", "uid-1", 1000, 3600);
        let tok = s.sign(&claims).unwrap();
        // another key's signature
        assert!(signer().verify(&tok, 1001, &aud()).is_err());
        // alg none with the same claims and no signature
        let parts: Vec<&str> = tok.split('.').collect();
        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), parts[1]);
        assert!(s.verify(&none, 1001, &aud()).is_err());
        // changed claims with the old signature
        let mut evil = claims.clone();
        evil.sub = "system:serviceaccount:kube-system:admin".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(serde_json::to_vec(&evil).unwrap()),
            parts[2]
        );
        assert!(s.verify(&forged, 1001, &aud()).is_err());
        assert!(s.verify("a.b", 1001, &aud()).is_err());
    }
}
