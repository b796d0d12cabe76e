//! `Update` entries of `metadata.managedFields` for non-apply writes (create, PUT, the JSON,
//! merge and strategic patches, and subresource writes): the writer's manager takes the
//! fields whose values it changed, which leave every other manager's set.

use serde_json::Value;

use super::entries::{read_entries, write_entries, ManagedEntry};
use super::paths;
use crate::managed_fields::{FieldSet, PathElement};
use crate::patch::strategic::root_for;
use crate::resources::ResourceInfo;

/// The manager of a non-apply write, as upstream names it: the `fieldManager` parameter,
/// else the User-Agent up to its first `/` (`kubectl/v1.33.0 (linux/amd64) ...` is
/// `kubectl`), else `unknown`.
pub fn manager_of(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    match user_agent
        .and_then(|ua| ua.split('/').next())
        .map(str::trim)
    {
        Some(prefix) if !prefix.is_empty() => prefix.chars().take(128).collect(),
        _ => "unknown".into(),
    }
}

fn sent_entries(obj: &Value) -> bool {
    obj.pointer("/metadata/managedFields")
        .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
}

/// Records the creation of `obj` (defaulted) by `manager`: one `Update` entry with every
/// field it sets, except those the resource's strategy resets (`status` when it has a status
/// subresource). Entries the client sent are kept as they are, as upstream keeps them.
pub fn record_create(info: &ResourceInfo, obj: &mut Value, manager: &str, now: &str) {
    if sent_entries(obj) {
        return;
    }
    let fields = owned_by_writer(
        info,
        None,
        FieldSet::of_object(&info.group, &info.kind, obj),
    );
    let mut entries = Vec::new();
    if !fields.is_empty() {
        entries.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: info.api_version(),
            time: now.to_string(),
            fields,
            subresource: None,
        });
    }
    write_entries(obj, &entries);
}

/// Records an update of `old` into `new` by `manager`, through `subresource` when set
/// (`status`, `scale`, ...: its entry carries the subresource's name). A write of the main
/// resource keeps the entries it sent (upstream lets clients rewrite them), otherwise the
/// stored ones are carried; a subresource write always carries the stored ones.
pub fn record_update(
    info: &ResourceInfo,
    old: &Value,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let mut entries = if subresource.is_none() && sent_entries(new) {
        read_entries(new)
    } else {
        read_entries(old)
    };
    let new_set = FieldSet::of_object(&info.group, &info.kind, new);
    let root = root_for(&info.group, &info.kind);
    let mut changed = FieldSet::default();
    for p in paths::leaves(&new_set) {
        if paths::lookup(root, new, &p) != paths::lookup(root, old, &p) {
            changed = changed.union(&paths::single(&p));
        }
    }
    let changed = owned_by_writer(info, subresource, changed);
    // fields that are gone are nobody's any more
    let old_set = FieldSet::of_object(&info.group, &info.kind, old);
    let gone = old_set.difference(&new_set);
    let api_version = info.api_version();
    for e in entries.iter_mut() {
        e.fields = e.fields.difference(&changed).difference(&gone);
    }
    if !changed.is_empty() {
        let sub = subresource.map(str::to_string);
        match entries.iter_mut().find(|e| {
            e.manager == manager
                && e.operation == "Update"
                && e.api_version == api_version
                && e.subresource == sub
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
                subresource: sub,
            }),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    write_entries(new, &entries);
}

/// `fields` without those the strategy of the written (sub)resource resets, as upstream's
/// `GetResetFields`: the main resource does not own `status` when a status subresource
/// serves it; the status subresource owns only `status`.
fn owned_by_writer(
    info: &ResourceInfo,
    subresource: Option<&str>,
    mut fields: FieldSet,
) -> FieldSet {
    let status = PathElement::Field("status".into());
    match subresource {
        None if info.has_subresource("status") => {
            fields.children.remove(&status);
            fields
        }
        Some("status") => {
            let mut only = FieldSet::default();
            if let Some(s) = fields.children.remove(&status) {
                only.children.insert(status, s);
            }
            only
        }
        _ => fields,
    }
}
