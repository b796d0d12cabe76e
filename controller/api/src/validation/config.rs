//! ConfigMaps and Secrets as upstream's `ValidateConfigMap(Update)` and
//! `ValidateSecret(Update)` check them.

use base64::Engine;
use serde_json::Value;

use super::field::{forbidden, invalid, invalid_str, required, too_long, ErrorList, Path};
use super::meta::FIELD_IMMUTABLE;
use super::names::is_config_map_key;
use super::obj::{self, named};

/// Upstream `MaxSecretSize` (also the ConfigMap limit): 1 MiB.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

fn decoded_len(v: &Value) -> usize {
    let s = v.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(|b| b.len())
        .unwrap_or(s.len())
}

fn decoded(v: Option<&Value>) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(v?.as_str()?)
        .ok()
}

fn key_errors(key: &str, p: &str) -> ErrorList {
    is_config_map_key(key)
        .into_iter()
        .map(|m| invalid_str(p, key, &m))
        .collect()
}

/// `ValidateConfigMap` (+ update rules), ObjectMeta excluded.
pub fn config_map(cm: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(old) = old {
        if obj::b(old, "immutable") {
            if !obj::b(cm, "immutable") {
                errs.push(forbidden(
                    "immutable",
                    "field is immutable when `immutable` is set",
                ));
            }
            for f in ["data", "binaryData"] {
                if !obj::same(cm.get(f), old.get(f)) {
                    errs.push(forbidden(f, "field is immutable when `immutable` is set"));
                }
            }
        }
    }
    let binary_keys = obj::keys(cm, "binaryData");
    let mut total = 0usize;
    for (k, v) in obj::string_map(cm, "data") {
        let p = Path::new("data").key(k);
        errs.extend(key_errors(k, &p));
        if binary_keys.contains(&k) {
            errs.push(invalid_str(&p, k, "duplicate of key present in binaryData"));
        }
        total += v.len();
    }
    for k in binary_keys {
        errs.extend(key_errors(k, &Path::new("binaryData").key(k)));
        total += decoded_len(&cm["binaryData"][k]);
    }
    if total > MAX_SECRET_SIZE {
        // Upstream reports it at `field.NewPath("")`, which prints as `[]`.
        errs.push(too_long("[]", MAX_SECRET_SIZE));
    }
    errs
}

/// `ValidateSecret` (+ update rules), ObjectMeta excluded. `stringData` keys count as `data`
/// keys, as upstream merges them before validating.
pub fn secret(sec: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let ty = obj::opt_s(sec, "type").unwrap_or("");
    if let Some(old) = old {
        let old_ty = obj::s(old, "type");
        if old_ty != ty {
            errs.push(invalid("type", named(ty), FIELD_IMMUTABLE));
        }
        if obj::b(old, "immutable") {
            if !obj::b(sec, "immutable") {
                errs.push(forbidden(
                    "immutable",
                    "field is immutable when `immutable` is set",
                ));
            }
            if !obj::same(sec.get("data"), old.get("data")) {
                errs.push(forbidden(
                    "data",
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    let data_path = Path::new("data");
    let mut total = 0usize;
    let mut all_keys: Vec<&str> = obj::keys(sec, "data");
    for k in obj::keys(sec, "stringData") {
        if !all_keys.contains(&k) {
            all_keys.push(k);
        }
    }
    for k in &all_keys {
        errs.extend(key_errors(k, &data_path.key(k)));
        total += match sec.get("data").and_then(|d| d.get(*k)) {
            Some(v) => decoded_len(v),
            None => obj::s(&sec["stringData"], k).len(),
        };
    }
    if total > MAX_SECRET_SIZE {
        errs.push(too_long(&data_path, MAX_SECRET_SIZE));
    }
    let has = |k: &str| all_keys.contains(&k);
    let content = |k: &str| -> Option<Vec<u8>> {
        decoded(sec.get("data").and_then(|d| d.get(k)))
            .or_else(|| obj::opt_s(&sec["stringData"], k).map(|s| s.as_bytes().to_vec()))
    };
    match ty {
        "kubernetes.io/service-account-token" => {
            let name = obj::at(
                sec,
                &[
                    "metadata",
                    "annotations",
                    "kubernetes.io/service-account.name",
                ],
            )
            .and_then(Value::as_str)
            .unwrap_or("");
            if name.is_empty() {
                errs.push(required(
                    &Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if ty == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match content(key) {
                None if !has(key) => errs.push(required(&data_path.key(key), "")),
                bytes => {
                    let parsed: Result<serde_json::Map<String, Value>, _> =
                        serde_json::from_slice(&bytes.unwrap_or_default());
                    if let Err(e) = parsed {
                        errs.push(invalid_str(
                            &data_path.key(key),
                            "<secret contents redacted>",
                            &e.to_string(),
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required(&data_path.key("username"), ""));
            errs.push(required(&data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if content("ssh-privatekey").is_none_or(|b| b.is_empty()) => {
            errs.push(required(&data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    errs.push(required(&data_path.key(k), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(errs: &ErrorList) -> Vec<String> {
        errs.iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect()
    }

    #[test]
    fn config_map_keys_and_size() {
        let cm = json!({"data": {"bad key": "x", "ok": "y"}, "binaryData": {"ok": "eA=="}});
        let out = render(&config_map(&cm, None));
        assert!(out[0].starts_with("data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters"));
        assert_eq!(
            out[1],
            "data[ok]: Invalid value: \"ok\": duplicate of key present in binaryData"
        );
        let big = json!({"data": {"a": "x".repeat(MAX_SECRET_SIZE + 1)}});
        assert_eq!(
            render(&config_map(&big, None)),
            vec!["[]: Too long: may not be more than 1048576 bytes"]
        );
    }

    #[test]
    fn immutable_config_map_refuses_changes() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let new = json!({"immutable": true, "data": {"a": "2"}});
        assert_eq!(
            render(&config_map(&new, Some(&old))),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
    }

    #[test]
    fn secret_rules() {
        let s = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(
            render(&secret(&s, None)),
            vec!["data[tls.key]: Required value"]
        );
        let old = json!({"type": "Opaque"});
        let new = json!({"type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}});
        assert_eq!(
            render(&secret(&new, Some(&old))),
            vec!["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"]
        );
        let docker = json!({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{}"}});
        assert!(secret(&docker, None).is_empty());
    }
}
