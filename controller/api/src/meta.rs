//! Small accessors on object JSON (`metadata.name`, labels, ...) so callers do not repeat
//! JSON-pointer code. Getters never panic: a missing or mistyped field reads as absent.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// `metadata` as an object, if present.
pub fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

/// `metadata`, created as `{}` when missing or not an object. `obj` must be an object
/// (anything else is replaced by `{}` first).
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("object ensured above");
    let entry = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("object ensured above")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    metadata(obj)?.get(field)?.as_str()
}

/// Sets (or with `None` removes) one `metadata` field.
pub fn set_meta_field(obj: &mut Value, field: &str, value: Option<Value>) {
    let meta = metadata_mut(obj);
    match value {
        Some(v) => {
            meta.insert(field.to_string(), v);
        }
        None => {
            meta.remove(field);
        }
    }
}

/// `metadata.name`.
pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name")
}

/// `metadata.generateName`.
pub fn generate_name(obj: &Value) -> Option<&str> {
    meta_str(obj, "generateName")
}

/// `metadata.namespace`.
pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace")
}

/// `metadata.uid`.
pub fn uid(obj: &Value) -> Option<&str> {
    meta_str(obj, "uid")
}

/// `metadata.resourceVersion`.
pub fn resource_version(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion")
}

/// `metadata.creationTimestamp`.
pub fn creation_timestamp(obj: &Value) -> Option<&str> {
    meta_str(obj, "creationTimestamp")
}

/// `metadata.deletionTimestamp`.
pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    meta_str(obj, "deletionTimestamp")
}

/// `metadata.generation` (absent or not an integer reads as `None`).
pub fn generation(obj: &Value) -> Option<i64> {
    metadata(obj)?.get("generation")?.as_i64()
}

/// `metadata.labels` as a map (non-string values are skipped).
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(metadata(obj).and_then(|m| m.get("labels")))
}

/// `metadata.annotations` as a map (non-string values are skipped).
pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(metadata(obj).and_then(|m| m.get("annotations")))
}

/// One label value.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    metadata(obj)?.get("labels")?.get(key)?.as_str()
}

/// One annotation value.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    metadata(obj)?.get("annotations")?.get(key)?.as_str()
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.ownerReferences` (empty when absent).
pub fn owner_references(obj: &Value) -> &[Value] {
    metadata(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    owner_references(obj)
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// Whether `obj`'s controller reference points at the owner with this uid.
pub fn is_controlled_by(obj: &Value, owner_uid: &str) -> bool {
    controller_ref(obj)
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        == Some(owner_uid)
}

/// A controller owner reference to `owner` (as upstream's `NewControllerRef`:
/// `controller` and `blockOwnerDeletion` true).
pub fn new_controller_ref(owner: &Value) -> Value {
    serde_json::json!({
        "apiVersion": api_version(owner).unwrap_or_default(),
        "kind": kind(owner).unwrap_or_default(),
        "name": name(owner).unwrap_or_default(),
        "uid": uid(owner).unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Appends an owner reference (replacing one with the same uid).
pub fn add_owner_reference(obj: &mut Value, reference: Value) {
    let meta = metadata_mut(obj);
    let refs = meta
        .entry("ownerReferences")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !refs.is_array() {
        *refs = Value::Array(Vec::new());
    }
    let list = refs.as_array_mut().expect("array ensured above");
    list.retain(|r| r.get("uid") != reference.get("uid"));
    list.push(reference);
}

/// Sets `metadata.name`.
pub fn set_name(obj: &mut Value, name: &str) {
    set_meta_field(obj, "name", Some(Value::String(name.to_string())));
}

/// Sets `metadata.namespace`.
pub fn set_namespace(obj: &mut Value, namespace: &str) {
    set_meta_field(obj, "namespace", Some(Value::String(namespace.to_string())));
}

/// Sets `metadata.uid`.
pub fn set_uid(obj: &mut Value, uid: &str) {
    set_meta_field(obj, "uid", Some(Value::String(uid.to_string())));
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, rv: &str) {
    set_meta_field(obj, "resourceVersion", Some(Value::String(rv.to_string())));
}

/// Sets `metadata.creationTimestamp`.
pub fn set_creation_timestamp(obj: &mut Value, ts: &str) {
    set_meta_field(
        obj,
        "creationTimestamp",
        Some(Value::String(ts.to_string())),
    );
}

/// Sets or removes `metadata.deletionTimestamp`.
pub fn set_deletion_timestamp(obj: &mut Value, ts: Option<&str>) {
    set_meta_field(
        obj,
        "deletionTimestamp",
        ts.map(|t| Value::String(t.to_string())),
    );
}

/// Sets or removes `metadata.generation`.
pub fn set_generation(obj: &mut Value, generation: Option<i64>) {
    set_meta_field(obj, "generation", generation.map(Value::from));
}

/// Sets one label (creating `metadata.labels`).
pub fn set_label(obj: &mut Value, key: &str, value: &str) {
    set_in_map(obj, "labels", key, value);
}

/// Sets one annotation (creating `metadata.annotations`).
pub fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    set_in_map(obj, "annotations", key, value);
}

/// Removes one annotation; returns whether it was there.
pub fn remove_annotation(obj: &mut Value, key: &str) -> bool {
    metadata_mut(obj)
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
        .map(|m| m.remove(key).is_some())
        .unwrap_or(false)
}

/// Replaces `metadata.finalizers` (an empty list removes the field).
pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    let v = if finalizers.is_empty() {
        None
    } else {
        Some(Value::from(finalizers.to_vec()))
    };
    set_meta_field(obj, "finalizers", v);
}

/// `apiVersion` of the object.
pub fn api_version(obj: &Value) -> Option<&str> {
    obj.get("apiVersion")?.as_str()
}

/// `kind` of the object.
pub fn kind(obj: &Value) -> Option<&str> {
    obj.get("kind")?.as_str()
}

/// Reads a dotted path (`spec.nodeName`, `status.phase`) through objects only.
pub fn get_path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, part| v.get(part))
}

fn set_in_map(obj: &mut Value, field: &str, key: &str, value: &str) {
    let meta = metadata_mut(obj);
    let entry = meta
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry
        .as_object_mut()
        .expect("object ensured above")
        .insert(key.to_string(), Value::String(value.to_string()));
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_metadata() {
        let mut pod = json!({"kind": "Pod", "metadata": {"name": "a", "labels": {"app": "web"}}});
        assert_eq!(name(&pod), Some("a"));
        assert_eq!(namespace(&pod), None);
        assert_eq!(label(&pod, "app"), Some("web"));
        set_namespace(&mut pod, "default");
        set_label(&mut pod, "tier", "fe");
        set_annotation(&mut pod, "a/b", "c");
        set_generation(&mut pod, Some(3));
        assert_eq!(namespace(&pod), Some("default"));
        assert_eq!(labels(&pod).len(), 2);
        assert_eq!(annotation(&pod, "a/b"), Some("c"));
        assert_eq!(generation(&pod), Some(3));
        assert!(remove_annotation(&mut pod, "a/b"));
        assert!(!remove_annotation(&mut pod, "a/b"));
        set_generation(&mut pod, None);
        assert!(pod["metadata"].get("generation").is_none());
    }

    #[test]
    fn creates_metadata_when_missing() {
        let mut obj = json!({"kind": "ConfigMap"});
        set_finalizers(&mut obj, &["x".to_string()]);
        assert_eq!(finalizers(&obj), vec!["x".to_string()]);
        set_finalizers(&mut obj, &[]);
        assert!(obj["metadata"].get("finalizers").is_none());
        let mut not_object = json!(5);
        set_name(&mut not_object, "n");
        assert_eq!(name(&not_object), Some("n"));
    }

    #[test]
    fn builds_controller_refs() {
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rs", "uid": "u1"}});
        let mut pod = json!({"metadata": {"name": "p"}});
        add_owner_reference(&mut pod, new_controller_ref(&rs));
        add_owner_reference(&mut pod, new_controller_ref(&rs));
        assert_eq!(owner_references(&pod).len(), 1);
        assert_eq!(
            owner_references(&pod)[0],
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1",
                "controller": true, "blockOwnerDeletion": true})
        );
        assert!(is_controlled_by(&pod, "u1"));
        assert!(!is_controlled_by(&pod, "u2"));
    }

    #[test]
    fn finds_controller_ref_and_paths() {
        let obj = json!({
            "metadata": {"ownerReferences": [
                {"kind": "A", "name": "a"},
                {"kind": "ReplicaSet", "name": "rs", "controller": true}
            ]},
            "spec": {"nodeName": "n1"}
        });
        assert_eq!(owner_references(&obj).len(), 2);
        assert_eq!(controller_ref(&obj).unwrap()["name"], "rs");
        assert_eq!(get_path(&obj, "spec.nodeName"), Some(&json!("n1")));
        assert_eq!(get_path(&obj, "spec.missing"), None);
    }
}
