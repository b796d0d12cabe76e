//! Writing kubeconfig files for kubectl, merged into an existing file as k3s and kind do.

use std::path::Path;

use base64::Engine;
use serde_norway::{Mapping, Value};

use crate::files::{self, PRIVATE_MODE};
use crate::PkiError;

/// The credential a kubeconfig user entry carries.
#[derive(Clone, PartialEq, Eq)]
pub enum KubeconfigUser {
    /// A client certificate and its key, PEM (`client-certificate-data`, `client-key-data`).
    ClientCert {
        /// Certificate PEM.
        cert_pem: String,
        /// Private key PEM.
        key_pem: String,
    },
    /// A bearer token (`token`).
    Token(String),
}

impl std::fmt::Debug for KubeconfigUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KubeconfigUser::ClientCert { .. } => f.write_str("ClientCert([elided])"),
            KubeconfigUser::Token(_) => f.write_str("Token([elided])"),
        }
    }
}

/// Writes a kubeconfig at `path` with a cluster (`server_url`, CA `ca_pem`), a user (`user`)
/// and a context joining them, all three named `context_name`, and makes that context
/// current. An existing file is merged: its other clusters, users, contexts and fields are
/// kept, entries named `context_name` are replaced. Parent directories are created; the file
/// is replaced atomically (temporary file + rename) with mode 0600.
pub fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    ca_pem: &str,
    user: KubeconfigUser,
    context_name: &str,
) -> Result<(), PkiError> {
    // A symlinked kubeconfig (dotfile managers do this) is updated where it points, as
    // kubectl does, instead of being replaced by a regular file.
    let resolved;
    let path = match path.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(target) => {
                resolved = target;
                resolved.as_path()
            }
            Err(_) => path,
        },
        _ => path,
    };
    let doc = read_doc(path)?.unwrap_or_default();
    write_doc(path, doc, server_url, ca_pem, &user, context_name)
}

/// Writes a kubeconfig at `path` holding only Bramble's entries named `context_name` (see
/// [`write_kubeconfig`]), replacing whatever the file held: for a file that is one
/// component's credentials, such as a kubelet's.
pub fn replace_kubeconfig(
    path: &Path,
    server_url: &str,
    ca_pem: &str,
    user: KubeconfigUser,
    context_name: &str,
) -> Result<(), PkiError> {
    write_doc(
        path,
        Mapping::new(),
        server_url,
        ca_pem,
        &user,
        context_name,
    )
}

fn kubeconfig_err(path: &Path, reason: impl Into<String>) -> PkiError {
    PkiError::Kubeconfig {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The kubeconfig at `path` as a YAML mapping; `None` when missing or empty.
fn read_doc(path: &Path) -> Result<Option<Mapping>, PkiError> {
    match files::read_optional(path)? {
        Some(text) if !text.trim().is_empty() => {
            match serde_norway::from_str::<Value>(&text)
                .map_err(|e| kubeconfig_err(path, e.to_string()))?
            {
                Value::Mapping(m) => Ok(Some(m)),
                Value::Null => Ok(None),
                _ => Err(kubeconfig_err(path, "not a YAML mapping")),
            }
        }
        _ => Ok(None),
    }
}

fn write_doc(
    path: &Path,
    mut doc: Mapping,
    server_url: &str,
    ca_pem: &str,
    user: &KubeconfigUser,
    context_name: &str,
) -> Result<(), PkiError> {
    merge(&mut doc, server_url, ca_pem, user, context_name).map_err(|e| kubeconfig_err(path, e))?;
    let text = serde_norway::to_string(&Value::Mapping(doc))
        .map_err(|e| kubeconfig_err(path, e.to_string()))?;
    files::write_atomic(path, text.as_bytes(), PRIVATE_MODE)
}

/// What the context `context_name` of a kubeconfig holds, as [`write_kubeconfig`] writes it
/// (embedded data, not file references).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigEntry {
    /// The cluster's `server`.
    pub server: String,
    /// Its `certificate-authority-data`, decoded.
    pub ca_pem: String,
    /// The user's credential.
    pub user: KubeconfigUser,
}

/// Reads the context `context_name` of the kubeconfig at `path`, its cluster and its user:
/// `Ok(None)` when the file or the context is missing or its entries are not of the form
/// [`write_kubeconfig`] writes; an error only when the file cannot be read or parsed.
pub fn read_kubeconfig_entry(
    path: &Path,
    context_name: &str,
) -> Result<Option<KubeconfigEntry>, PkiError> {
    Ok(read_doc(path)?.and_then(|doc| entry_of(&doc, context_name)))
}

/// [`read_kubeconfig_entry`] of the file's `current-context`.
pub fn read_current_kubeconfig_entry(path: &Path) -> Result<Option<KubeconfigEntry>, PkiError> {
    Ok(read_doc(path)?.and_then(|doc| {
        let current = doc.get("current-context")?.as_str()?.to_string();
        entry_of(&doc, &current)
    }))
}

fn entry_of(doc: &Mapping, name: &str) -> Option<KubeconfigEntry> {
    let named = |list: &str, field: &str, item: &str| -> Option<Value> {
        doc.get(list)?
            .as_sequence()?
            .iter()
            .find(|i| i.get("name").and_then(Value::as_str) == Some(item))?
            .get(field)
            .cloned()
    };
    let decoded = |v: &Value, key: &str| -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.get(key)?.as_str()?.trim())
            .ok()?;
        String::from_utf8(bytes).ok()
    };
    let context = named("contexts", "context", name)?;
    let cluster = named("clusters", "cluster", context.get("cluster")?.as_str()?)?;
    let user = named("users", "user", context.get("user")?.as_str()?)?;
    let credential = match user.get("token").and_then(Value::as_str) {
        Some(token) => KubeconfigUser::Token(token.to_string()),
        None => KubeconfigUser::ClientCert {
            cert_pem: decoded(&user, "client-certificate-data")?,
            key_pem: decoded(&user, "client-key-data")?,
        },
    };
    Some(KubeconfigEntry {
        server: cluster.get("server")?.as_str()?.to_string(),
        ca_pem: decoded(&cluster, "certificate-authority-data")?,
        user: credential,
    })
}

/// Merges Bramble's entries into a kubeconfig document.
fn merge(
    doc: &mut Mapping,
    server_url: &str,
    ca_pem: &str,
    user: &KubeconfigUser,
    name: &str,
) -> Result<(), String> {
    let b64 = |s: &str| Value::from(base64::engine::general_purpose::STANDARD.encode(s));

    let mut cluster = Mapping::new();
    cluster.insert("certificate-authority-data".into(), b64(ca_pem));
    cluster.insert("server".into(), server_url.into());

    let mut credential = Mapping::new();
    match user {
        KubeconfigUser::ClientCert { cert_pem, key_pem } => {
            credential.insert("client-certificate-data".into(), b64(cert_pem));
            credential.insert("client-key-data".into(), b64(key_pem));
        }
        KubeconfigUser::Token(token) => {
            credential.insert("token".into(), token.as_str().into());
        }
    }

    let mut context = Mapping::new();
    context.insert("cluster".into(), name.into());
    context.insert("user".into(), name.into());

    // Keys in the order kubectl writes them, for a new file; existing keys keep their place.
    set_default(doc, "apiVersion", "v1".into());
    upsert_named(doc, "clusters", name, "cluster", cluster)?;
    upsert_named(doc, "contexts", name, "context", context)?;
    doc.insert("current-context".into(), name.into());
    set_default(doc, "kind", "Config".into());
    set_default(doc, "preferences", Value::Mapping(Mapping::new()));
    upsert_named(doc, "users", name, "user", credential)?;
    Ok(())
}

fn set_default(doc: &mut Mapping, key: &str, value: Value) {
    if doc.get(key).is_none_or(Value::is_null) {
        doc.insert(key.into(), value);
    }
}

/// In the list `doc[list]`, replaces the item whose `name` is `name` by
/// `{name: name, <field>: body}`, or appends one.
fn upsert_named(
    doc: &mut Mapping,
    list: &str,
    name: &str,
    field: &str,
    body: Mapping,
) -> Result<(), String> {
    let mut item = Mapping::new();
    item.insert("name".into(), name.into());
    item.insert(field.into(), Value::Mapping(body));
    let item = Value::Mapping(item);

    let entry = doc
        .entry(list.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if entry.is_null() {
        *entry = Value::Sequence(Vec::new());
    }
    let Value::Sequence(items) = entry else {
        return Err(format!("{list} is not a list"));
    };
    match items
        .iter_mut()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinked_kubeconfig_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real-config");
        std::fs::write(&target, "").unwrap();
        let link = dir.path().join("config");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_kubeconfig(
            &link,
            "https://s",
            "CA",
            KubeconfigUser::Token("t".into()),
            "b",
        )
        .unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert!(std::fs::read_to_string(&target)
            .unwrap()
            .contains("current-context: b"));
    }

    #[test]
    fn the_current_context_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        assert_eq!(read_current_kubeconfig_entry(&path).unwrap(), None);
        let user = KubeconfigUser::ClientCert {
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
        };
        write_kubeconfig(&path, "https://a", "CA-A", user.clone(), "a").unwrap();
        write_kubeconfig(&path, "https://b", "CA-B", user.clone(), "b").unwrap();
        let entry = read_current_kubeconfig_entry(&path).unwrap().unwrap();
        assert_eq!(
            (entry.server.as_str(), entry.ca_pem.as_str()),
            ("https://b", "CA-B")
        );
        assert_eq!(entry.user, user);
    }

    #[test]
    fn merge_replaces_own_entries_and_keeps_others() {
        let mut doc: Mapping = serde_norway::from_str(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: https://o}\n\
             - name: b\n  cluster: {server: https://old, insecure-skip-tls-verify: true}\n\
             users: null\ncontexts: []\ncurrent-context: other\nextra-field: kept\n",
        )
        .unwrap();
        merge(
            &mut doc,
            "https://new",
            "CA",
            &KubeconfigUser::Token("t".into()),
            "b",
        )
        .unwrap();
        let clusters = doc["clusters"].as_sequence().unwrap();
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[0]["name"].as_str(), Some("other"));
        assert_eq!(
            clusters[1]["cluster"]["server"].as_str(),
            Some("https://new")
        );
        assert!(clusters[1]["cluster"]
            .get("insecure-skip-tls-verify")
            .is_none());
        assert_eq!(doc["users"][0]["user"]["token"].as_str(), Some("t"));
        assert_eq!(doc["current-context"].as_str(), Some("b"));
        assert_eq!(doc["extra-field"].as_str(), Some("kept"));
        assert!(merge(
            &mut serde_norway::from_str("clusters: 3").unwrap(),
            "s",
            "c",
            &KubeconfigUser::Token("t".into()),
            "n"
        )
        .is_err());
    }
}
