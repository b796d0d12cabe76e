//! Leaf paths of a [`FieldSet`] and their values in objects: lookup, removal, dotted form.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::managed_fields::{FieldSet, PathElement};

/// Every member path of `set` (leaves and members with children).
pub fn leaves(set: &FieldSet) -> Vec<Vec<PathElement>> {
    let mut out = Vec::new();
    walk(set, &mut Vec::new(), &mut out);
    out
}

fn walk(set: &FieldSet, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
    if set.member && set.children.is_empty() {
        out.push(prefix.clone());
    }
    for (k, v) in &set.children {
        prefix.push(k.clone());
        walk(v, prefix, out);
        prefix.pop();
    }
}

/// A set holding exactly `path`.
pub fn single(path: &[PathElement]) -> FieldSet {
    let mut set = FieldSet {
        member: true,
        children: BTreeMap::new(),
    };
    for pe in path.iter().rev() {
        let mut parent = FieldSet::default();
        parent.children.insert(pe.clone(), set);
        set = parent;
    }
    set
}

/// Upstream's dotted form: `.spec.containers[name="c"].image`.
pub fn dotted(path: &[PathElement]) -> String {
    let mut set = single(path);
    set.member = false;
    set.leaf_paths().pop().unwrap_or_default()
}

fn step<'a>(v: &'a Value, pe: &PathElement) -> Option<&'a Value> {
    match pe {
        PathElement::Field(f) => v.as_object()?.get(f),
        PathElement::Key(k) => {
            let keys: Map<String, Value> = serde_json::from_str(k).ok()?;
            v.as_array()?
                .iter()
                .find(|item| keys.iter().all(|(kk, kv)| item.get(kk) == Some(kv)))
        }
        PathElement::Value(s) => {
            let want: Value = serde_json::from_str(s).ok()?;
            v.as_array()?.iter().find(|item| **item == want)
        }
    }
}

/// The value at `path` in `obj`.
pub fn lookup<'a>(obj: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, pe| step(v, pe))
}

/// Removes the value at `path` from `obj` (nothing when absent).
pub fn remove(obj: &mut Value, path: &[PathElement]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for pe in parents {
        let next = match pe {
            PathElement::Field(f) => cur.as_object_mut().and_then(|m| m.get_mut(f)),
            PathElement::Key(_) | PathElement::Value(_) => {
                let idx = index_of(cur, pe);
                match (idx, cur.as_array_mut()) {
                    (Some(i), Some(a)) => a.get_mut(i),
                    _ => None,
                }
            }
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        PathElement::Field(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        pe => {
            if let Some(i) = index_of(cur, pe) {
                if let Some(a) = cur.as_array_mut() {
                    a.remove(i);
                }
            }
        }
    }
}

fn index_of(list: &Value, pe: &PathElement) -> Option<usize> {
    let found = step(list, pe)?;
    list.as_array()?.iter().position(|i| std::ptr::eq(i, found))
}
