//! Pod updates as upstream's `ValidatePodUpdate` restricts them: only container images,
//! `activeDeadlineSeconds` (downwards), added tolerations, removed scheduling gates and a
//! negative grace period raised to 1 may change.

use serde_json::{Map, Value};

use super::field::{forbidden, go_json, invalid, required, BadValue, ErrorList, Path};
use super::names::inclusive_range_error;
use super::obj;
use super::scheduling::tolerations;

const UPDATABLE: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

fn container_updates(new: &[Value], old: &[Value], path: &Path) -> (ErrorList, bool) {
    if new.len() != old.len() {
        return (
            vec![forbidden(
                path,
                "pod updates may not add or remove containers",
            )],
            true,
        );
    }
    let mut errs = ErrorList::new();
    for (i, c) in new.iter().enumerate() {
        let image = obj::s(c, "image");
        if image.is_empty() {
            errs.push(required(&path.index(i).child("image"), ""));
        }
        if image.trim().len() != image.len() {
            errs.push(super::field::invalid_str(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    (errs, false)
}

/// Spec-level update rules (metadata and full spec validation are done by the caller).
pub fn pod_update(new: &Value, old: &Value) -> ErrorList {
    let spec_path = Path::new("spec");
    let empty = Value::Object(Map::new());
    let ns = obj::get(new, "spec").unwrap_or(&empty);
    let os = obj::get(old, "spec").unwrap_or(&empty);
    let mut errs = mirror_annotation_updates(new, old);
    for f in ["containers", "initContainers"] {
        let (e, stop) = container_updates(obj::arr(ns, f), obj::arr(os, f), &spec_path.child(f));
        errs.extend(e);
        if stop {
            return errs;
        }
    }
    let ads_path = spec_path.child("activeDeadlineSeconds");
    match (
        obj::opt_i(ns, "activeDeadlineSeconds"),
        obj::opt_i(os, "activeDeadlineSeconds"),
    ) {
        (Some(n), old_ads) => {
            if n < 0 || n > i32::MAX as i64 {
                errs.push(invalid(
                    &ads_path,
                    BadValue::Int(n),
                    &inclusive_range_error(0, i32::MAX as i64),
                ));
                return errs;
            }
            if let Some(o) = old_ads {
                if o < n {
                    errs.push(invalid(
                        &ads_path,
                        BadValue::Int(n),
                        "must be less than or equal to previous value",
                    ));
                    return errs;
                }
            }
        }
        (None, Some(_)) => {
            errs.push(invalid(
                &ads_path,
                BadValue::Null,
                "must not update from a positive integer to nil value",
            ));
        }
        (None, None) => {}
    }
    errs.extend(only_added_tolerations(
        obj::arr(ns, "tolerations"),
        obj::arr(os, "tolerations"),
        &spec_path.child("tolerations"),
    ));
    let old_gates: Vec<&str> = obj::arr(os, "schedulingGates")
        .iter()
        .map(|g| obj::s(g, "name"))
        .collect();
    for (i, g) in obj::arr(ns, "schedulingGates").iter().enumerate() {
        let name = obj::s(g, "name");
        if !old_gates.contains(&name) {
            errs.push(forbidden(
                &spec_path.child("schedulingGates").index(i).child("name"),
                &format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }
    if obj::same(Some(ns), Some(os)) {
        return errs;
    }
    let munged = munge(ns, os);
    if !obj::same(Some(&munged), Some(os)) {
        errs.push(forbidden(
            &spec_path,
            &format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE.join(","),
                spec_diff(os, &munged)
            ),
        ));
    }
    errs
}

/// `ValidatePodSpecificAnnotationUpdates`: the mirror-pod annotation cannot be added,
/// changed or removed.
fn mirror_annotation_updates(new: &Value, old: &Value) -> ErrorList {
    let key = super::pod::MIRROR_POD_ANNOTATION;
    let get = |o: &Value| {
        obj::at(o, &["metadata", "annotations", key])
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let p = Path::new("metadata").child("annotations").key(key);
    match (get(new), get(old)) {
        (Some(n), Some(o)) if n == o => vec![],
        (None, None) => vec![],
        (_, Some(_)) => vec![forbidden(
            &p,
            "may not remove or update mirror pod annotation",
        )],
        (Some(_), None) => vec![forbidden(&p, "may not add mirror pod annotation")],
    }
}

/// The new spec with the updatable fields copied from the old one.
fn munge(ns: &Value, os: &Value) -> Value {
    let mut m = ns.clone();
    for f in ["containers", "initContainers"] {
        if let Some(list) = m.get_mut(f).and_then(Value::as_array_mut) {
            for (i, c) in list.iter_mut().enumerate() {
                let old_image = os[f][i].get("image").cloned().unwrap_or(Value::Null);
                if let Some(obj) = c.as_object_mut() {
                    obj.insert("image".into(), old_image);
                }
            }
        }
    }
    // Binding a pending pod to a node (`pods/binding`) reaches the validator through the same
    // update path here; upstream's binding skips pod update validation, so assigning a node
    // to a pod without one is accepted.
    let old_node = obj::s(os, "nodeName");
    if old_node.is_empty() && !obj::s(ns, "nodeName").is_empty() {
        if let Some(mo) = m.as_object_mut() {
            match os.get("nodeName") {
                Some(v) => mo.insert("nodeName".into(), v.clone()),
                None => mo.remove("nodeName"),
            };
        }
    }
    let Some(mo) = m.as_object_mut() else {
        return m;
    };
    for f in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
        match os.get(f) {
            Some(v) => {
                mo.insert(f.into(), v.clone());
            }
            None => {
                mo.remove(f);
            }
        }
    }
    let old_grace = obj::opt_i(os, "terminationGracePeriodSeconds");
    if old_grace.is_some_and(|g| g < 0)
        && obj::opt_i(ns, "terminationGracePeriodSeconds") == Some(1)
    {
        mo.insert(
            "terminationGracePeriodSeconds".into(),
            os["terminationGracePeriodSeconds"].clone(),
        );
    }
    m
}

/// A short diff in the spirit of upstream's `cmp.Diff` of the two specs.
fn spec_diff(old: &Value, new: &Value) -> String {
    let mut out = String::from("  core.PodSpec{\n");
    let mut keys: Vec<&String> = old
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(new.as_object().into_iter().flat_map(|m| m.keys()))
        .collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (o, n) = (old.get(k), new.get(k));
        if obj::same(o, n) {
            continue;
        }
        let field = {
            let mut c = k.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        };
        if let Some(o) = o {
            out.push_str(&format!("- \t{field}: {},\n", go_json(o)));
        }
        if let Some(n) = n {
            out.push_str(&format!("+ \t{field}: {},\n", go_json(n)));
        }
    }
    out.push_str("  }\n");
    out
}

fn only_added_tolerations(new: &[Value], old: &[Value], path: &Path) -> ErrorList {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(o) = t.as_object_mut() {
            o.remove("tolerationSeconds");
        }
        t
    };
    for o in old {
        let so = strip(o);
        if !new.iter().any(|n| obj::same(Some(&strip(n)), Some(&so))) {
            return vec![forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    tolerations(new, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(image: &str, policy: &str) -> Value {
        json!({"spec": {"containers": [{"name": "c", "image": image}], "restartPolicy": policy,
            "tolerations": [{"key": "a", "operator": "Exists"}]}})
    }

    #[test]
    fn image_change_is_allowed() {
        assert!(pod_update(&pod("nginx:2", "Always"), &pod("nginx:1", "Always")).is_empty());
    }

    #[test]
    fn other_changes_are_forbidden_with_upstream_message() {
        let errs = pod_update(&pod("nginx:1", "Never"), &pod("nginx:1", "Always"));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec");
        let body = errs[0].body();
        assert!(body.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{body}");
        assert!(body.contains("- \tRestartPolicy: \"Always\""), "{body}");
    }

    #[test]
    fn containers_cannot_be_added_and_tolerations_only_added() {
        let mut n = pod("nginx:1", "Always");
        n["spec"]["containers"] = json!([{"name": "c", "image": "x"}, {"name": "d", "image": "y"}]);
        let errs = pod_update(&n, &pod("nginx:1", "Always"));
        assert_eq!(
            errs[0].body(),
            "Forbidden: pod updates may not add or remove containers"
        );
        let mut n = pod("nginx:1", "Always");
        n["spec"]["tolerations"] = json!([]);
        let errs = pod_update(&n, &pod("nginx:1", "Always"));
        assert_eq!(
            errs[0].body(),
            "Forbidden: existing toleration can not be modified except its tolerationSeconds"
        );
        let mut n = pod("nginx:1", "Always");
        n["spec"]["tolerations"] =
            json!([{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]);
        assert!(pod_update(&n, &pod("nginx:1", "Always")).is_empty());
    }

    #[test]
    fn binding_a_pending_pod_is_accepted_but_moving_it_is_not() {
        let old = pod("x", "Always");
        let mut bound = old.clone();
        bound["spec"]["nodeName"] = json!("board-1");
        assert!(pod_update(&bound, &old).is_empty());
        let mut moved = bound.clone();
        moved["spec"]["nodeName"] = json!("board-2");
        assert_eq!(pod_update(&moved, &bound)[0].field, "spec");
    }

    #[test]
    fn mirror_annotation_is_fixed() {
        let mut old = pod("x", "Always");
        old["metadata"] = json!({"annotations": {"kubernetes.io/config.mirror": "abc"}});
        let mut new = old.clone();
        new["metadata"]["annotations"] = json!({});
        let errs = pod_update(&new, &old);
        assert_eq!(
            errs[0].field,
            "metadata.annotations[kubernetes.io/config.mirror]"
        );
        assert_eq!(
            errs[0].body(),
            "Forbidden: may not remove or update mirror pod annotation"
        );
    }

    #[test]
    fn active_deadline_only_decreases() {
        let mut o = pod("x", "Always");
        o["spec"]["activeDeadlineSeconds"] = json!(10);
        let mut n = o.clone();
        n["spec"]["activeDeadlineSeconds"] = json!(20);
        let errs = pod_update(&n, &o);
        assert_eq!(
            errs[0].body(),
            "Invalid value: 20: must be less than or equal to previous value"
        );
        n["spec"]["activeDeadlineSeconds"] = json!(5);
        assert!(pod_update(&n, &o).is_empty());
        n["spec"]
            .as_object_mut()
            .unwrap()
            .remove("activeDeadlineSeconds");
        assert_eq!(
            pod_update(&n, &o)[0].body(),
            "Invalid value: \"null\": must not update from a positive integer to nil value"
        );
    }
}
