//! LimitRange admission (upstream's `LimitRanger` plugin) for pod and PersistentVolumeClaim
//! creates: container `default`/`defaultRequest` are filled in (and recorded in the
//! `kubernetes.io/limit-ranger` annotation), then `min`, `max` and `maxLimitRequestRatio`
//! of the Container, Pod and PersistentVolumeClaim items are enforced with upstream's
//! messages (403 Forbidden).

use std::sync::Arc;

use serde_json::{json, Value};

use bramble_api::quantity::Quantity;
use bramble_api::{ResourceInfo, Status};
use bramble_store::ListOptions;

use crate::admission_quota::{forbidden, pod_resources, ResourceList};
use crate::objects::meta_str;
use crate::state::ApiState;

/// The annotation naming what the plugin filled in.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// One `spec.limits[]` item, with upstream's LimitRange defaulting applied (a missing
/// container default is the max; a missing default request is the default, else the min).
#[derive(Debug, Default, Clone)]
struct Item {
    kind: String,
    min: ResourceList,
    max: ResourceList,
    default: ResourceList,
    default_request: ResourceList,
    ratio: ResourceList,
}

fn list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Quantity::from_json(v).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn items(limit_range: &Value) -> Vec<Item> {
    let Some(limits) = limit_range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    limits
        .iter()
        .map(|l| {
            let mut it = Item {
                kind: l["type"].as_str().unwrap_or_default().to_string(),
                min: list(l.get("min")),
                max: list(l.get("max")),
                default: list(l.get("default")),
                default_request: list(l.get("defaultRequest")),
                ratio: list(l.get("maxLimitRequestRatio")),
            };
            if it.kind == "Container" {
                for (k, v) in &it.max {
                    it.default.entry(k.clone()).or_insert_with(|| *v);
                }
                for (k, v) in &it.default {
                    it.default_request.entry(k.clone()).or_insert_with(|| *v);
                }
                for (k, v) in &it.min {
                    it.default_request.entry(k.clone()).or_insert_with(|| *v);
                }
            }
            it
        })
        .collect()
}

/// Fills missing container requests/limits from the Container items; returns the
/// annotation parts (`cpu, memory request for container web`).
fn apply_defaults(pod: &mut Value, items: &[Item]) -> Vec<String> {
    let mut notes = Vec::new();
    for (field, prefix) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(cs) = pod
            .pointer_mut(&format!("/spec/{field}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in cs {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            for item in items.iter().filter(|i| i.kind == "Container") {
                for (what, defaults, label) in [
                    ("requests", &item.default_request, "request"),
                    ("limits", &item.default, "limit"),
                ] {
                    let mut set = Vec::new();
                    for (k, v) in defaults {
                        let res = &mut c["resources"];
                        if res.is_null() {
                            *res = json!({});
                        }
                        let target = &mut res[what];
                        if target.is_null() {
                            *target = json!({});
                        }
                        if target.get(k).is_none() {
                            target[k] = json!(v.canonical());
                            set.push(k.clone());
                        }
                    }
                    if !set.is_empty() {
                        set.sort();
                        notes.push(format!("{} {label} for {prefix} {name}", set.join(", ")));
                    }
                }
            }
        }
    }
    notes
}

/// Checks one requests/limits pair against an item (`kind` as upstream prints it).
fn check(item: &Item, kind: &str, req: &ResourceList, lim: &ResourceList, errs: &mut Vec<String>) {
    for (r, min) in &item.min {
        let m = min.canonical();
        match (req.get(r), lim.get(r)) {
            (None, _) => errs.push(format!(
                "minimum {r} usage per {kind} is {m}.  No request is specified"
            )),
            (Some(q), _) if q < min => errs.push(format!(
                "minimum {r} usage per {kind} is {m}, but request is {}",
                q.canonical()
            )),
            (_, Some(l)) if l < min => errs.push(format!(
                "minimum {r} usage per {kind} is {m}, but limit is {}",
                l.canonical()
            )),
            _ => {}
        }
    }
    for (r, max) in &item.max {
        let m = max.canonical();
        match (req.get(r), lim.get(r)) {
            (_, None) => errs.push(format!(
                "maximum {r} usage per {kind} is {m}.  No limit is specified"
            )),
            (_, Some(l)) if l > max => errs.push(format!(
                "maximum {r} usage per {kind} is {m}, but limit is {}",
                l.canonical()
            )),
            (Some(q), _) if q > max => errs.push(format!(
                "maximum {r} usage per {kind} is {m}, but request is {}",
                q.canonical()
            )),
            _ => {}
        }
    }
    for (r, ratio) in &item.ratio {
        let m = ratio.canonical();
        let (Some(q), Some(l)) = (req.get(r), lim.get(r)) else {
            errs.push(format!(
                "{r} max limit to request ratio per {kind} is {m}, but no request or limit is specified"
            ));
            continue;
        };
        if q.milli_value() == 0 {
            errs.push(format!(
                "{r} max limit to request ratio per {kind} is {m}, but no request is specified or request is 0"
            ));
            continue;
        }
        let observed = l.milli_value() as f64 / q.milli_value() as f64;
        if observed > ratio.as_f64() {
            errs.push(format!(
                "{r} max limit to request ratio per {kind} is {m}, but provided ratio is {observed:.6}"
            ));
        }
    }
}

fn validate_pod(pod: &Value, items: &[Item]) -> Vec<String> {
    let mut errs = Vec::new();
    for item in items {
        match item.kind.as_str() {
            "Container" => {
                for field in ["containers", "initContainers"] {
                    for c in pod
                        .pointer(&format!("/spec/{field}"))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let req = list(c.pointer("/resources/requests"));
                        let lim = list(c.pointer("/resources/limits"));
                        check(item, "Container", &req, &lim, &mut errs);
                    }
                }
            }
            "Pod" => {
                let req = pod_resources(pod, "requests");
                let lim = pod_resources(pod, "limits");
                check(item, "Pod", &req, &lim, &mut errs);
            }
            _ => {}
        }
    }
    errs
}

fn validate_claim(pvc: &Value, items: &[Item]) -> Vec<String> {
    let mut errs = Vec::new();
    let req = list(pvc.pointer("/spec/resources/requests"));
    let lim = list(pvc.pointer("/spec/resources/limits"));
    for item in items.iter().filter(|i| i.kind == "PersistentVolumeClaim") {
        // claims have no limits to check a max against unless they set one
        let only_requests = Item {
            max: ResourceList::new(),
            ..item.clone()
        };
        check(
            &only_requests,
            "PersistentVolumeClaim",
            &req,
            &lim,
            &mut errs,
        );
        for (r, max) in &item.max {
            if let Some(q) = req.get(r).filter(|q| *q > max) {
                errs.push(format!(
                    "maximum {r} usage per PersistentVolumeClaim is {}, but request is {}",
                    max.canonical(),
                    q.canonical()
                ));
            }
        }
    }
    errs
}

/// Applies the LimitRanges of `namespace` to a create of `obj`: defaults, then limits.
pub fn admit_create(
    state: &Arc<ApiState>,
    info: &ResourceInfo,
    namespace: &str,
    obj: &mut Value,
) -> Result<(), Status> {
    let pod = info.group.is_empty() && info.resource == "pods";
    let claim = info.group.is_empty() && info.resource == "persistentvolumeclaims";
    if !pod && !claim {
        return Ok(());
    }
    let ranges = state
        .store
        .list(
            &format!("core/limitranges/{namespace}/"),
            ListOptions::default(),
        )
        .map_err(|e| Status::internal(e.to_string()))?;
    let mut all = Vec::new();
    for kv in ranges.items {
        let lr: Value =
            serde_json::from_slice(&kv.value).map_err(|e| Status::internal(e.to_string()))?;
        all.extend(items(&lr));
    }
    if all.is_empty() {
        return Ok(());
    }
    let mut errs = if pod {
        let notes = apply_defaults(obj, &all);
        if !notes.is_empty() {
            let meta = &mut obj["metadata"];
            if meta["annotations"].is_null() {
                meta["annotations"] = json!({});
            }
            meta["annotations"][ANNOTATION] =
                json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
        validate_pod(obj, &all)
    } else {
        validate_claim(obj, &all)
    };
    if errs.is_empty() {
        return Ok(());
    }
    let name = meta_str(obj, "name").unwrap_or("").to_string();
    let why = if errs.len() == 1 {
        errs.remove(0)
    } else {
        format!("[{}]", errs.join(", "))
    };
    Err(forbidden(info, &name, &why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Vec<Item> {
        items(&json!({"spec": {"limits": limits}}))
    }

    #[test]
    fn defaults_fill_missing_requests_and_limits() {
        let its = range(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"}, "defaultRequest": {"cpu": "100m"}}]));
        let mut pod = json!({"spec": {"containers": [
            {"name": "web", "resources": {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}}]}});
        let notes = apply_defaults(&mut pod, &its);
        let r = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(r["requests"]["cpu"], "100m");
        // memory's defaultRequest came from the default (upstream's LimitRange defaulting)
        assert_eq!(r["requests"]["memory"], "64Mi");
        assert_eq!(r["limits"]["cpu"], "500m");
        assert_eq!(r["limits"]["memory"], "64Mi");
        assert_eq!(
            notes,
            vec![
                "cpu request for container web",
                "cpu limit for container web"
            ]
        );
    }

    #[test]
    fn min_max_and_ratio_messages_match_upstream() {
        let its = range(
            json!([{"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "1"},
            "maxLimitRequestRatio": {"cpu": "2"}}]),
        );
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "2"}}}]}});
        let errs = validate_pod(&pod, &its);
        assert_eq!(
            errs,
            vec![
                "minimum cpu usage per Container is 100m, but request is 50m",
                "maximum cpu usage per Container is 1, but limit is 2",
                "cpu max limit to request ratio per Container is 2, but provided ratio is 40.000000",
            ]
        );
        let ok = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}}]}});
        assert!(validate_pod(&ok, &its).is_empty());
    }

    #[test]
    fn pod_and_claim_items() {
        let its = range(json!([{"type": "Pod", "max": {"memory": "1Gi"}},
            {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "5Gi"}}]));
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "768Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "512Mi"}}}]}});
        assert_eq!(
            validate_pod(&pod, &its),
            vec!["maximum memory usage per Pod is 1Gi, but limit is 1280Mi"]
        );
        let small = json!({"spec": {"resources": {"requests": {"storage": "500Mi"}}}});
        assert_eq!(
            validate_claim(&small, &its),
            vec!["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"]
        );
        let big = json!({"spec": {"resources": {"requests": {"storage": "10Gi"}}}});
        assert_eq!(
            validate_claim(&big, &its),
            vec!["maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi"]
        );
    }
}
