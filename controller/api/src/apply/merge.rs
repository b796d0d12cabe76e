//! The merge of an applied configuration into the live object, as structured-merge-diff's
//! `Merge` does it: maps merge field by field (`null` removes), atomic lists and `replace`
//! maps (`x-kubernetes-map-type: atomic`, `replace`) are taken whole from the configuration, map lists merge element by element on their
//! list-map keys and sets on their values, keeping upstream's element order.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::managed_fields::{map_element, set_element, PathElement};
use crate::patch::strategic::schema::ListType;
use crate::patch::strategic::{FieldMeta, TypeMeta};

/// `applied` merged into `live` (`None`: absent), both values of a field with `meta` and
/// type `ty`. Elements are keyed as [`crate::managed_fields::check_list_keys`] checked.
pub fn merge(
    live: Option<&Value>,
    applied: &Value,
    meta: FieldMeta,
    ty: &'static TypeMeta,
) -> Value {
    match (live, applied) {
        (_, Value::Object(a)) if meta.atomic_map() => Value::Object(without_nulls(a)),
        (Some(Value::Object(l)), Value::Object(a)) => Value::Object(merge_map(Some(l), a, ty)),
        (_, Value::Object(a)) => Value::Object(merge_map(None, a, ty)),
        (Some(Value::Array(l)), Value::Array(a)) => match meta.list_type() {
            ListType::Atomic => applied.clone(),
            list => Value::Array(merge_list(l, a, list, ty)),
        },
        _ => applied.clone(),
    }
}

fn merge_map(
    live: Option<&Map<String, Value>>,
    applied: &Map<String, Value>,
    ty: &'static TypeMeta,
) -> Map<String, Value> {
    let mut out = live.cloned().unwrap_or_default();
    for (k, av) in applied {
        if av.is_null() {
            out.remove(k);
            continue;
        }
        let (meta, cty) = ty.field(k);
        let merged = merge(out.get(k), av, meta, cty);
        out.insert(k.clone(), merged);
    }
    out
}

fn without_nulls(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Identities of `items` (`None` for an element without one, which matches nothing).
fn identities(items: &[Value], list: ListType) -> Vec<Option<PathElement>> {
    items
        .iter()
        .map(|item| match list {
            ListType::Map(keys) => map_element(keys, item).ok(),
            _ => set_element(item).ok(),
        })
        .collect()
}

/// Upstream's list merge (`visitListItems`): live elements keep their places, elements both
/// sides share follow the configuration's order, new ones come in where the configuration
/// puts them.
fn merge_list(
    live: &[Value],
    applied: &[Value],
    list: ListType,
    ty: &'static TypeMeta,
) -> Vec<Value> {
    let lpe = identities(live, list);
    let rpe = identities(applied, list);
    let find = |pes: &[Option<PathElement>], pe: &Option<PathElement>| {
        pe.as_ref()
            .and_then(|p| pes.iter().position(|q| q.as_ref() == Some(p)))
    };
    let in_rhs = |pe: &Option<PathElement>| find(&rpe, pe).is_some();
    let mut shared = rpe.iter().filter(|pe| find(&lpe, pe).is_some());
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeSet<PathElement> = BTreeSet::new();
    let item = |pe: &Option<PathElement>, r: Option<&Value>| -> Value {
        let l = find(&lpe, pe).map(|i| &live[i]);
        match (l, r, list) {
            (_, Some(r), ListType::Map(_)) => merge(l, r, FieldMeta::default(), ty),
            (_, Some(r), _) => r.clone(),
            (Some(l), None, _) => l.clone(),
            (None, None, _) => Value::Null,
        }
    };
    let mut out = Vec::with_capacity(live.len().max(applied.len()));
    let (mut li, mut ri) = (0, 0);
    while li < live.len() || ri < applied.len() {
        if li < live.len() && ri < applied.len() {
            let pe = &lpe[li];
            if pe.is_some() && *pe == rpe[ri] {
                merged_rhs.extend(pe.clone());
                out.push(item(pe, Some(&applied[ri])));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if in_rhs(pe) && next_shared.is_some_and(|n| n != pe) {
                // shared, but not the one this round wants
                li += 1;
                continue;
            }
        }
        if li < live.len() {
            let pe = &lpe[li];
            if !in_rhs(pe) {
                out.push(live[li].clone());
                li += 1;
                continue;
            } else if pe.as_ref().is_some_and(|p| merged_rhs.contains(p)) {
                li += 1;
            }
        }
        if ri < applied.len() {
            let pe = &rpe[ri];
            merged_rhs.extend(pe.clone());
            out.push(item(pe, Some(&applied[ri])));
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::strategic::root_for;
    use serde_json::json;

    fn merged(kind: &str, live: Value, applied: Value) -> Value {
        merge(
            Some(&live),
            &applied,
            FieldMeta::default(),
            root_for("", kind),
        )
    }

    #[test]
    fn ports_merge_on_port_and_protocol() {
        let live = json!({"spec": {"ports": [
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353}]}});
        let applied = json!({"spec": {"ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}});
        assert_eq!(merged("Service", live.clone(), applied), live);
        // an element without protocol is the TCP one
        let applied = json!({"spec": {"ports": [{"port": 53, "targetPort": 53}]}});
        let out = merged("Service", live, applied);
        assert_eq!(out["spec"]["ports"][0]["targetPort"], 5353);
        assert_eq!(out["spec"]["ports"][1]["targetPort"], 53);
        assert_eq!(out["spec"]["ports"][1]["protocol"], "TCP");
    }

    #[test]
    fn order_follows_upstream() {
        let names = |v: &Value| -> Vec<String> {
            v["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        let list = |ns: &[&str]| {
            json!({"spec": {"containers":
            ns.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}})
        };
        // new elements come in where the configuration puts them; live-only ones stay put
        let out = merged("Pod", list(&["a", "x", "b"]), list(&["a", "n", "b"]));
        assert_eq!(names(&out), ["a", "x", "n", "b"]);
        // shared elements follow the configuration's order
        let out = merged("Pod", list(&["a", "b", "c"]), list(&["c", "a"]));
        assert_eq!(names(&out), ["b", "c", "a"]);
    }

    #[test]
    fn atomic_selectors_are_replaced_whole() {
        let live = json!({"spec": {"selector": {"app": "a", "tier": "fe"}}});
        let out = merged("Service", live, json!({"spec": {"selector": {"app": "b"}}}));
        assert_eq!(out["spec"]["selector"], json!({"app": "b"}));
    }

    #[test]
    fn atomic_lists_sets_and_nulls() {
        let live = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
            "spec": {"tolerations": [{"key": "k"}]}});
        let applied = json!({"metadata": {"finalizers": ["c", "a"], "labels": {"x": null}},
            "spec": {"tolerations": [{"key": "j"}]}});
        let out = merged("Pod", live, applied);
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "j"}]));
    }
}
