//! Registry credentials from `imagePullSecrets` of type `kubernetes.io/dockerconfigjson`.
//!
//! Matching follows the kubelet's credential keyring: keys may carry a scheme, a port, a path and
//! `*` globs per host label; keys are tried most specific first; credentials stored for
//! `index.docker.io` also serve Docker Hub images.

use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Upstream's default registry key host.
const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

/// A `.dockerconfigjson` that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Not JSON, or not the expected shape.
    #[error("invalid .dockerconfigjson: {0}")]
    Json(#[from] serde_json::Error),
    /// An `auth` field that is not base64 of `user:password`.
    #[error("invalid auth field for registry {0:?}: expected base64 of user:password")]
    BadAuthField(String),
}

/// A username/password pair for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Username.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

/// A parsed keyring: credentials indexed by schemeless registry location.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    // (key, credentials), sorted by key descending so more specific paths match first.
    entries: Vec<(String, Credentials)>,
}

impl Keyring {
    /// Parses the contents of one `.dockerconfigjson` secret key.
    pub fn from_docker_config_json(json: &[u8]) -> Result<Self, AuthError> {
        let mut k = Keyring::default();
        k.add_docker_config_json(json)?;
        Ok(k)
    }

    /// Adds a legacy `kubernetes.io/dockercfg` secret's `.dockercfg` (the same entries without
    /// the `auths` wrapper).
    pub fn add_dockercfg(&mut self, json: &[u8]) -> Result<(), AuthError> {
        let auths: serde_json::Value = serde_json::from_slice(json)?;
        let wrapped = serde_json::to_vec(&serde_json::json!({ "auths": auths }))?;
        self.add_docker_config_json(&wrapped)
    }

    /// Adds another secret's `.dockerconfigjson` (a pod may list several `imagePullSecrets`).
    pub fn add_docker_config_json(&mut self, json: &[u8]) -> Result<(), AuthError> {
        let cfg: ConfigJson = serde_json::from_slice(json)?;
        for (loc, e) in cfg.auths {
            let (mut username, mut password) = (
                e.username.unwrap_or_default(),
                e.password.unwrap_or_default(),
            );
            if let Some(a) = e.auth.filter(|a| !a.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .map_err(|_| AuthError::BadAuthField(loc.clone()))?;
                let s = String::from_utf8(raw).map_err(|_| AuthError::BadAuthField(loc.clone()))?;
                let (u, p) = s
                    .split_once(':')
                    .ok_or_else(|| AuthError::BadAuthField(loc.clone()))?;
                username = u.to_string();
                password = p.to_string();
            }
            let key = effective_key(&loc);
            let creds = Credentials { username, password };
            if !self.entries.iter().any(|(k, c)| *k == key && *c == creds) {
                self.entries.push((key, creds));
            }
        }
        self.entries.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(())
    }

    /// All credentials matching `image` (a repository like `registry:5000/ns/app` or
    /// `docker.io/library/busybox`), most specific first; empty means pull anonymously.
    pub fn lookup(&self, image: &str) -> Vec<Credentials> {
        let found: Vec<Credentials> = self
            .entries
            .iter()
            .filter(|(k, _)| urls_match(k, image))
            .map(|(_, c)| c.clone())
            .collect();
        if !found.is_empty() {
            return found;
        }
        if is_default_registry_match(image) {
            return self
                .entries
                .iter()
                .filter(|(k, _)| k == DEFAULT_REGISTRY_HOST)
                .map(|(_, c)| c.clone())
                .collect();
        }
        Vec::new()
    }
}

/// Convenience: the credentials a `.dockerconfigjson` holds for `registry_host` (with port, as in
/// an image reference), first match; `Ok(None)` when it has none.
pub fn credentials_for_host(
    json: &[u8],
    registry_host: &str,
) -> Result<Option<Credentials>, AuthError> {
    Ok(Keyring::from_docker_config_json(json)?
        .lookup(registry_host)
        .into_iter()
        .next())
}

/// Strips the scheme and a `/v1/` or `/v2/` API prefix: `https://index.docker.io/v1/` ->
/// `index.docker.io`, `reg:5000/ns` -> `reg:5000/ns`.
fn effective_key(loc: &str) -> String {
    let rest = loc.split_once("://").map_or(loc, |(_, r)| r);
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let path = path
        .strip_prefix("/v1")
        .or_else(|| path.strip_prefix("/v2"))
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .unwrap_or(path);
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}{path}")
    }
}

/// Upstream `isDefaultRegistryMatch`.
fn is_default_registry_match(image: &str) -> bool {
    let mut parts = image.splitn(2, '/');
    let first = parts.next().unwrap_or("");
    if first.is_empty() {
        return false;
    }
    match parts.next() {
        None => true,
        Some(_) => {
            first == "docker.io" || first == "index.docker.io" || !first.contains(['.', ':'])
        }
    }
}

fn split_host_port_path(s: &str) -> (&str, &str, &str) {
    let (hostport, path) = match s.find('/') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (h, p, path),
        _ => (hostport, "", path),
    }
}

/// Upstream `URLsMatch`: same number of host labels, each label a glob match, same port, and the
/// target path starts with the key's path.
fn urls_match(key: &str, target: &str) -> bool {
    let (kh, kp, kpath) = split_host_port_path(key);
    let (th, tp, tpath) = split_host_port_path(target);
    let kl: Vec<&str> = kh.split('.').collect();
    let tl: Vec<&str> = th.split('.').collect();
    if kl.len() != tl.len() || kp != tp {
        return false;
    }
    if !kl.iter().zip(&tl).all(|(k, t)| glob_match(k, t)) {
        return false;
    }
    tpath.starts_with(kpath)
}

/// `*` matches any run of characters (within one host label), `?` one character.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(entries: &[(&str, &str, &str)]) -> Vec<u8> {
        let auths: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|(k, u, p)| {
                let auth = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                (k.to_string(), serde_json::json!({ "auth": auth }))
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "auths": auths })).unwrap()
    }

    #[test]
    fn exact_host_with_port() {
        let j = cfg(&[("127.0.0.1:5000", "alice", "s3cret")]);
        let c = credentials_for_host(&j, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cret")
        );
        assert!(credentials_for_host(&j, "127.0.0.1:5001")
            .unwrap()
            .is_none());
        assert!(credentials_for_host(&j, "127.0.0.1").unwrap().is_none());
    }

    #[test]
    fn username_password_fields_and_scheme_are_accepted() {
        let j = br#"{"auths":{"https://reg.example.com/v2/":{"username":"u","password":"p:with:colons"}}}"#;
        let c = credentials_for_host(j, "reg.example.com").unwrap().unwrap();
        assert_eq!(c.password, "p:with:colons");
    }

    #[test]
    fn docker_hub_key_serves_bare_and_docker_io_images() {
        let j = cfg(&[("https://index.docker.io/v1/", "hub", "pw")]);
        let k = Keyring::from_docker_config_json(&j).unwrap();
        assert_eq!(k.lookup("docker.io/library/busybox")[0].username, "hub");
        assert_eq!(k.lookup("busybox")[0].username, "hub");
        assert!(k.lookup("quay.io/x/y").is_empty());
    }

    #[test]
    fn globs_and_paths_most_specific_first() {
        let j = cfg(&[
            ("*.example.com", "wild", "1"),
            ("reg.example.com/team", "team", "2"),
        ]);
        let k = Keyring::from_docker_config_json(&j).unwrap();
        let got: Vec<_> = k
            .lookup("reg.example.com/team/app")
            .into_iter()
            .map(|c| c.username)
            .collect();
        assert_eq!(got, ["team", "wild"]);
        let got: Vec<_> = k
            .lookup("reg.example.com/other/app")
            .into_iter()
            .map(|c| c.username)
            .collect();
        assert_eq!(got, ["wild"]);
        // Globs do not cross labels.
        assert!(k.lookup("a.b.example.com/x").is_empty());
    }

    #[test]
    fn malformed_secrets_are_errors() {
        assert!(matches!(
            Keyring::from_docker_config_json(b"not json"),
            Err(AuthError::Json(_))
        ));
        assert!(matches!(
            Keyring::from_docker_config_json(br#"{"auths":{"r":{"auth":"!!!"}}}"#),
            Err(AuthError::BadAuthField(_))
        ));
        let k = Keyring::from_docker_config_json(br#"{}"#).unwrap();
        assert!(k.lookup("busybox").is_empty());
    }

    #[test]
    fn legacy_dockercfg_secrets() {
        let mut k = Keyring::default();
        k.add_dockercfg(br#"{"reg.lan:5000":{"username":"u","password":"p"}}"#)
            .unwrap();
        assert_eq!(k.lookup("reg.lan:5000/x")[0].username, "u");
    }

    #[test]
    fn glob_basics() {
        assert!(glob_match("*", "abc"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a*d", "abc"));
    }
}
