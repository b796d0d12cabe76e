//! `metadata.managedFields` entries (`ManagedFieldsEntry`) read from and written to objects.

use serde_json::{json, Value};

use crate::managed_fields::FieldSet;

/// One `ManagedFieldsEntry`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
    pub subresource: Option<String>,
}

/// The entries of `obj` (entries that are not `FieldsV1` are skipped).
pub fn read_entries(obj: &Value) -> Vec<ManagedEntry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    list.iter()
        .filter(|e| e.get("fieldsType").and_then(Value::as_str) == Some("FieldsV1"))
        .map(|e| ManagedEntry {
            manager: s(e, "manager"),
            operation: s(e, "operation"),
            api_version: s(e, "apiVersion"),
            time: s(e, "time"),
            fields: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
            subresource: e
                .get("subresource")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .collect()
}

/// Writes `entries` as `metadata.managedFields` (removed when empty), in upstream's order
/// (`sortEncodedManagedFields`): by operation (`Apply` first), time, manager, apiVersion,
/// subresource.
pub fn write_entries(obj: &mut Value, entries: &[ManagedEntry]) {
    let mut sorted: Vec<&ManagedEntry> = entries.iter().collect();
    sorted.sort_by(|p, q| {
        (
            &p.operation,
            &p.time,
            &p.manager,
            &p.api_version,
            &p.subresource,
        )
            .cmp(&(
                &q.operation,
                &q.time,
                &q.manager,
                &q.api_version,
                &q.subresource,
            ))
    });
    let list: Vec<Value> = sorted
        .into_iter()
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.fields.to_fields_v1(),
            });
            if let Some(sub) = &e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    let meta = crate::meta::metadata_mut(obj);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}
