//! Paths of a [`FieldSet`] and their values in objects: lookup and removal (list elements
//! found by their identity under the kind's list types), dotted form.

use serde_json::Value;

use crate::managed_fields::{map_element, set_element, FieldSet, PathElement};
use crate::patch::strategic::schema::ListType;
use crate::patch::strategic::{FieldMeta, TypeMeta};

/// Every leaf path of `set` (members without children).
pub fn leaves(set: &FieldSet) -> Vec<Vec<PathElement>> {
    let mut out = Vec::new();
    walk(set, &mut Vec::new(), &mut out, false);
    out
}

/// The outermost member paths of `set`: removing them removes the whole set from an object
/// (a list element that is a member goes as a whole, as upstream's `RemoveItems`).
pub fn outermost(set: &FieldSet) -> Vec<Vec<PathElement>> {
    let mut out = Vec::new();
    walk(set, &mut Vec::new(), &mut out, true);
    out
}

fn walk(
    set: &FieldSet,
    prefix: &mut Vec<PathElement>,
    out: &mut Vec<Vec<PathElement>>,
    outermost: bool,
) {
    if set.member && (outermost || set.children.is_empty()) {
        out.push(prefix.clone());
        if outermost {
            return;
        }
    }
    for (k, v) in &set.children {
        prefix.push(k.clone());
        walk(v, prefix, out, outermost);
        prefix.pop();
    }
}

/// A set holding exactly `path`.
pub fn single(path: &[PathElement]) -> FieldSet {
    let mut set = FieldSet::leaf();
    for pe in path.iter().rev() {
        let mut parent = FieldSet::default();
        parent.children.insert(pe.clone(), set);
        set = parent;
    }
    set
}

/// Upstream's dotted form: `.spec.containers[name="c"].image`.
pub fn dotted(path: &[PathElement]) -> String {
    crate::managed_fields::dotted(path)
}

/// Where one path element leads inside a value.
enum Slot {
    Field(String),
    Index(usize),
}

/// The slot `pe` names in `v` (a value of a field with `meta` and type `ty`), and the
/// metadata and type of what it holds. List elements are found by their identity under the
/// list's type; a path of another list type (an entry written under other list keys) finds
/// nothing.
fn locate(
    v: &Value,
    meta: FieldMeta,
    ty: &'static TypeMeta,
    pe: &PathElement,
) -> Option<(Slot, FieldMeta, &'static TypeMeta)> {
    match pe {
        PathElement::Field(f) => {
            v.as_object()?.get(f)?;
            let (m, t) = ty.field(f);
            Some((Slot::Field(f.clone()), m, t))
        }
        PathElement::Key(_) => {
            let ListType::Map(keys) = meta.list_type() else {
                return None;
            };
            let i = v
                .as_array()?
                .iter()
                .position(|item| map_element(keys, item).ok().as_ref() == Some(pe))?;
            Some((Slot::Index(i), FieldMeta::default(), ty))
        }
        PathElement::Value(_) => {
            let i = v
                .as_array()?
                .iter()
                .position(|item| set_element(item).ok().as_ref() == Some(pe))?;
            Some((Slot::Index(i), FieldMeta::default(), ty))
        }
    }
}

fn get<'a>(v: &'a Value, slot: &Slot) -> Option<&'a Value> {
    match slot {
        Slot::Field(f) => v.get(f),
        Slot::Index(i) => v.get(*i),
    }
}

fn get_mut<'a>(v: &'a mut Value, slot: &Slot) -> Option<&'a mut Value> {
    match slot {
        Slot::Field(f) => v.get_mut(f),
        Slot::Index(i) => v.get_mut(*i),
    }
}

/// The value at `path` in `obj`, an object (or applied configuration) whose kind's root type
/// is `root`.
pub fn lookup<'a>(
    root: &'static TypeMeta,
    obj: &'a Value,
    path: &[PathElement],
) -> Option<&'a Value> {
    let (mut meta, mut ty, mut cur) = (FieldMeta::default(), root, obj);
    for pe in path {
        let (slot, m, t) = locate(cur, meta, ty, pe)?;
        cur = get(cur, &slot)?;
        (meta, ty) = (m, t);
    }
    Some(cur)
}

/// Removes the value at `path` from `obj` (nothing when absent).
pub fn remove(root: &'static TypeMeta, obj: &mut Value, path: &[PathElement]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let (mut meta, mut ty, mut cur) = (FieldMeta::default(), root, obj);
    for pe in parents {
        let Some((slot, m, t)) = locate(cur, meta, ty, pe) else {
            return;
        };
        let Some(next) = get_mut(cur, &slot) else {
            return;
        };
        (meta, ty, cur) = (m, t, next);
    }
    match locate(cur, meta, ty, last) {
        Some((Slot::Field(f), _, _)) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(&f);
            }
        }
        Some((Slot::Index(i), _, _)) => {
            if let Some(a) = cur.as_array_mut() {
                a.remove(i);
            }
        }
        None => {}
    }
}
