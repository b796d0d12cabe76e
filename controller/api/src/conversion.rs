//! Resources served in one form but stored as another's objects, and the conversion between
//! the two forms. Upstream keeps one internal type per kind and converts every served version
//! to and from it; Bramble stores the JSON of one served version (the storage form) and
//! converts the others at the store boundary.
//!
//! Today:
//! - events.k8s.io/v1 Events are stored as core/v1 Events, so both APIs see the same
//!   objects (`kubectl describe` shows what a kube-rs `Recorder` reports, and `kubectl events`
//!   shows what the kubelet reports);
//! - autoscaling/v1 HorizontalPodAutoscalers are stored as autoscaling/v2 ones ([`hpa`]),
//!   the version upstream stores too.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::resources::ResourceInfo;

#[path = "conversion_hpa.rs"]
pub mod hpa;

/// Where objects of a served resource live and how to convert them.
#[derive(Debug, Clone, Copy)]
pub struct Storage {
    /// Store group of the storage form (`""` for core).
    pub group: &'static str,
    /// Store resource of the storage form.
    pub resource: &'static str,
    /// Served form -> storage form (apiVersion included).
    pub to_storage: fn(Value) -> Value,
    /// Storage form -> served form (apiVersion included).
    pub from_storage: fn(Value) -> Value,
    /// Whether the served form has no rules of its own: its defaulting, strategies,
    /// validation and printing are the storage form's, run on the converted object (the
    /// storage form is another version of the same kind, shaped as upstream's internal
    /// type). events.k8s.io Events keep their own.
    pub rules_in_storage_form: bool,
}

/// The storage of `group`/`version`/`resource` when it is another form's; `None` when the
/// resource is stored as served.
pub fn storage_of(group: &str, version: &str, resource: &str) -> Option<Storage> {
    match (group, version, resource) {
        ("events.k8s.io", _, "events") => Some(Storage {
            group: "",
            resource: "events",
            to_storage: event_v1_to_core,
            from_storage: core_event_to_v1,
            rules_in_storage_form: false,
        }),
        ("autoscaling", "v1", "horizontalpodautoscalers") => Some(Storage {
            group: "autoscaling",
            resource: "horizontalpodautoscalers",
            to_storage: hpa::v1_to_v2,
            from_storage: hpa::v2_to_v1,
            rules_in_storage_form: true,
        }),
        _ => None,
    }
}

/// [`storage_of`] for a registry entry.
pub fn storage_for(info: &ResourceInfo) -> Option<Storage> {
    storage_of(&info.group, &info.version, &info.resource)
}

fn rules_storage(info: &ResourceInfo) -> Option<Storage> {
    storage_for(info).filter(|s| s.rules_in_storage_form)
}

/// `obj` (of `info`'s served form) in the form `info`'s defaulting, strategies, validation
/// and printing are written for: converted to the storage form when the resource has no
/// rules of its own, else `obj` itself.
pub fn rules_form<'a>(info: &ResourceInfo, obj: &'a Value) -> Cow<'a, Value> {
    match rules_storage(info) {
        Some(s) => Cow::Owned((s.to_storage)(obj.clone())),
        None => Cow::Borrowed(obj),
    }
}

/// Runs `f` on `obj` in its [`rules_form`] and converts the result back to the served form.
pub fn in_rules_form<R>(
    info: &ResourceInfo,
    obj: &mut Value,
    f: impl FnOnce(&mut Value) -> R,
) -> R {
    let Some(s) = rules_storage(info) else {
        return f(obj);
    };
    let mut converted = (s.to_storage)(std::mem::take(obj));
    let out = f(&mut converted);
    *obj = (s.from_storage)(converted);
    out
}

/// events.k8s.io/v1 field -> core/v1 field (upstream `pkg/apis/events/v1` conversion; the
/// fields not listed keep their names: metadata, eventTime, series, action, reason, related,
/// reportingInstance, type).
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(obj: Value, api_version: &str, to_core: bool) -> Value {
    let Value::Object(map) = obj else {
        return obj;
    };
    let mut out = Map::with_capacity(map.len());
    for (k, v) in map {
        let renamed = EVENT_RENAMES.iter().find_map(|(v1, core)| {
            let (from, to) = if to_core { (v1, core) } else { (core, v1) };
            (k == *from).then_some(*to)
        });
        // a field of the other form that has no place in this one is dropped, as the typed
        // conversion does
        let foreign = EVENT_RENAMES.iter().any(|(v1, core)| {
            let other = if to_core { core } else { v1 };
            k == *other
        });
        match renamed {
            Some(to) => {
                out.insert(to.to_string(), v);
            }
            None if foreign => {}
            None => {
                out.insert(k, v);
            }
        }
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// An events.k8s.io/v1 Event as a core/v1 Event.
pub fn event_v1_to_core(obj: Value) -> Value {
    rename(obj, "v1", true)
}

/// A core/v1 Event as an events.k8s.io/v1 Event.
pub fn core_event_to_v1(obj: Value) -> Value {
    rename(obj, "events.k8s.io/v1", false)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_round_trip_between_the_two_apis() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": "2026-11-23T10:00:00.000000Z",
            "reportingController": "example.com/operator", "reportingInstance": "op-1",
            "action": "Reconciling", "reason": "Synced", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
            "note": "synced the pod",
            "series": {"count": 2, "lastObservedTime": "2026-11-23T10:01:00.000000Z"},
            "deprecatedCount": 3,
            "deprecatedSource": {"component": "kubelet", "host": "n1"},
        });
        let core = event_v1_to_core(v1.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "synced the pod");
        assert_eq!(core["reportingComponent"], "example.com/operator");
        assert_eq!(core["reportingInstance"], "op-1");
        assert_eq!(core["count"], 3);
        assert_eq!(core["source"]["host"], "n1");
        assert_eq!(core["series"]["count"], 2);
        assert!(core.get("regarding").is_none() && core.get("note").is_none());
        assert_eq!(core_event_to_v1(core), v1);
    }

    #[test]
    fn core_only_fields_are_renamed_and_stray_fields_dropped() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "a"},
            "message": "m", "firstTimestamp": "2026-11-23T10:00:00Z",
            "lastTimestamp": "2026-11-23T10:00:05Z", "note": "stray"});
        let v1 = core_event_to_v1(core);
        assert_eq!(v1["note"], "m");
        assert_eq!(v1["deprecatedFirstTimestamp"], "2026-11-23T10:00:00Z");
        assert_eq!(v1["deprecatedLastTimestamp"], "2026-11-23T10:00:05Z");
        assert!(v1.get("message").is_none());
    }

    #[test]
    fn only_events_k8s_io_events_and_v1_hpas_are_stored_elsewhere() {
        let s = storage_of("events.k8s.io", "v1", "events").unwrap();
        assert_eq!((s.group, s.resource), ("", "events"));
        assert!(!s.rules_in_storage_form);
        assert!(storage_of("", "v1", "events").is_none());
        assert!(storage_of("apps", "v1", "deployments").is_none());
        let hpa = storage_of("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        assert_eq!(
            (hpa.group, hpa.resource),
            ("autoscaling", "horizontalpodautoscalers")
        );
        assert!(hpa.rules_in_storage_form);
        assert!(storage_of("autoscaling", "v2", "horizontalpodautoscalers").is_none());
    }
}

#[cfg(test)]
#[path = "conversion_rules_tests.rs"]
mod rules_tests;
