//! Merging a patch map into an object map, and patch lists into object lists
//! (upstream's `mergeMap`, `mergeSlice` and their helpers, with `MergeParallelList` and
//! `IgnoreUnmatchedNulls` set as the server applies patches).

use serde_json::{Map, Value};

use super::error::PatchError;
use super::gofmt::{go_sprint_lists, GoType};
use super::order;
use super::schema::{FieldMeta, Strategy, TypeMeta};

/// `$patch`: the directive key in maps and list elements.
pub(crate) const DIRECTIVE: &str = "$patch";
pub(crate) const RETAIN_KEYS: &str = "$retainKeys";
pub(crate) const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
pub(crate) const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Merges `patch` into `original` (absent = empty) for a value of type `ty`.
pub(crate) fn merge_map(
    original: Option<Map<String, Value>>,
    mut patch: Map<String, Value>,
    ty: &'static TypeMeta,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.shift_remove(DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::bad_patch_type(
                directive,
                &Value::Object(patch.clone()),
            )),
        };
    }
    let mut original = original.unwrap_or_default();
    apply_retain_keys(&mut original, &mut patch)?;
    // `$setElementOrder/<list>` with its list; both leave `patch`.
    order::merge_set_element_order(&mut original, &mut patch, ty)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?, true)
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let Some(slot) = original.get_mut(&key) else {
            if !is_delete_list {
                set_from_patch(&mut original, key, patch_value);
            }
            continue;
        };
        if GoType::of(slot) != GoType::of(&patch_value) {
            if !is_delete_list {
                set_from_patch(&mut original, key, patch_value);
            }
            continue;
        }
        let (meta, sub) = ty.field(&key);
        match (slot.take(), patch_value) {
            (Value::Object(o), Value::Object(p)) => {
                *slot = Value::Object(if meta.strategy == Strategy::Replace {
                    p
                } else {
                    merge_map(Some(o), p, sub)?
                });
            }
            (Value::Array(o), Value::Array(p)) => {
                *slot = Value::Array(merge_slice_handler(o, p, sub, meta, is_delete_list)?);
            }
            (_, scalar) => *slot = scalar,
        }
    }
    Ok(original)
}

/// A patch value for a key the object lacks (or holds with another type): the value without
/// its nulls and `$patch` maps; a value that is itself a `$patch` map removes the key.
fn set_from_patch(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_nulls(&mut value);
    match remove_directives(value) {
        Some(v) => {
            original.insert(key, v);
        }
        None => {
            original.shift_remove(&key);
        }
    }
}

/// Merges a patch list into an object list per the field's strategy: `merge` (or a
/// `$deleteFromPrimitiveList`) merges, anything else takes the patch list as it is.
pub(crate) fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    elem: &'static TypeMeta,
    meta: FieldMeta,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if meta.strategy == Strategy::Merge || is_delete_list {
        merge_slice(original, patch, elem, meta.merge_key, is_delete_list)
    } else {
        Ok(patch)
    }
}

/// Merges two lists: scalars as an ordered set (or deletes the patch's scalars for a
/// `$deleteFromPrimitiveList`), maps element by element on `merge_key`, honouring `$patch`
/// elements; then orders the result (patch order first, object order for the rest).
fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    elem: &'static TypeMeta,
    merge_key: Option<&'static str>,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_type(&[&original, &patch])?;
    if kind != GoType::Map {
        if is_delete_list {
            return Ok(delete_from_slice(original, &patch));
        }
        let mut merged = original.clone();
        merged.extend(patch.iter().cloned());
        let merged = dedup_scalars(merged);
        let (patch_items, server_only) = match merge_key {
            None => order::partition_scalars(merged, &patch),
            Some(key) => order::partition_maps(merged, &patch, key)?,
        };
        return order::normalize_element_order(
            patch_items,
            server_only,
            &patch,
            &original,
            merge_key,
            kind,
        );
    }
    let key = merge_key.ok_or(PatchError::NoDeclaredMergeKey("struct"))?;
    let (original, patch) = split_special_elements(original, patch, key)?;
    // Ordering only looks at merge keys: keep those, and merge the lists themselves.
    let server_order = order::key_view(&original, key);
    let patch_order = order::key_view(&patch, key);
    let merged = merge_elements(original, patch, key, elem)?;
    let (patch_items, server_only) = order::partition_maps(merged, &patch_order, key)?;
    order::normalize_element_order(
        patch_items,
        server_only,
        &patch_order,
        &server_order,
        merge_key,
        kind,
    )
}

/// Applies the `$patch` elements of a patch list of maps: `delete` removes the object's
/// elements with that merge key, `replace` makes the rest of the patch the whole list.
/// Returns the object list and the patch list without its `$patch` elements.
fn split_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for element in patch {
        let Some(directive) = element.get(DIRECTIVE) else {
            plain.push(element);
            continue;
        };
        match directive.as_str() {
            Some("delete") => match element.get(key) {
                Some(value) => original.retain(|e| e.get(key) != Some(value)),
                None => return Err(PatchError::no_merge_key(&element, key)),
            },
            // Keep going: later `$patch` elements are pruned too.
            Some("replace") => replace = true,
            Some("merge") => return Err(PatchError::MergeDirectiveInList),
            _ => return Err(PatchError::bad_patch_type(directive, &element)),
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Merges each patch element into the first object element with the same merge key value,
/// or appends it.
fn merge_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    elem: &'static TypeMeta,
) -> Result<Vec<Value>, PatchError> {
    for element in patch {
        let Some(value) = element.get(key) else {
            return Err(PatchError::no_merge_key(&element, key));
        };
        match order::find_by_key(&original, key, value)? {
            Some(i) => {
                let (Value::Object(o), Value::Object(p)) = (original[i].take(), element) else {
                    unreachable!("find_by_key matches maps and the element type is map")
                };
                original[i] = Value::Object(merge_map(Some(o), p, elem)?);
            }
            None => original.push(element),
        }
    }
    Ok(original)
}

/// The object's scalars minus the patch's.
fn delete_from_slice(current: Vec<Value>, to_delete: &[Value]) -> Vec<Value> {
    current
        .into_iter()
        .filter(|v| !to_delete.contains(v))
        .collect()
}

/// Removes repeated scalars, keeping each value's first position.
fn dedup_scalars(values: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// The one Go type of every element of the lists; lists of lists and mixed types are errors.
pub(crate) fn slice_element_type(lists: &[&[Value]]) -> Result<GoType, PatchError> {
    let mut seen: Option<GoType> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let t = GoType::of(v);
        match seen {
            None if t == GoType::Slice => return Err(PatchError::NoListOfLists),
            None => seen = Some(t),
            Some(prev) if prev != t => {
                return Err(PatchError::ElementTypesDiffer(go_sprint_lists(lists)))
            }
            Some(_) => {}
        }
    }
    seen.ok_or(PatchError::NoElements)
}

/// Removes maps carrying `$patch` (and the keys or elements holding them) from a value taken
/// whole from the patch; `None` if the value itself is such a map.
pub(crate) fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            let cleaned = m
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(cleaned))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Drops `null` map values at every depth (nulls have nothing to delete in a new value).
fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// The field name after `<prefix>/` in a directive key.
pub(crate) fn extract_key(key: &str, prefix: &str) -> Result<String, PatchError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field.to_string()),
        _ if prefix == SET_ELEMENT_ORDER => Err(PatchError::BadPatchFormatForSetElementOrderList),
        _ => Err(PatchError::BadPatchFormatForPrimitiveList),
    }
}

/// `$retainKeys`: checks that every field the patch sets is listed, then clears the object's
/// fields that are not.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadPatchFormatForRetainKeys);
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(PatchError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}
