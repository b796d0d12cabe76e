//! Validation of writes to subresources, which upstream checks with their own rules rather
//! than the object's full update validation.

use serde_json::Value;

use super::field::{forbidden, ErrorList, Path};
use super::meta::{immutable, nonnegative, object_meta_update};
use super::obj;

/// Rules for `subresource` writes; `None` means "use the object's own update rules".
pub fn rules(
    group: &str,
    kind: &str,
    sub: &str,
    new: &Value,
    old: &Value,
    builtin: bool,
) -> Option<ErrorList> {
    match sub {
        "binding" | "eviction" => Some(vec![]),
        "status" => {
            let mut errs = object_meta_update(new, old, builtin);
            if (group, kind) == ("", "Pod") {
                errs.extend(pod_status(new, old));
            }
            Some(errs)
        }
        "scale" => {
            let mut errs = object_meta_update(new, old, builtin);
            if let Some(r) = obj::at(new, &["spec", "replicas"]).and_then(Value::as_i64) {
                errs.extend(nonnegative(r, "spec.replicas"));
            }
            Some(errs)
        }
        "approval" | "finalize" => Some(object_meta_update(new, old, builtin)),
        "ephemeralcontainers" if (group, kind) == ("", "Pod") => {
            Some(ephemeral_containers(new, old))
        }
        _ => None,
    }
}

/// `ValidatePodStatusUpdate` (the parts that constrain what a status writer may change).
fn pod_status(new: &Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let node = |o: &Value| {
        obj::at(o, &["spec", "nodeName"])
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if node(new) != node(old) {
        errs.push(forbidden("status.nodeName", "may not be changed directly"));
    }
    errs.extend(immutable(
        obj::at(new, &["status", "qosClass"]),
        obj::at(old, &["status", "qosClass"]),
        "status.qosClass",
    ));
    errs
}

/// `ValidatePodEphemeralContainersUpdate`: existing ephemeral containers may not be removed
/// or changed; new ones are checked like any container.
fn ephemeral_containers(new: &Value, old: &Value) -> ErrorList {
    let mut errs = object_meta_update(new, old, true);
    errs.extend(super::pod::pod_create(new));
    let mirror = obj::at(
        old,
        &["metadata", "annotations", super::pod::MIRROR_POD_ANNOTATION],
    )
    .is_some();
    if mirror {
        return vec![forbidden(
            "[]",
            "static pods do not support ephemeral containers",
        )];
    }
    let path = Path::new("spec").child("ephemeralContainers");
    let new_list = obj::at(new, &["spec", "ephemeralContainers"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for o in obj::at(old, &["spec", "ephemeralContainers"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = obj::s(o, "name");
        match new_list.iter().find(|n| obj::s(n, "name") == name) {
            None => errs.push(forbidden(
                &path,
                &format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if !obj::same(Some(n), Some(o)) => errs.push(forbidden(
                &path,
                &format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            _ => {}
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for key in ["containers", "initContainers"] {
        for c in obj::at(new, &["spec", key])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            names.push(obj::s(c, "name"));
        }
    }
    for (i, ec) in new_list.iter().enumerate() {
        let p = path.index(i);
        let name = obj::s(ec, "name");
        if name.is_empty() {
            errs.push(super::field::required(&p.child("name"), ""));
        } else if names.contains(&name) {
            errs.push(super::field::duplicate(
                &p.child("name"),
                super::field::BadValue::Str(name.into()),
            ));
        }
        if obj::s(ec, "image").is_empty() {
            errs.push(super::field::required(&p.child("image"), ""));
        }
        let target = obj::s(ec, "targetContainerName");
        if !target.is_empty() && !names.contains(&target) {
            errs.push(super::field::not_found(
                &p.child("targetContainerName"),
                super::field::BadValue::Str(target.into()),
            ));
        }
        for f in [
            "ports",
            "resources",
            "lifecycle",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
        ] {
            let set = obj::get(ec, f).is_some_and(|v| !obj::same(Some(v), None));
            if set {
                errs.push(forbidden(
                    &p.child(f),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        names.push(name);
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_writes_cannot_move_pods() {
        let old = json!({"metadata": {"name": "p", "resourceVersion": "1"}, "spec": {"nodeName": "a"}, "status": {"qosClass": "BestEffort"}});
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!("b");
        let errs = rules("", "Pod", "status", &new, &old, true).unwrap();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "status.nodeName");
        assert_eq!(errs[0].body(), "Forbidden: may not be changed directly");
        assert!(rules("", "Pod", "binding", &new, &old, true)
            .unwrap()
            .is_empty());
        assert!(rules("apps", "Deployment", "", &new, &old, true).is_none());
    }

    #[test]
    fn ephemeral_containers_are_append_only() {
        let old = json!({"metadata": {"name": "p", "namespace": "d", "resourceVersion": "1"}, "spec": {
            "containers": [{"name": "c", "image": "x", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30,
            "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}});
        let mut new = old.clone();
        new["spec"]["ephemeralContainers"] =
            json!([{"name": "dbg2", "image": "busybox", "targetContainerName": "c"}]);
        let errs = rules("", "Pod", "ephemeralcontainers", &new, &old, true).unwrap();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].body(),
            "Forbidden: existing ephemeral containers \"dbg\" may not be removed\n"
        );
    }
}
