//! `Update` entries of `metadata.managedFields` for non-apply writes (PUT and the JSON,
//! merge and strategic patches): the writer's manager takes the fields whose values it
//! changed, which leave every other manager's set.

use serde_json::Value;

use super::entries::{read_entries, write_entries, ManagedEntry};
use super::paths;
use crate::managed_fields::FieldSet;
use crate::resources::ResourceInfo;

/// Records an update of `old` into `new` by `manager` (entries carried from `old` when the
/// writer sent none).
pub fn record_update(info: &ResourceInfo, old: &Value, new: &mut Value, manager: &str, now: &str) {
    let sent = new
        .pointer("/metadata/managedFields")
        .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()));
    let mut entries = if sent {
        read_entries(new)
    } else {
        read_entries(old)
    };
    let new_set = FieldSet::of_object(&info.group, &info.kind, new);
    let mut changed = FieldSet::default();
    for p in paths::leaves(&new_set) {
        if paths::lookup(new, &p) != paths::lookup(old, &p) {
            changed = changed.union(&paths::single(&p));
        }
    }
    // fields that are gone are nobody's any more
    let old_set = FieldSet::of_object(&info.group, &info.kind, old);
    let gone = old_set.difference(&new_set);
    let api_version = info.api_version();
    for e in entries.iter_mut() {
        e.fields = e.fields.difference(&changed).difference(&gone);
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| {
            e.manager == manager && e.operation == "Update" && e.api_version == api_version
        }) {
            Some(e) => {
                e.fields = e.fields.union(&changed);
                e.time = now.to_string();
            }
            None => entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version,
                time: now.to_string(),
                fields: changed,
                subresource: None,
            }),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    write_entries(new, &entries);
}
