//! System fields of object metadata: what the server sets on create, update and delete.

use chrono::{SecondsFormat, Utc};
use rand::Rng;
use serde_json::{json, Value};

use bramble_api::Status;

pub use bramble_api::meta::{finalizers, metadata_mut as meta_mut};

/// A string field of `metadata`; an empty string counts as unset, as upstream treats it.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    bramble_api::meta::meta_str(obj, field).filter(|s| !s.is_empty())
}

/// A stored object's JSON; the store only holds what the server wrote, so a failure is a 500.
pub fn decode_stored(raw: &[u8]) -> Result<Value, Status> {
    serde_json::from_slice(raw)
        .map_err(|e| Status::internal(format!("decoding stored object: {e}")))
}

/// The current time in upstream's `metav1.Time` form (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Upstream's `generateName` suffix: 5 characters from an alphabet without vowels and
/// look-alikes.
pub fn generate_name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Fills `metadata.name` from `generateName` when the name is empty.
pub fn apply_generate_name(obj: &mut Value) {
    if meta_str(obj, "name").is_some() {
        return;
    }
    if let Some(prefix) = meta_str(obj, "generateName").map(str::to_string) {
        // upstream trims the prefix so the name stays within 63 characters
        let keep = prefix.len().min(63 - 5);
        let name = format!("{}{}", &prefix[..keep], generate_name_suffix());
        meta_mut(obj).insert("name".into(), json!(name));
    }
}

/// System fields of a new object: uid, creationTimestamp; clears what a client may not set.
pub fn stamp_create(obj: &mut Value) -> Result<(), Status> {
    let meta = meta_mut(obj);
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    Ok(())
}

/// Carries the system fields of `old` into an update, which clients may omit.
pub fn carry_system_fields(new: &mut Value, old: &Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let meta = meta_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match old_meta.get(field) {
            Some(v) => {
                // uid may be sent by the client; it must then match (validated later)
                if field != "uid" || !meta.contains_key("uid") {
                    meta.insert(field.into(), v.clone());
                }
            }
            None => {
                meta.remove(field);
            }
        }
    }
    meta.remove("selfLink");
}

/// Sets `metadata.namespace` from the request path; a different one in the body is refused.
pub fn set_namespace(obj: &mut Value, namespace: Option<&str>) -> Result<(), Status> {
    match namespace {
        Some(ns) => {
            if let Some(body_ns) = meta_str(obj, "namespace") {
                if body_ns != ns {
                    return Err(Status::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
            meta_mut(obj).insert("namespace".into(), json!(ns));
        }
        None => {
            meta_mut(obj).remove("namespace");
        }
    }
    Ok(())
}

pub fn is_terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_name_fills_only_empty_names() {
        let mut o = json!({"metadata": {"generateName": "web-"}});
        apply_generate_name(&mut o);
        let name = meta_str(&o, "name").unwrap();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        let mut o = json!({"metadata": {"name": "x", "generateName": "web-"}});
        apply_generate_name(&mut o);
        assert_eq!(meta_str(&o, "name"), Some("x"));
    }

    #[test]
    fn namespace_mismatch_is_refused() {
        let mut o = json!({"metadata": {"namespace": "a"}});
        assert!(set_namespace(&mut o, Some("b")).is_err());
        assert!(set_namespace(&mut o, Some("a")).is_ok());
    }
}
