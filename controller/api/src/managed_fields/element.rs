//! The identity of a list element as structured-merge-diff computes it: `k:{...}` from the
//! `x-kubernetes-list-map-keys` of a map list (a key field the element omits takes its
//! schema default), `v:<value>` for an element of a set.

use serde_json::Value;

use super::PathElement;
use crate::patch::strategic::schema::{ListType, MapKeys};
use crate::patch::strategic::{root_for, FieldMeta, TypeMeta};

/// Why an element has no identity (upstream's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElementError {
    #[error("associative list with keys may not have non-map elements")]
    NotMap,
    #[error("associative list with keys has an element that omits key field {0:?} (and doesn't have default value)")]
    MissingKey(&'static str),
    #[error("associative list without keys has an element that's a map type")]
    MapInSet,
    #[error("not supported: associative list with lists as elements")]
    ListInSet,
}

/// `k:{...}` of `item` in a map list keyed by `keys`. The key fields are ordered by name and
/// serialized as compact JSON, as upstream's `fieldpath` does (`{"port":53,"protocol":"UDP"}`).
pub fn map_element(keys: MapKeys, item: &Value) -> Result<PathElement, ElementError> {
    let Value::Object(m) = item else {
        return Err(ElementError::NotMap);
    };
    let mut fields: Vec<(&str, Value)> = Vec::new();
    for k in keys.keys() {
        let v = match (m.get(k.name), k.default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => Value::String(d.to_string()),
            (None, None) => return Err(ElementError::MissingKey(k.name)),
        };
        fields.push((k.name, v));
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::String((*k).to_string())))
        .collect();
    Ok(PathElement::Key(format!("{{{}}}", body.join(","))))
}

/// `v:<value>` of `item` in a set.
pub fn set_element(item: &Value) -> Result<PathElement, ElementError> {
    match item {
        Value::Object(_) => Err(ElementError::MapInSet),
        Value::Array(_) => Err(ElementError::ListInSet),
        scalar => Ok(PathElement::Value(scalar.to_string())),
    }
}

/// Checks that every element of the map lists and sets in `obj` (an applied configuration of
/// built-in kind `group`/`kind`) has an identity and that no two share one, as upstream's
/// conversion of an apply patch to a typed value does. The error is upstream's text:
/// `.spec.ports: element 0: associative list with keys has an element that omits key field
/// "port" (and doesn't have default value)`, `.spec.ports: duplicate entries for key
/// [port=53,protocol="TCP"]`; several are listed under `errors:`.
pub fn check_list_keys(group: &str, kind: &str, obj: &Value) -> Result<(), String> {
    let mut errs = Vec::new();
    check(
        obj,
        FieldMeta::default(),
        root_for(group, kind),
        &mut Vec::new(),
        &mut errs,
    );
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(format!("errors:\n  {}", errs.join("\n  "))),
    }
}

fn check(
    v: &Value,
    meta: FieldMeta,
    ty: &'static TypeMeta,
    path: &mut Vec<PathElement>,
    errs: &mut Vec<String>,
) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let (cmeta, cty) = ty.field(k);
                path.push(PathElement::Field(k.clone()));
                check(child, cmeta, cty, path, errs);
                path.pop();
            }
        }
        Value::Array(items) => {
            let list = meta.list_type();
            if list == ListType::Atomic {
                return;
            }
            let at = dotted(path);
            let mut seen: Vec<PathElement> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let pe = match list {
                    ListType::Map(keys) => map_element(keys, item),
                    _ => set_element(item),
                };
                let pe = match pe {
                    Ok(pe) => pe,
                    Err(e) => {
                        errs.push(format!("{at}: element {i}: {e}"));
                        continue;
                    }
                };
                if seen.contains(&pe) {
                    let key = dotted(std::slice::from_ref(&pe));
                    errs.push(format!("{at}: duplicate entries for key {key}"));
                    continue;
                }
                seen.push(pe.clone());
                if matches!(list, ListType::Map(_)) {
                    path.push(pe);
                    check(item, FieldMeta::default(), ty, path, errs);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

/// Upstream's dotted form of a path (`.spec.ports[port=53,protocol="UDP"].name`).
pub fn dotted(path: &[PathElement]) -> String {
    path.iter().map(PathElement::dotted).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::strategic::schema::ListMapKey;
    use serde_json::json;

    const PORTS: MapKeys = MapKeys::Keys(&[
        ListMapKey {
            name: "protocol",
            default: Some("TCP"),
        },
        ListMapKey {
            name: "port",
            default: None,
        },
    ]);

    #[test]
    fn keys_sorted_by_name_and_defaulted() {
        let pe = map_element(
            PORTS,
            &json!({"protocol": "UDP", "port": 53, "name": "dns"}),
        );
        assert_eq!(
            pe.unwrap().key(),
            r#"k:{"port":53,"protocol":"UDP"}"#,
            "upstream sorts the key fields by name"
        );
        let pe = map_element(PORTS, &json!({"port": 80}));
        assert_eq!(pe.unwrap().key(), r#"k:{"port":80,"protocol":"TCP"}"#);
        assert_eq!(
            map_element(PORTS, &json!({"protocol": "TCP"})),
            Err(ElementError::MissingKey("port"))
        );
        assert_eq!(
            map_element(MapKeys::MergeKey("name"), &json!("x")),
            Err(ElementError::NotMap)
        );
        assert_eq!(set_element(&json!("a/b")).unwrap().key(), r#"v:"a/b""#);
        assert_eq!(set_element(&json!({})), Err(ElementError::MapInSet));
    }

    #[test]
    fn applied_lists_need_keys_and_no_duplicates() {
        let svc = json!({"spec": {"ports": [
            {"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}, {"port": 53}]}});
        assert_eq!(
            check_list_keys("", "Service", &svc),
            Err(r#".spec.ports: duplicate entries for key [port=53,protocol="TCP"]"#.into())
        );
        let pod = json!({"spec": {"topologySpreadConstraints": [{"topologyKey": "zone"}],
            "containers": [{"name": "c", "ports": [{"protocol": "UDP"}]}]}});
        let err = check_list_keys("", "Pod", &pod).unwrap_err();
        assert_eq!(
            err,
            "errors:\n  .spec.topologySpreadConstraints: element 0: associative list with keys has \
             an element that omits key field \"whenUnsatisfiable\" (and doesn't have default value)\n  \
             .spec.containers[name=\"c\"].ports: element 0: associative list with keys has an \
             element that omits key field \"containerPort\" (and doesn't have default value)"
        );
        let ok = json!({"spec": {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]},
            "metadata": {"finalizers": ["a", "b"]}});
        assert_eq!(check_list_keys("", "Service", &ok), Ok(()));
    }
}
