//! The typed round trip of built-in kinds through their k8s-openapi structs, made to behave
//! like upstream's Go decoder:
//! - unknown fields are dropped (and can be listed with [`unknown_fields`] for
//!   `fieldValidation=Strict|Warn`);
//! - a required field that is missing or `null` is not an error (Go decodes it as the zero
//!   value and validation reports `Required value`): k8s-openapi already defaults most of
//!   them (emitting the zero value, as Go does); the few it insists on (timestamps such as
//!   `eventTime`, `lastTransitionTime`) are zero-filled for the typed decode and left out of
//!   the output;
//! - a type mismatch is an error naming the field path, in Go's words
//!   (`json: cannot unmarshal string into Go struct field Pod.spec.replicas of type int32`).
//!
//! k8s-openapi checks `apiVersion`/`kind` when present and always emits both, plus
//! `metadata`; it omits `None` fields, so nothing else is added.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

/// Zero values tried, in order, for a missing required field.
const ZEROS: [fn() -> Value; 6] = [
    || Value::String(String::new()),
    || Value::from(0),
    || Value::Bool(false),
    || Value::Array(Vec::new()),
    || Value::Object(Map::new()),
    // Go's zero time serializes as null; k8s-openapi needs a valid timestamp to decode.
    || Value::String("1970-01-01T00:00:00.000000Z".to_string()),
];

/// Bound on decode retries (each retry fixes one missing required field).
const MAX_ATTEMPTS: usize = 200;

/// A step into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Round-trips `v` through `T` (a top-level k8s-openapi resource). `Err` is a Go-style
/// decode message without the `<Kind> in version ... cannot be handled as` prefix.
pub fn decode_as<T>(v: Value) -> Result<Value, String>
where
    T: DeserializeOwned + Serialize + k8s_openapi::Resource,
{
    let mut v = v;
    // (path, index into ZEROS) of every zero-filled field.
    let mut filled: Vec<(Vec<Step>, usize)> = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let err = match serde_path_to_error::deserialize::<_, T>(&v) {
            Ok(typed) => {
                let mut out = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
                for (path, _) in filled.iter().rev() {
                    remove_at(&mut out, path);
                }
                return Ok(out);
            }
            Err(e) => e,
        };
        let path = steps(err.path());
        let msg = err.inner().to_string();
        if let Some(field) = missing_field(&msg) {
            let mut full = path.clone();
            full.push(Step::Key(field.to_string()));
            set_at(&mut v, &full, ZEROS[0]());
            filled.push((full, 0));
            continue;
        }
        // A zero value we put in has the wrong type: try the next kind of zero.
        if let Some(pos) = filled.iter().position(|(p, _)| *p == path) {
            let next = filled[pos].1 + 1;
            if next < ZEROS.len() {
                set_at(&mut v, &path, ZEROS[next]());
                filled[pos].1 = next;
                continue;
            }
        }
        // Go ignores `null` for a non-pointer field: treat it as missing.
        if msg.starts_with("invalid type: null") && !path.is_empty() {
            set_at(&mut v, &path, ZEROS[0]());
            filled.push((path, 0));
            continue;
        }
        return Err(go_message(T::KIND, err.path(), &msg));
    }
    Err(format!(
        "json: too many missing required fields in {}",
        T::KIND
    ))
}

/// Fields present (and not `null`) in `original` that the typed round trip dropped, as
/// upstream's strict decoding names them: `spec.containers[0].foo`.
pub fn unknown_fields(original: &Value, decoded: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(original, decoded, "", &mut out);
    out
}

fn walk_unknown(orig: &Value, dec: &Value, prefix: &str, out: &mut Vec<String>) {
    match (orig, dec) {
        (Value::Object(o), Value::Object(d)) => {
            for (k, ov) in o {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match d.get(k) {
                    Some(dv) => walk_unknown(ov, dv, &path, out),
                    None if !ov.is_null() => out.push(path),
                    None => {}
                }
            }
        }
        (Value::Array(o), Value::Array(d)) => {
            for (i, (ov, dv)) in o.iter().zip(d).enumerate() {
                walk_unknown(ov, dv, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

fn missing_field(msg: &str) -> Option<&str> {
    msg.strip_prefix("missing field `")?.strip_suffix('`')
}

fn set_at(root: &mut Value, path: &[Step], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = root;
    for step in parents {
        cur = match (step, cur) {
            (Step::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (Step::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    match (last, cur) {
        (Step::Key(k), Value::Object(m)) => {
            m.insert(k.clone(), value);
        }
        (Step::Index(i), Value::Array(a)) if *i < a.len() => a[*i] = value,
        _ => {}
    }
}

fn remove_at(root: &mut Value, path: &[Step]) {
    let Some((Step::Key(last), parents)) = path.split_last() else {
        return;
    };
    let mut cur = root;
    for step in parents {
        cur = match (step, cur) {
            (Step::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (Step::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    if let Value::Object(m) = cur {
        m.remove(last);
    }
}

/// Renders serde's `invalid type: X, expected Y` in Go's `encoding/json` words.
fn go_message(kind: &str, path: &serde_path_to_error::Path, msg: &str) -> String {
    let field: String = path
        .iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(key.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".");
    let parsed = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "));
    match parsed {
        Some((got, expected)) if !field.is_empty() => {
            let got = go_value_kind(got);
            let ty = go_type(expected);
            format!("json: cannot unmarshal {got} into Go struct field {kind}.{field} of type {ty}")
        }
        _ if !field.is_empty() => format!("json: error decoding {kind}.{field}: {msg}"),
        _ => format!("json: {msg}"),
    }
}

fn go_value_kind(got: &str) -> String {
    if let Some(rest) = got
        .strip_prefix("integer ")
        .or_else(|| got.strip_prefix("floating point "))
    {
        return format!("number {}", rest.trim_matches('`'));
    }
    if got.starts_with("string") {
        return "string".into();
    }
    if got.starts_with("boolean") {
        return "bool".into();
    }
    match got {
        "sequence" => "array".into(),
        "map" => "object".into(),
        other => other.into(),
    }
}

fn go_type(expected: &str) -> String {
    match expected {
        "a string" => "string".into(),
        "i32" | "a 32-bit integer" => "int32".into(),
        "i64" => "int64".into(),
        "u32" => "uint32".into(),
        "f64" => "float64".into(),
        "a boolean" => "bool".into(),
        "a sequence" => "[]".into(),
        "a map" => "map[string]string".into(),
        "IntOrString" => "intstr.IntOrString".into(),
        "Quantity" => "resource.Quantity".into(),
        other => {
            let t = other
                .trim_start_matches("struct ")
                .trim_start_matches("an ")
                .trim_start_matches("a ");
            format!("v1.{t}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
    use k8s_openapi::api::events::v1::Event as EventsEvent;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use serde_json::json;

    #[test]
    fn pod_round_trip_keeps_type_meta_and_adds_nothing() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                "ports": [{"containerPort": 80}]}]}
        });
        let out = decode_as::<Pod>(pod.clone()).unwrap();
        assert_eq!(out, pod);
        assert!(unknown_fields(&pod, &out).is_empty());
    }

    #[test]
    fn deployment_and_configmap_round_trip() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}}
        });
        assert_eq!(decode_as::<Deployment>(d.clone()).unwrap(), d);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"k": "v"}});
        assert_eq!(decode_as::<ConfigMap>(cm.clone()).unwrap(), cm);
    }

    #[test]
    fn absent_type_meta_is_added_and_metadata_always_present() {
        let out = decode_as::<ConfigMap>(json!({"data": {"a": "b"}})).unwrap();
        assert_eq!(out["apiVersion"], "v1");
        assert_eq!(out["kind"], "ConfigMap");
        assert_eq!(out["metadata"], json!({}));
    }

    #[test]
    fn unknown_fields_are_dropped_and_listed() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "x"}]},
            "extra": null});
        let out = decode_as::<Pod>(pod.clone()).unwrap();
        assert!(out["metadata"].get("bogus").is_none());
        assert_eq!(
            unknown_fields(&pod, &out),
            vec![
                "metadata.bogus".to_string(),
                "spec.containers[0].imagePullPolicyy".to_string()
            ]
        );
    }

    #[test]
    fn missing_required_fields_decode_like_go_zero_values() {
        // k8s-openapi defaults most required fields itself (Go's zero value is emitted).
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"image": "i"}, {"name": null, "image": "j"}]}});
        let out = decode_as::<Pod>(pod).unwrap();
        assert_eq!(
            out["spec"]["containers"][0],
            json!({"image": "i", "name": ""})
        );
        assert_eq!(
            out["spec"]["containers"][1],
            json!({"image": "j", "name": ""})
        );
        let svc = json!({"kind": "Service", "spec": {"ports": [{"name": "http"}]}});
        assert_eq!(
            decode_as::<Service>(svc).unwrap()["spec"]["ports"][0],
            json!({"name": "http", "port": 0})
        );
        // The few it insists on (timestamps) are zero-filled for the decode and left out.
        let ev = json!({"kind": "Event", "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "e"}, "reason": "R"});
        let out = decode_as::<EventsEvent>(ev).unwrap();
        assert!(out.get("eventTime").is_none());
        assert_eq!(out["reason"], "R");
        let pdb = json!({"kind": "PodDisruptionBudget", "apiVersion": "policy/v1",
            "status": {"conditions": [{"type": "DisruptionAllowed", "status": "True",
                "reason": "x", "message": ""}]}});
        let out = decode_as::<PodDisruptionBudget>(pdb).unwrap();
        assert_eq!(out["status"]["conditions"][0]["type"], "DisruptionAllowed");
        assert!(out["status"]["conditions"][0]
            .get("lastTransitionTime")
            .is_none());
    }

    #[test]
    fn type_errors_name_the_field_like_go() {
        let d = json!({"kind": "Deployment", "spec": {"replicas": "two",
            "selector": {}, "template": {}}});
        assert_eq!(
            decode_as::<Deployment>(d).unwrap_err(),
            "json: cannot unmarshal string into Go struct field Deployment.spec.replicas of type int32"
        );
        let p = json!({"kind": "Pod", "metadata": {"name": 5}});
        assert_eq!(
            decode_as::<Pod>(p).unwrap_err(),
            "json: cannot unmarshal number 5 into Go struct field Pod.metadata.name of type string"
        );
        let p = json!({"kind": "Pod", "spec": {"containers": {"name": "x"}}});
        assert!(decode_as::<Pod>(p)
            .unwrap_err()
            .starts_with("json: cannot unmarshal object into Go struct field Pod.spec.containers"));
    }

    #[test]
    fn wrong_kind_is_rejected_by_the_typed_decoder() {
        let err = decode_as::<Pod>(json!({"kind": "Service"})).unwrap_err();
        assert!(err.contains("Service"), "{err}");
    }
}
