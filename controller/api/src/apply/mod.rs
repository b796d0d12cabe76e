//! Server-side apply (`PATCH` with `application/apply-patch+yaml`) on built-in kinds: merges
//! the applied configuration into the live object, detects conflicts with other managers'
//! fields (409 listing them), takes ownership with `force`, removes fields the manager no
//! longer applies (when nobody else owns them), and records the manager's `Apply` entry in
//! `metadata.managedFields` ([`crate::managed_fields`]).

// Errors are the `Status` the API server sends as is.
#![allow(clippy::result_large_err)]

mod entries;
mod merge;
mod paths;
mod update;

use serde_json::{json, Value};

use crate::managed_fields::{check_list_keys, FieldSet};
use crate::patch::strategic::{root_for, FieldMeta};
use crate::resources::ResourceInfo;
use crate::status::{Cause, Reason, Status};

pub use entries::{read_entries, write_entries, ManagedEntry};
pub use update::{manager_of, record_create, record_update};

/// Applies `applied` for `manager` to `live` (`None`: the object does not exist yet and is
/// created from the configuration). `now` is the RFC 3339 time recorded in the entry.
pub fn apply(
    info: &ResourceInfo,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, Status> {
    if manager.is_empty() {
        return Err(Status::bad_request(
            "PATCH, application/apply-patch+yaml requests require fieldManager",
        ));
    }
    if let Err(e) = check_list_keys(&info.group, &info.kind, applied) {
        return Err(Status::internal(format!(
            "failed to create typed patch object ({}): {e}",
            object_gvknn(info, applied)
        )));
    }
    let base = match live {
        Some(l) => l.clone(),
        None => json!({}),
    };
    let root = root_for(&info.group, &info.kind);
    let mut entries = read_entries(&base);
    let new_set = FieldSet::of_object(&info.group, &info.kind, applied);
    let api_version = info.api_version();

    // conflicts: fields another manager owns that this configuration sets to another value
    let mut conflicts: Vec<(String, String, Vec<PathConflict>)> = Vec::new();
    for e in entries.iter() {
        if e.manager == manager && e.operation == "Apply" {
            continue;
        }
        let common = new_set.intersection(&e.fields);
        let differing: Vec<PathConflict> = paths::leaves(&common)
            .into_iter()
            .filter(|p| paths::lookup(root, applied, p) != paths::lookup(root, &base, p))
            .map(|p| PathConflict {
                dotted: paths::dotted(&p),
                path: p,
            })
            .collect();
        if !differing.is_empty() {
            conflicts.push((manager_label(e), e.api_version.clone(), differing));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_status(info, &base, &conflicts));
    }
    // force: the conflicting fields change hands
    for (mgr, _, paths_) in &conflicts {
        for e in entries.iter_mut().filter(|e| &manager_label(e) == mgr) {
            for p in paths_ {
                e.fields = e.fields.difference(&paths::single(&p.path));
            }
        }
    }

    let mut merged = merge::merge(
        Some(&base),
        &strip_meta(applied),
        FieldMeta::default(),
        root,
    );
    // fields this manager applied before and no longer applies, owned by nobody else
    let previous = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others = entries
        .iter()
        .filter(|e| !(e.manager == manager && e.operation == "Apply"))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.fields));
    let removed = previous.difference(&new_set).difference(&others);
    for p in paths::outermost(&removed) {
        paths::remove(root, &mut merged, &p);
    }

    entries.retain(|e| !(e.manager == manager && e.operation == "Apply"));
    entries.push(ManagedEntry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: api_version.clone(),
        time: now.to_string(),
        fields: new_set,
        subresource: None,
    });
    entries.retain(|e| !e.fields.is_empty());
    write_entries(&mut merged, &entries);
    if let Some(m) = merged.as_object_mut() {
        m.insert("apiVersion".into(), json!(api_version));
        m.insert("kind".into(), json!(info.kind));
    }
    // upstream (`IgnoreManagedFieldsTimestampsTransformer`): an apply that changes nothing
    // but the entries' times keeps the stored entries, so nothing is written
    if let Some(l) = live {
        if without_times(&merged) == without_times(l) {
            if let Some(stored) = l.pointer("/metadata/managedFields") {
                crate::meta::metadata_mut(&mut merged)
                    .insert("managedFields".into(), stored.clone());
            }
        }
    }
    Ok(merged)
}

/// `obj` without the `time` of its managedFields entries (and their order, which follows
/// the times).
fn without_times(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(list) = o
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for e in list.iter_mut().filter_map(Value::as_object_mut) {
            e.remove("time");
        }
        list.sort_by_key(Value::to_string);
    }
    o
}

/// Upstream's `objectGVKNN`: `ns/name; apps/v1, Kind=Deployment` (`/v1, Kind=Service` for
/// the core group), from the applied configuration.
fn object_gvknn(info: &ResourceInfo, applied: &Value) -> String {
    let meta = |k: &str| {
        applied
            .pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    format!(
        "{}/{}; {}/{}, Kind={}",
        meta("namespace"),
        meta("name"),
        info.group,
        info.version,
        info.kind
    )
}

/// How upstream names an entry's manager in conflicts: `"m"`, or
/// `"m" with subresource "scale"` for an entry written through a subresource.
fn manager_label(e: &ManagedEntry) -> String {
    match &e.subresource {
        Some(sub) => format!("{:?} with subresource {sub:?}", e.manager),
        None => format!("{:?}", e.manager),
    }
}

struct PathConflict {
    path: Vec<crate::managed_fields::PathElement>,
    dotted: String,
}

/// `metadata.managedFields` in an applied configuration is not applied.
fn strip_meta(applied: &Value) -> Value {
    let mut a = applied.clone();
    if let Some(m) = a.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    a
}

/// Upstream's 409: `Apply failed with 1 conflict: conflict with "m" using apps/v1: .spec.replicas`,
/// or for several, `Apply failed with N conflicts: conflicts with "m" using v:\n- .a\n- .b`.
fn conflict_status(
    info: &ResourceInfo,
    obj: &Value,
    conflicts: &[(String, String, Vec<PathConflict>)],
) -> Status {
    let total: usize = conflicts.iter().map(|(_, _, p)| p.len()).sum();
    let mut causes = Vec::new();
    let mut parts = Vec::new();
    for (mgr, version, paths_) in conflicts {
        for p in paths_ {
            causes.push(Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with {mgr} using {version}"),
                field: p.dotted.clone(),
            });
        }
        if paths_.len() == 1 {
            parts.push(format!(
                "conflict with {mgr} using {version}: {}",
                paths_[0].dotted
            ));
        } else {
            let list: Vec<String> = paths_.iter().map(|p| format!("- {}", p.dotted)).collect();
            parts.push(format!(
                "conflicts with {mgr} using {version}:\n{}",
                list.join("\n")
            ));
        }
    }
    let header = if total == 1 {
        "Apply failed with 1 conflict".to_string()
    } else {
        format!("Apply failed with {total} conflicts")
    };
    let mut s = Status::new(Reason::Conflict, format!("{header}: {}", parts.join("\n")));
    s.causes = causes;
    s.name = crate::meta::name(obj).map(str::to_string);
    s.group = Some(info.group.clone());
    s.kind = Some(info.resource.clone());
    s
}

#[cfg(test)]
mod list_map_tests;
#[cfg(test)]
mod tests;
