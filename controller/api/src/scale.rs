//! The `scale` subresource (`autoscaling/v1` `Scale`) of Deployments, ReplicaSets and
//! StatefulSets, as upstream's scale REST: reading builds a `Scale` from the object,
//! writing validates `spec.replicas` and sets it on the object.

// Errors are the `Status` the API server sends as is.
#![allow(clippy::result_large_err)]

use serde_json::{json, Map, Value};

use crate::selectors::LabelSelector;
use crate::status::{Cause, Status};

/// The `Scale` object for `obj` (which must have a scale subresource): name, namespace,
/// uid, resourceVersion and creationTimestamp from the object, `spec.replicas`,
/// `status.replicas` and `status.selector` (the label selector as a string).
pub fn scale_of(obj: &Value) -> Value {
    let mut meta = Map::new();
    if let Some(m) = obj.get("metadata").and_then(Value::as_object) {
        for k in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(v) = m.get(k) {
                meta.insert(k.to_string(), v.clone());
            }
        }
    }
    let spec_replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status_replicas = obj
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut status = json!({ "replicas": status_replicas });
    let selector = obj
        .pointer("/spec/selector")
        .map(|s| match LabelSelector::from_label_selector(s) {
            Ok(sel) => sel.to_string(),
            Err(_) => String::new(),
        })
        .unwrap_or_default();
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": spec_replicas},
        "status": status,
    })
}

/// Applies a `Scale` body to `obj`: `spec.replicas` must be an integer >= 0 (422 Invalid
/// on `Scale` otherwise, as upstream's `ValidateScale`); a `metadata.resourceVersion` in
/// the body becomes the object's precondition.
pub fn apply_scale(obj: &mut Value, scale: &Value) -> Result<(), Status> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            Status::bad_request(format!(
                "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal {} into Go struct field ScaleSpec.spec.replicas of type int32",
                if v.is_string() { "string" } else { "value" }
            ))
        })?,
    };
    if replicas < 0 {
        return Err(Status::invalid(
            "Scale",
            "autoscaling",
            &name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                field: "spec.replicas".into(),
            }],
        ));
    }
    if replicas > i32::MAX as i64 {
        return Err(Status::bad_request(format!(
            "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal number {replicas} into Go struct field ScaleSpec.spec.replicas of type int32"
        )));
    }
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty())
    {
        crate::meta::set_resource_version(obj, rv);
    }
    let Some(map) = obj.as_object_mut() else {
        return Ok(());
    };
    let spec = map
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(spec) = spec.as_object_mut() {
        spec.insert("replicas".into(), json!(replicas));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7",
                "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "fe"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}},
            "status": {"replicas": 2}})
    }

    #[test]
    fn builds_scale_like_upstream() {
        let s = scale_of(&deployment());
        assert_eq!(
            s,
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7"},
                "spec": {"replicas": 3},
                "status": {"replicas": 2, "selector": "app=web,env in (prod),tier=fe"}})
        );
        let bare = scale_of(&json!({"metadata": {"name": "x"}, "spec": {}}));
        assert_eq!(bare["spec"]["replicas"], 0);
        assert!(bare["status"].get("selector").is_none());
    }

    #[test]
    fn applies_replicas_and_rejects_negative() {
        let mut d = deployment();
        apply_scale(
            &mut d,
            &json!({"spec": {"replicas": 5}, "metadata": {"resourceVersion": "6"}}),
        )
        .unwrap();
        assert_eq!(d["spec"]["replicas"], 5);
        assert_eq!(d["metadata"]["resourceVersion"], "6");
        let err = apply_scale(&mut d, &json!({"spec": {"replicas": -1}})).unwrap_err();
        assert_eq!(err.code(), 422);
        assert_eq!(
            err.message,
            "Scale \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let err = apply_scale(&mut d, &json!({"spec": {"replicas": "2"}})).unwrap_err();
        assert_eq!(err.code(), 400);
        apply_scale(&mut d, &json!({"spec": {}})).unwrap();
        assert_eq!(d["spec"]["replicas"], 0);
    }
}
