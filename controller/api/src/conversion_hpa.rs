//! autoscaling/v1 HorizontalPodAutoscalers as the autoscaling/v2 objects they are stored as,
//! following upstream's `pkg/apis/autoscaling/v1` conversion (v2 is Bramble's storage form,
//! where upstream has its internal type):
//!
//! - `spec.targetCPUUtilizationPercentage` is the first `Resource` `cpu` metric's
//!   `averageUtilization` target; a v1 object without one (and without other metrics) gets
//!   the 80% CPU metric upstream's conversion adds.
//! - v2 metrics v1 cannot express travel in the annotation `autoscaling.alpha.kubernetes.io/metrics`
//!   (upstream's v1 `MetricSpec` list, the v2beta1 shape), current metrics in `.../current-metrics`
//!   (with `status.currentCPUUtilizationPercentage`), conditions in `.../conditions` and
//!   `spec.behavior` in `.../behavior` (upstream marshals its internal type there: Go field
//!   names, read back case-insensitively as `encoding/json` does). On the way to v2 the
//!   annotations become fields again and are dropped; a malformed one is ignored, as upstream.
//!
//! Upstream's one lossy spot is kept where it is observable (a v1 writer's CPU metric comes
//! after the annotation's metrics); the zero quantities v1's required fields force (an Object
//! or External metric's `targetValue`/`currentValue` when only an average is set) are not
//! carried back to v2, so a v2 object survives v2 -> v1 -> v2 unchanged.

use serde_json::{json, Map, Value};

use crate::quantity::Quantity;

/// Metric specs v1 cannot express (`autoscaling.MetricSpecsAnnotation`).
pub const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// Every current metric (`autoscaling.MetricStatusesAnnotation`).
pub const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// Status conditions (`autoscaling.HorizontalPodAutoscalerConditionsAnnotation`).
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `spec.behavior` (`autoscaling.BehaviorSpecsAnnotation`).
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// The annotations conversion writes, dropped before writing them again and after reading
/// them (`DropRoundTripHorizontalPodAutoscalerAnnotations`).
pub const ROUND_TRIP_ANNOTATIONS: [&str; 4] = [
    METRICS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    CONDITIONS_ANNOTATION,
];
/// `autoscaling.DefaultCPUUtilization`: the target of a v1 autoscaler that names none.
pub const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// An autoscaling/v2 HorizontalPodAutoscaler as autoscaling/v1.
pub fn v2_to_v1(obj: Value) -> Value {
    let Value::Object(mut map) = obj else {
        return obj;
    };
    let spec = map.remove("spec");
    let status = map.remove("status");
    let metrics = spec
        .as_ref()
        .map(|s| list(s, "metrics"))
        .unwrap_or_default();
    let current = status
        .as_ref()
        .map(|s| list(s, "currentMetrics"))
        .unwrap_or_default();
    let conditions = status
        .as_ref()
        .map(|s| list(s, "conditions"))
        .unwrap_or_default();

    let mut annotations: Vec<(&str, Value)> = Vec::new();
    let other: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(metric_spec_to_v1)
        .collect();
    if !other.is_empty() {
        annotations.push((METRICS_ANNOTATION, Value::Array(other)));
    }
    if !current.is_empty() {
        let statuses = current.iter().map(metric_status_to_v1).collect();
        annotations.push((CURRENT_METRICS_ANNOTATION, Value::Array(statuses)));
    }
    if !conditions.is_empty() {
        annotations.push((CONDITIONS_ANNOTATION, Value::Array(conditions.to_vec())));
    }
    if let Some(b) = spec.as_ref().and_then(|s| present(s, "behavior")) {
        annotations.push((BEHAVIOR_ANNOTATION, behavior_to_internal(b)));
    }
    map.insert("apiVersion".into(), json!("autoscaling/v1"));
    set_round_trip_annotations(&mut map, annotations);

    if let Some(spec) = &spec {
        let mut out = Map::new();
        copy(
            spec,
            &mut out,
            &["scaleTargetRef", "minReplicas", "maxReplicas"],
        );
        let first_cpu = metrics.iter().find(|m| {
            str_at(m, &["type"]) == Some("Resource")
                && str_at(m, &["resource", "name"]) == Some("cpu")
        });
        if let Some(u) =
            first_cpu.and_then(|m| at(m, &["resource", "target", "averageUtilization"]))
        {
            out.insert("targetCPUUtilizationPercentage".into(), u.clone());
        }
        map.insert("spec".into(), Value::Object(out));
    }
    if let Some(status) = &status {
        let mut out = Map::new();
        copy(
            status,
            &mut out,
            &[
                "observedGeneration",
                "lastScaleTime",
                "currentReplicas",
                "desiredReplicas",
            ],
        );
        // the last CPU utilization, as upstream's loop leaves it
        let cpu = current
            .iter()
            .rev()
            .filter(|m| {
                str_at(m, &["type"]) == Some("Resource")
                    && str_at(m, &["resource", "name"]) == Some("cpu")
            })
            .find_map(|m| at(m, &["resource", "current", "averageUtilization"]));
        if let Some(u) = cpu {
            out.insert("currentCPUUtilizationPercentage".into(), u.clone());
        }
        map.insert("status".into(), Value::Object(out));
    }
    Value::Object(map)
}

/// An autoscaling/v1 HorizontalPodAutoscaler as autoscaling/v2.
pub fn v1_to_v2(obj: Value) -> Value {
    let Value::Object(mut map) = obj else {
        return obj;
    };
    let annotations = take_round_trip_annotations(&mut map);
    let parsed = |key: &str| -> Option<Value> {
        annotations
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| serde_json::from_str(v).ok())
    };
    map.insert("apiVersion".into(), json!("autoscaling/v2"));
    let spec = map.remove("spec").unwrap_or_else(|| json!({}));
    let status = map.remove("status");

    let mut out = Map::new();
    copy(
        &spec,
        &mut out,
        &["scaleTargetRef", "minReplicas", "maxReplicas"],
    );
    let cpu = present(&spec, "targetCPUUtilizationPercentage").map(cpu_metric);
    let mut metrics: Vec<Value> = parsed(METRICS_ANNOTATION)
        .and_then(|v| each(&v, metric_spec_from_v1))
        .unwrap_or_default();
    metrics.extend(cpu);
    if metrics.is_empty() {
        metrics.push(cpu_metric(&json!(DEFAULT_CPU_UTILIZATION)));
    }
    out.insert("metrics".into(), Value::Array(metrics));
    if let Some(b) = parsed(BEHAVIOR_ANNOTATION).and_then(|v| behavior_from_internal(&v)) {
        out.insert("behavior".into(), b);
    }
    map.insert("spec".into(), Value::Object(out));

    let current = parsed(CURRENT_METRICS_ANNOTATION).and_then(|v| each(&v, metric_status_from_v1));
    let conditions = parsed(CONDITIONS_ANNOTATION).and_then(|v| each(&v, condition_from_v1));
    if status.is_none() && current.is_none() && conditions.is_none() {
        return Value::Object(map);
    }
    let status = status.unwrap_or_else(|| json!({}));
    let mut out = Map::new();
    copy(
        &status,
        &mut out,
        &[
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ],
    );
    let current = current.or_else(|| {
        present(&status, "currentCPUUtilizationPercentage").map(|u| {
            vec![json!({"type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": u}}})]
        })
    });
    if let Some(c) = current.filter(|c| !c.is_empty()) {
        out.insert("currentMetrics".into(), Value::Array(c));
    }
    if let Some(c) = conditions.filter(|c| !c.is_empty()) {
        out.insert("conditions".into(), Value::Array(c));
    }
    map.insert("status".into(), Value::Object(out));
    Value::Object(map)
}

fn cpu_metric(utilization: &Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": utilization}}})
}

/// A `Resource` `cpu` metric with a utilization target: what `targetCPUUtilizationPercentage`
/// expresses, so never in the annotation.
fn is_cpu_utilization(m: &Value) -> bool {
    str_at(m, &["type"]) == Some("Resource")
        && str_at(m, &["resource", "name"]) == Some("cpu")
        && at(m, &["resource", "target", "averageUtilization"]).is_some()
}

// ---------------------------------------------------------------- v2 -> v1 annotation forms

/// Fields of the metric sources, in upstream's order.
const SOURCES: [&str; 5] = [
    "object",
    "pods",
    "resource",
    "containerResource",
    "external",
];

fn metric_spec_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), m.get("type").cloned().unwrap_or(json!("")));
    for key in SOURCES {
        let Some(src) = present(m, key) else { continue };
        let target = src.get("target").unwrap_or(&Value::Null);
        let v = match key {
            "object" => fields(&[
                ("target", Some(described(src))),
                ("metricName", Some(metric_name(src))),
                ("targetValue", Some(qty_or_zero(target, "value"))),
                ("selector", at(src, &["metric", "selector"]).cloned()),
                ("averageValue", present(target, "averageValue").cloned()),
            ]),
            "pods" => fields(&[
                ("metricName", Some(metric_name(src))),
                (
                    "targetAverageValue",
                    Some(qty_or_zero(target, "averageValue")),
                ),
                ("selector", at(src, &["metric", "selector"]).cloned()),
            ]),
            "resource" | "containerResource" => fields(&[
                ("name", Some(src.get("name").cloned().unwrap_or(json!("")))),
                (
                    "targetAverageUtilization",
                    present(target, "averageUtilization").cloned(),
                ),
                (
                    "targetAverageValue",
                    present(target, "averageValue").cloned(),
                ),
                ("container", container(key, src)),
            ]),
            _ => fields(&[
                ("metricName", Some(metric_name(src))),
                ("metricSelector", at(src, &["metric", "selector"]).cloned()),
                ("targetValue", present(target, "value").cloned()),
                (
                    "targetAverageValue",
                    present(target, "averageValue").cloned(),
                ),
            ]),
        };
        out.insert(key.into(), v);
    }
    Value::Object(out)
}

fn metric_status_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), m.get("type").cloned().unwrap_or(json!("")));
    for key in SOURCES {
        let Some(src) = present(m, key) else { continue };
        let current = src.get("current").unwrap_or(&Value::Null);
        let v = match key {
            "object" => fields(&[
                ("target", Some(described(src))),
                ("metricName", Some(metric_name(src))),
                ("currentValue", Some(qty_or_zero(current, "value"))),
                ("selector", at(src, &["metric", "selector"]).cloned()),
                ("averageValue", present(current, "averageValue").cloned()),
            ]),
            "pods" => fields(&[
                ("metricName", Some(metric_name(src))),
                (
                    "currentAverageValue",
                    Some(qty_or_zero(current, "averageValue")),
                ),
                ("selector", at(src, &["metric", "selector"]).cloned()),
            ]),
            "resource" | "containerResource" => fields(&[
                ("name", Some(src.get("name").cloned().unwrap_or(json!("")))),
                (
                    "currentAverageUtilization",
                    present(current, "averageUtilization").cloned(),
                ),
                (
                    "currentAverageValue",
                    Some(qty_or_zero(current, "averageValue")),
                ),
                ("container", container(key, src)),
            ]),
            _ => fields(&[
                ("metricName", Some(metric_name(src))),
                ("metricSelector", at(src, &["metric", "selector"]).cloned()),
                ("currentValue", Some(qty_or_zero(current, "value"))),
                (
                    "currentAverageValue",
                    present(current, "averageValue").cloned(),
                ),
            ]),
        };
        out.insert(key.into(), v);
    }
    Value::Object(out)
}

fn described(src: &Value) -> Value {
    src.get("describedObject")
        .cloned()
        .unwrap_or(json!({"kind": "", "name": ""}))
}

fn metric_name(src: &Value) -> Value {
    at(src, &["metric", "name"]).cloned().unwrap_or(json!(""))
}

fn container(key: &str, src: &Value) -> Option<Value> {
    (key == "containerResource").then(|| src.get("container").cloned().unwrap_or(json!("")))
}

/// A required v1 quantity: the v2 one, or Go's zero `Quantity`.
fn qty_or_zero(v: &Value, key: &str) -> Value {
    present(v, key).cloned().unwrap_or(json!("0"))
}

/// Upstream's internal `HorizontalPodAutoscalerBehavior` as `encoding/json` writes it (no
/// JSON tags: Go field names, nil pointers as `null`).
fn behavior_to_internal(b: &Value) -> Value {
    let rules = |dir: &str| match present(b, dir) {
        None => Value::Null,
        Some(r) => {
            let policies = match present(r, "policies").and_then(Value::as_array) {
                Some(ps) => Value::Array(
                    ps.iter()
                        .map(|p| {
                            json!({
                                "Type": p.get("type").cloned().unwrap_or(json!("")),
                                "Value": p.get("value").cloned().unwrap_or(json!(0)),
                                "PeriodSeconds": p.get("periodSeconds").cloned().unwrap_or(json!(0)),
                            })
                        })
                        .collect(),
                ),
                None => Value::Null,
            };
            json!({
                "StabilizationWindowSeconds": r.get("stabilizationWindowSeconds").cloned().unwrap_or(Value::Null),
                "SelectPolicy": r.get("selectPolicy").cloned().unwrap_or(Value::Null),
                "Policies": policies,
                "Tolerance": r.get("tolerance").cloned().unwrap_or(Value::Null),
            })
        }
    };
    json!({"ScaleUp": rules("scaleUp"), "ScaleDown": rules("scaleDown")})
}

#[path = "conversion_hpa_decode.rs"]
mod decode;
use decode::*;

// ---------------------------------------------------------------- JSON helpers

/// `key` of `v` as Go's decoder finds it: the exact key, else one equal ignoring case;
/// `null` counts as absent.
fn g<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let map = v.as_object()?;
    map.get(key)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// A string field: `Some(None)` when absent, `None` when of another type.
fn g_str<'a>(v: &'a Value, key: &str) -> Option<Option<&'a str>> {
    match g(v, key) {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s)),
        Some(_) => None,
    }
}

/// An object field: `Some(None)` when absent, `None` when of another type.
fn g_obj<'a>(v: &'a Value, key: &str) -> Option<Option<&'a Value>> {
    match g(v, key) {
        None => Some(None),
        Some(o @ Value::Object(_)) => Some(Some(o)),
        Some(_) => None,
    }
}

/// An int32 field: `Some(None)` when absent, `None` when not an int32.
fn g_int(v: &Value, key: &str) -> Option<Option<Value>> {
    match g(v, key) {
        None => Some(None),
        Some(n) => n
            .as_i64()
            .filter(|i| i32::try_from(*i).is_ok())
            .map(|i| Some(json!(i))),
    }
}

/// A quantity field (string or number): `Some(None)` when absent, `None` when invalid.
fn g_qty(v: &Value, key: &str) -> Option<Option<Value>> {
    match g(v, key) {
        None => Some(None),
        Some(q) => Quantity::from_json(q).ok().map(|_| Some(q.clone())),
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, k| cur.get(*k))
        .filter(|v| !v.is_null())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|v| !v.is_null())
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn copy(from: &Value, to: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = from.get(*k) {
            to.insert((*k).to_string(), v.clone());
        }
    }
}

/// An object of the fields that are set, in the order given.
fn fields(pairs: &[(&str, Option<Value>)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v)))
            .collect(),
    )
}

/// Replaces the round-trip annotations of `obj` with `set` (JSON-encoded).
fn set_round_trip_annotations(obj: &mut Map<String, Value>, set: Vec<(&str, Value)>) {
    take_round_trip_annotations(obj);
    if set.is_empty() {
        return;
    }
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let meta = meta.as_object_mut().expect("object ensured above");
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    let annotations = annotations.as_object_mut().expect("object ensured above");
    for (k, v) in set {
        annotations.insert(k.to_string(), Value::String(v.to_string()));
    }
}

/// Removes the round-trip annotations of `obj` and returns them; an annotation map left
/// empty by that goes too.
fn take_round_trip_annotations(obj: &mut Map<String, Value>) -> Vec<(String, String)> {
    let Some(annotations) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    else {
        return Vec::new();
    };
    let mut taken = Vec::new();
    for key in ROUND_TRIP_ANNOTATIONS {
        if let Some(v) = annotations.remove(key) {
            taken.push((key.to_string(), v.as_str().unwrap_or_default().to_string()));
        }
    }
    if !taken.is_empty() && annotations.is_empty() {
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("annotations");
        }
    }
    taken
}

#[cfg(test)]
#[path = "conversion_hpa_tests.rs"]
mod tests;
