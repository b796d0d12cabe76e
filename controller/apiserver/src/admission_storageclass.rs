//! Upstream's `DefaultStorageClass` admission plugin: a PersistentVolumeClaim created without
//! a class (no `spec.storageClassName` and no beta `volume.beta.kubernetes.io/storage-class`
//! annotation) gets the cluster's default StorageClass, the one annotated
//! `storageclass.kubernetes.io/is-default-class: "true"`. With several defaults the newest
//! wins (ties by name), as upstream's `GetDefaultClass`; with none the claim is left alone.
//! An explicit empty class (`storageClassName: ""`) means "no class" and is kept.

use std::sync::Arc;

use serde_json::Value;

use bramble_api::{ResourceInfo, Status};
use bramble_store::ListOptions;

use crate::objects::{decode_stored, meta_str};
use crate::state::ApiState;

/// The annotation marking a default class (GA and beta spellings).
const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_IS_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// The claim annotation that named a class before `spec.storageClassName` existed.
const BETA_CLAIM_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// Where StorageClasses are stored.
const STORAGE_CLASSES: &str = "storage.k8s.io/storageclasses/";

/// upstream `IsDefaultAnnotation`.
fn is_default(class: &Value) -> bool {
    let ann = &class["metadata"]["annotations"];
    [IS_DEFAULT_CLASS, BETA_IS_DEFAULT_CLASS]
        .iter()
        .any(|k| ann[*k].as_str() == Some("true"))
}

/// upstream `PersistentVolumeClaimHasClass`: a class set in the spec (even `""`) or in the
/// beta annotation.
fn has_class(claim: &Value) -> bool {
    !claim["spec"]["storageClassName"].is_null()
        || claim["metadata"]["annotations"]
            .get(BETA_CLAIM_CLASS)
            .is_some()
}

/// upstream `GetDefaultClass`: of the default classes, the newest by creation time, then
/// the first by name.
fn default_class(classes: &[Value]) -> Option<&str> {
    let created = |c: &Value| {
        meta_str(c, "creationTimestamp")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MAX))
            .unwrap_or(i64::MIN)
    };
    classes
        .iter()
        .filter(|c| is_default(c))
        .filter_map(|c| Some((created(c), meta_str(c, "name")?)))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, name)| name)
}

/// Sets `spec.storageClassName` of `claim` to `classes`' default when it names no class.
/// Returns whether it did.
fn set_default(claim: &mut Value, classes: &[Value]) -> bool {
    if has_class(claim) {
        return false;
    }
    let Some(name) = default_class(classes) else {
        return false;
    };
    match claim["spec"].as_object_mut() {
        Some(spec) => {
            spec.insert("storageClassName".into(), Value::String(name.to_string()));
            true
        }
        None => false,
    }
}

/// The plugin on a create: PersistentVolumeClaims only.
pub fn admit_create(
    state: &Arc<ApiState>,
    info: &ResourceInfo,
    obj: &mut Value,
) -> Result<(), Status> {
    if !(info.group.is_empty() && info.resource == "persistentvolumeclaims") || has_class(obj) {
        return Ok(());
    }
    let listed = state
        .store
        .list(STORAGE_CLASSES, ListOptions::default())
        .map_err(|e| Status::internal(e.to_string()))?;
    let classes = listed
        .items
        .iter()
        .map(|kv| decode_stored(&kv.value))
        .collect::<Result<Vec<_>, _>>()?;
    if set_default(obj, &classes) {
        tracing::debug!(
            claim = meta_str(obj, "name").unwrap_or(""),
            class = obj["spec"]["storageClassName"].as_str().unwrap_or(""),
            "DefaultStorageClass: claim given the default class"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(name: &str, default: Option<&str>, created: &str) -> Value {
        let mut c = json!({"metadata": {"name": name, "creationTimestamp": created},
                           "provisioner": "x"});
        if let Some(d) = default {
            c["metadata"]["annotations"] = json!({IS_DEFAULT_CLASS: d});
        }
        c
    }

    fn claim(spec: Value) -> Value {
        json!({"metadata": {"name": "data"}, "spec": spec})
    }

    #[test]
    fn a_claim_without_class_gets_the_default() {
        let classes = [
            class("fast", None, "2026-01-01T00:00:00Z"),
            class("local-path", Some("true"), "2026-01-01T00:00:00Z"),
            class("off", Some("false"), "2026-01-02T00:00:00Z"),
        ];
        let mut c = claim(json!({"accessModes": ["ReadWriteOnce"]}));
        assert!(set_default(&mut c, &classes));
        assert_eq!(c["spec"]["storageClassName"], "local-path");
    }

    #[test]
    fn explicit_classes_are_kept() {
        let classes = [class("local-path", Some("true"), "2026-01-01T00:00:00Z")];
        let mut c = claim(json!({"storageClassName": "fast"}));
        assert!(!set_default(&mut c, &classes));
        assert_eq!(c["spec"]["storageClassName"], "fast");
        // "" asks for no class at all.
        let mut c = claim(json!({"storageClassName": ""}));
        assert!(!set_default(&mut c, &classes));
        assert_eq!(c["spec"]["storageClassName"], "");
        let mut c = json!({"metadata": {"name": "d",
            "annotations": {BETA_CLAIM_CLASS: "slow"}}, "spec": {}});
        assert!(!set_default(&mut c, &classes));
        assert!(c["spec"].get("storageClassName").is_none());
    }

    #[test]
    fn no_default_leaves_the_claim_alone() {
        let classes = [class("fast", None, "2026-01-01T00:00:00Z")];
        let mut c = claim(json!({}));
        assert!(!set_default(&mut c, &classes));
        assert!(c["spec"].get("storageClassName").is_none());
    }

    #[test]
    fn newest_default_wins_then_name() {
        let mut beta = class("beta", None, "2026-03-01T00:00:00Z");
        beta["metadata"]["annotations"] = json!({BETA_IS_DEFAULT_CLASS: "true"});
        let classes = [
            class("old", Some("true"), "2026-01-01T00:00:00Z"),
            beta,
            class("b", Some("true"), "2026-02-01T00:00:00Z"),
        ];
        assert_eq!(default_class(&classes), Some("beta"));
        let tied = [
            class("zeta", Some("true"), "2026-01-01T00:00:00Z"),
            class("alpha", Some("true"), "2026-01-01T00:00:00Z"),
        ];
        assert_eq!(default_class(&tied), Some("alpha"));
    }
}
