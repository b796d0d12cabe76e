//! Bootstrap tokens as upstream: `<id>.<secret>` (`[a-z0-9]{6}.[a-z0-9]{16}`), kept in
//! Secrets `bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` in `kube-system`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::Rng;
use serde_json::{json, Value};

use bramble_pki::UserInfo;

use crate::AuthError;

/// The Secret type of bootstrap tokens.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Prefix of bootstrap token Secret names.
pub const SECRET_PREFIX: &str = "bootstrap-token-";
/// The group every bootstrap token user is in.
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// kubeadm's default extra group for join tokens.
pub const DEFAULT_EXTRA_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// A parsed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

fn valid_part(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl BootstrapToken {
    /// Parses `abcdef.0123456789abcdef`.
    pub fn parse(token: &str) -> Result<BootstrapToken, AuthError> {
        let (id, secret) = token
            .split_once('.')
            .ok_or(AuthError::MalformedBootstrapToken)?;
        if !valid_part(id, 6) || !valid_part(secret, 16) {
            return Err(AuthError::MalformedBootstrapToken);
        }
        Ok(BootstrapToken {
            id: id.into(),
            secret: secret.into(),
        })
    }

    /// A new random token.
    pub fn generate() -> BootstrapToken {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let mut pick = |n: usize| {
            (0..n)
                .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
                .collect::<String>()
        };
        BootstrapToken {
            id: pick(6),
            secret: pick(16),
        }
    }

    /// The Secret name holding this token.
    pub fn secret_name(&self) -> String {
        format!("{SECRET_PREFIX}{}", self.id)
    }

    /// The Secret as kubeadm writes it; `expiration` is RFC 3339.
    pub fn to_secret(
        &self,
        expiration: Option<&str>,
        usages: &[&str],
        groups: &[&str],
        description: &str,
    ) -> Value {
        let mut data = serde_json::Map::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_string(), json!(STANDARD.encode(v)));
        };
        put("token-id", &self.id);
        put("token-secret", &self.secret);
        if let Some(e) = expiration {
            put("expiration", e);
        }
        for u in usages {
            put(&format!("usage-bootstrap-{u}"), "true");
        }
        if !groups.is_empty() {
            put("auth-extra-groups", &groups.join(","));
        }
        if !description.is_empty() {
            put("description", description);
        }
        json!({"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
               "metadata": {"name": self.secret_name(), "namespace": "kube-system"},
               "data": data})
    }
}

/// One `data` field of a stored Secret, decoded.
pub fn secret_field(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret.get("data")?.get(key)?.as_str()?;
    String::from_utf8(STANDARD.decode(b64).ok()?).ok()
}

/// The user a presented token stands for, given the Secret found for its id, as upstream's
/// bootstrap token authenticator: the Secret must be of the bootstrap type, hold the same
/// secret, allow authentication, and not have expired at `now` (unix seconds).
pub fn authenticate(token: &BootstrapToken, secret: &Value, now: i64) -> Option<UserInfo> {
    if secret.get("type").and_then(Value::as_str) != Some(SECRET_TYPE) {
        return None;
    }
    if secret
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return None;
    }
    let stored = secret_field(secret, "token-secret")?;
    if !constant_time_eq(stored.as_bytes(), token.secret.as_bytes())
        || secret_field(secret, "token-id")? != token.id
    {
        return None;
    }
    if secret_field(secret, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    if is_expired(secret, now) {
        return None;
    }
    let mut groups = vec![BOOTSTRAPPERS_GROUP.to_string()];
    for g in secret_field(secret, "auth-extra-groups")
        .unwrap_or_default()
        .split(',')
    {
        let g = g.trim();
        if g.starts_with("system:bootstrappers:") && !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    }
    Some(UserInfo {
        name: format!("system:bootstrap:{}", token.id),
        uid: String::new(),
        groups,
    })
}

/// Whether the Secret's `expiration` is at or before `now`.
pub fn is_expired(secret: &Value, now: i64) -> bool {
    match secret_field(secret, "expiration") {
        None => false,
        Some(e) => chrono::DateTime::parse_from_rfc3339(&e)
            .map(|t| t.timestamp() <= now)
            .unwrap_or(true),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_generate() {
        assert!(BootstrapToken::parse("abcdef.0123456789abcdef").is_ok());
        assert!(BootstrapToken::parse("ABCDEF.0123456789abcdef").is_err());
        assert!(BootstrapToken::parse("abcdef0123456789abcdef").is_err());
        assert!(BootstrapToken::parse("abcde.0123456789abcdef").is_err());
        let t = BootstrapToken::generate();
        assert_eq!(BootstrapToken::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn authenticates_until_expiry() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let s = t.to_secret(
            Some("2030-01-01T00:00:00Z"),
            &["authentication", "signing"],
            &[DEFAULT_EXTRA_GROUP],
            "",
        );
        let now = chrono::DateTime::parse_from_rfc3339("2029-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let u = authenticate(&t, &s, now).unwrap();
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert_eq!(u.groups, [BOOTSTRAPPERS_GROUP, DEFAULT_EXTRA_GROUP]);
        assert!(authenticate(&t, &s, now + 2 * 365 * 86400).is_none());
        let wrong = BootstrapToken::parse("abcdef.0123456789abcdee").unwrap();
        assert!(authenticate(&wrong, &s, now).is_none());
        let no_auth = t.to_secret(None, &["signing"], &[], "");
        assert!(authenticate(&t, &no_auth, now).is_none());
    }
}
