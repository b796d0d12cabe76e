//! The v1 annotation forms read back into v2 fields (the parent module has the overview).
//!
//! The annotations are decoded as Go's `encoding/json` decodes them into upstream's types:
//! keys match case-insensitively, unknown keys are ignored, and one value of the wrong type
//! fails the whole annotation (which is then ignored).

use serde_json::{json, Map, Value};

use super::*;

/// The converted items of a JSON array, `None` when it is not one or an item is malformed.
pub(super) fn each(v: &Value, f: fn(&Value) -> Option<Value>) -> Option<Vec<Value>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(f).collect(),
        _ => None,
    }
}

pub(super) fn metric_spec_from_v1(m: &Value) -> Option<Value> {
    let mut out = Map::new();
    out.insert("type".into(), json!(g_str(m, "type")?.unwrap_or("")));
    for key in SOURCES {
        let Some(src) = g_obj(m, key)? else { continue };
        let v = match key {
            "object" => {
                let value = g_qty(src, "targetValue")?;
                let average = g_qty(src, "averageValue")?;
                let kind = if average.is_some() {
                    "AverageValue"
                } else {
                    "Value"
                };
                fields(&[
                    ("describedObject", Some(reference(src)?)),
                    (
                        "target",
                        Some(target(
                            kind,
                            placeholder_dropped(value, &average),
                            average,
                            None,
                        )),
                    ),
                    ("metric", Some(identifier(src, "selector")?)),
                ])
            }
            "pods" => {
                let average = g_qty(src, "targetAverageValue")?.unwrap_or(json!("0"));
                fields(&[
                    ("metric", Some(identifier(src, "selector")?)),
                    (
                        "target",
                        Some(target("AverageValue", None, Some(average), None)),
                    ),
                ])
            }
            "resource" | "containerResource" => {
                let utilization = g_int(src, "targetAverageUtilization")?;
                let average = g_qty(src, "targetAverageValue")?;
                let kind = if utilization.is_some() {
                    "Utilization"
                } else {
                    "AverageValue"
                };
                fields(&[
                    ("name", Some(json!(g_str(src, "name")?.unwrap_or("")))),
                    ("target", Some(target(kind, None, average, utilization))),
                    ("container", container_from_v1(key, src)?),
                ])
            }
            _ => {
                let value = g_qty(src, "targetValue")?;
                let average = g_qty(src, "targetAverageValue")?;
                let kind = if value.is_some() {
                    "Value"
                } else {
                    "AverageValue"
                };
                fields(&[
                    ("metric", Some(identifier(src, "metricSelector")?)),
                    ("target", Some(target(kind, value, average, None))),
                ])
            }
        };
        out.insert(key.into(), v);
    }
    Some(Value::Object(out))
}

pub(super) fn metric_status_from_v1(m: &Value) -> Option<Value> {
    let mut out = Map::new();
    out.insert("type".into(), json!(g_str(m, "type")?.unwrap_or("")));
    for key in SOURCES {
        let Some(src) = g_obj(m, key)? else { continue };
        let v = match key {
            "object" => {
                let value = g_qty(src, "currentValue")?.unwrap_or(json!("0"));
                let average = g_qty(src, "averageValue")?;
                fields(&[
                    ("metric", Some(identifier(src, "selector")?)),
                    (
                        "current",
                        Some(current(
                            placeholder_dropped(Some(value), &average),
                            average,
                            None,
                        )),
                    ),
                    ("describedObject", Some(reference(src)?)),
                ])
            }
            "pods" => {
                let average = g_qty(src, "currentAverageValue")?.unwrap_or(json!("0"));
                fields(&[
                    ("metric", Some(identifier(src, "selector")?)),
                    ("current", Some(current(None, Some(average), None))),
                ])
            }
            "resource" | "containerResource" => {
                let average = g_qty(src, "currentAverageValue")?.unwrap_or(json!("0"));
                let utilization = g_int(src, "currentAverageUtilization")?;
                fields(&[
                    ("name", Some(json!(g_str(src, "name")?.unwrap_or("")))),
                    ("current", Some(current(None, Some(average), utilization))),
                    ("container", container_from_v1(key, src)?),
                ])
            }
            _ => {
                let value = g_qty(src, "currentValue")?.unwrap_or(json!("0"));
                let average = g_qty(src, "currentAverageValue")?;
                fields(&[
                    ("metric", Some(identifier(src, "metricSelector")?)),
                    (
                        "current",
                        Some(current(
                            placeholder_dropped(Some(value), &average),
                            average,
                            None,
                        )),
                    ),
                ])
            }
        };
        out.insert(key.into(), v);
    }
    Some(Value::Object(out))
}

/// v1 requires a value where v2 has only an average: the zero v2 -> v1 wrote for it is not
/// carried back.
pub(super) fn placeholder_dropped(value: Option<Value>, average: &Option<Value>) -> Option<Value> {
    let zero = value
        .as_ref()
        .is_some_and(|v| Quantity::from_json(v).is_ok_and(|q| q.is_zero()));
    if zero && average.is_some() {
        None
    } else {
        value
    }
}

pub(super) fn target(
    kind: &str,
    value: Option<Value>,
    average: Option<Value>,
    utilization: Option<Value>,
) -> Value {
    fields(&[
        ("type", Some(json!(kind))),
        ("value", value),
        ("averageValue", average),
        ("averageUtilization", utilization),
    ])
}

pub(super) fn current(
    value: Option<Value>,
    average: Option<Value>,
    utilization: Option<Value>,
) -> Value {
    fields(&[
        ("value", value),
        ("averageValue", average),
        ("averageUtilization", utilization),
    ])
}

/// `metricName` and a selector field as a v2 `MetricIdentifier`.
pub(super) fn identifier(src: &Value, selector_key: &str) -> Option<Value> {
    Some(fields(&[
        ("name", Some(json!(g_str(src, "metricName")?.unwrap_or("")))),
        ("selector", g_obj(src, selector_key)?.cloned()),
    ]))
}

/// A v1 `target` (`CrossVersionObjectReference`) as v2's `describedObject`.
pub(super) fn reference(src: &Value) -> Option<Value> {
    let r = g_obj(src, "target")?.unwrap_or(&Value::Null);
    Some(fields(&[
        ("kind", Some(json!(g_str(r, "kind")?.unwrap_or("")))),
        ("name", Some(json!(g_str(r, "name")?.unwrap_or("")))),
        (
            "apiVersion",
            g_str(r, "apiVersion")?
                .filter(|s| !s.is_empty())
                .map(|s| json!(s)),
        ),
    ]))
}

pub(super) fn container_from_v1(key: &str, src: &Value) -> Option<Option<Value>> {
    if key != "containerResource" {
        return Some(None);
    }
    Some(Some(json!(g_str(src, "container")?.unwrap_or(""))))
}

pub(super) fn condition_from_v1(c: &Value) -> Option<Value> {
    Some(fields(&[
        ("type", Some(json!(g_str(c, "type")?.unwrap_or("")))),
        ("status", Some(json!(g_str(c, "status")?.unwrap_or("")))),
        (
            "lastTransitionTime",
            g_str(c, "lastTransitionTime")?.map(|s| json!(s)),
        ),
        (
            "reason",
            g_str(c, "reason")?
                .filter(|s| !s.is_empty())
                .map(|s| json!(s)),
        ),
        (
            "message",
            g_str(c, "message")?
                .filter(|s| !s.is_empty())
                .map(|s| json!(s)),
        ),
    ]))
}

/// The internal behavior of the annotation as v2 `spec.behavior`; `None` when malformed or
/// empty (upstream only moves well-formed, non-empty data to the field).
pub(super) fn behavior_from_internal(v: &Value) -> Option<Value> {
    if !v.is_object() {
        return None;
    }
    let rules = |dir: &str| -> Option<Option<Value>> {
        let Some(r) = g_obj(v, dir)? else {
            return Some(None);
        };
        let policies = match g(r, "Policies") {
            None => None,
            Some(Value::Array(ps)) => Some(Value::Array(
                ps.iter()
                    .map(|p| {
                        p.is_object().then_some(())?;
                        Some(json!({
                            "type": g_str(p, "Type")?.unwrap_or(""),
                            "value": g_int(p, "Value")?.unwrap_or(json!(0)),
                            "periodSeconds": g_int(p, "PeriodSeconds")?.unwrap_or(json!(0)),
                        }))
                    })
                    .collect::<Option<Vec<_>>>()?,
            )),
            Some(_) => return None,
        };
        Some(Some(fields(&[
            (
                "stabilizationWindowSeconds",
                g_int(r, "StabilizationWindowSeconds")?,
            ),
            ("selectPolicy", g_str(r, "SelectPolicy")?.map(|s| json!(s))),
            ("policies", policies),
            ("tolerance", g_qty(r, "Tolerance")?),
        ])))
    };
    let (up, down) = (rules("ScaleUp")?, rules("ScaleDown")?);
    if up.is_none() && down.is_none() {
        return None;
    }
    Some(fields(&[("scaleUp", up), ("scaleDown", down)]))
}
