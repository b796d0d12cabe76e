//! List order: `$setElementOrder/<field>` directives and the ordering of merged lists
//! (upstream's `mergePatchIntoOriginal`, `normalizeElementOrder`, `mergeSortedSlice`).
//! The patch's relative order wins; elements only the object has keep their relative order
//! and are interleaved where the object had them.

use serde_json::{Map, Value};

use super::error::PatchError;
use super::gofmt::{go_sprint, GoType};
use super::merge::{
    extract_key, merge_slice_handler, remove_directives, slice_element_type, DIRECTIVE,
    SET_ELEMENT_ORDER,
};
use super::schema::{Strategy, TypeMeta};

/// Processes every `$setElementOrder/<field>` of `patch`: merges `<field>` from the patch (if
/// any) into the object, then orders the list as the directive says, objects-only elements
/// interleaved. Removes both keys from `patch`.
pub(crate) fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ty: &'static TypeMeta,
) -> Result<(), PatchError> {
    let directive_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive_key in directive_keys {
        let Some(set_order) = patch.shift_remove(&directive_key) else {
            continue;
        };
        let Value::Array(set_order) = set_order else {
            return Err(PatchError::bad_arg_type("[]interface {}", &set_order));
        };
        let field = extract_key(&directive_key, SET_ELEMENT_ORDER)?;
        // Both lists are taken out: the object's gets its merged value back below, the
        // patch's is consumed here.
        let original_list = match original.get_mut(&field) {
            None => None,
            Some(Value::Array(l)) => Some(std::mem::take(l)),
            Some(other) => return Err(PatchError::bad_arg_type("[]interface {}", other)),
        };
        let patch_list = match patch.shift_remove(&field) {
            None => None,
            Some(Value::Array(l)) => Some(l),
            Some(other) => return Err(PatchError::bad_arg_type("[]interface {}", &other)),
        };
        let (meta, elem) = ty.field(&field);
        let merge_key = meta.merge_key;
        validate_patch_with_set_order(patch_list.as_deref().unwrap_or(&[]), &set_order, merge_key)?;
        if original_list.is_none() && patch_list.is_none() {
            continue;
        }
        let (o, p) = (
            original_list.as_deref().unwrap_or(&[]),
            patch_list.as_deref().unwrap_or(&[]),
        );
        // Upstream takes the element type after merging; the merge does not change it.
        let kind = slice_element_type(&[o, p]);
        let server_order = match (merge_key, &kind) {
            (Some(key), Ok(GoType::Map))
                if meta.strategy == Strategy::Merge && !p.is_empty() && !o.is_empty() =>
            {
                aliased_server_order(o, p, key)
            }
            (Some(key), Ok(GoType::Map)) => key_view(o, key),
            _ => o.to_vec(),
        };
        let merged = match (original_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(l)) => l,
                _ => continue,
            },
            (Some(o), Some(p)) => merge_slice_handler(o, p, elem, meta, false)?,
            (None, None) => continue,
        };
        let (patch_items, server_only) = match merge_key {
            None => partition_scalars(merged, &set_order),
            Some(key) => partition_maps(merged, &set_order, key)?,
        };
        let ordered = normalize_element_order(
            patch_items,
            server_only,
            &set_order,
            &server_order,
            merge_key,
            kind?,
        )?;
        original.insert(field, Value::Array(ordered));
    }
    Ok(())
}

/// A list of maps reduced to what ordering looks at: each element's merge key (elements
/// without one are kept whole, for upstream's error message).
pub(crate) fn key_view(list: &[Value], key: &str) -> Vec<Value> {
    list.iter()
        .map(|e| match e.get(key) {
            Some(v) => {
                let mut m = Map::new();
                m.insert(key.to_string(), v.clone());
                Value::Object(m)
            }
            None => e.clone(),
        })
        .collect()
}

/// The object list as upstream's `$setElementOrder` step sees it after merging a list of
/// maps: upstream deletes elements by shifting the rest left in the same Go backing array and
/// appends new elements into the room that frees, so its view of the object list (the
/// original length over that array) ends with the first appended elements (or stale copies).
/// Object-only elements are placed by that view; the upstream test data depends on it
/// ("add map and delete map from merging list"). Only merge keys matter for placement, so
/// in-place element merges are not replayed.
fn aliased_server_order(original: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let mut backing = key_view(original, key);
    let mut len = backing.len();
    let mut replaced = false;
    for element in patch {
        match element.get(DIRECTIVE).and_then(Value::as_str) {
            Some("delete") => {
                let Some(value) = element.get(key) else {
                    return backing;
                };
                while let Some(i) = backing[..len]
                    .iter()
                    .position(|e| e.get(key) == Some(value))
                {
                    // `append(s[:i], s[i+1:]...)`: the tail moves left one slot and the old
                    // last slot keeps its value.
                    if i + 1 < len {
                        backing[i..len].rotate_left(1);
                        backing[len - 1] = backing[len - 2].clone();
                    }
                    len -= 1;
                }
            }
            Some(_) => replaced = true,
            None => {}
        }
    }
    if replaced {
        return backing;
    }
    for element in patch.iter().filter(|e| e.get(DIRECTIVE).is_none()) {
        let Some(value) = element.get(key) else {
            break;
        };
        if backing[..len].iter().any(|e| e.get(key) == Some(value)) {
            continue;
        }
        if len == backing.len() {
            // A full array: Go reallocates and the view no longer changes.
            break;
        }
        backing[len] = key_view(std::slice::from_ref(element), key).remove(0);
        len += 1;
    }
    backing
}

/// Checks that the patch list's elements (`$patch` ones aside) appear in the
/// `$setElementOrder` list in the same relative order.
fn validate_patch_with_set_order(
    patch_list: &[Value],
    set_order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if set_order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = match merge_key {
        Some(_) => {
            let mut kept = Vec::with_capacity(patch_list.len());
            for v in patch_list {
                let Value::Object(m) = v else {
                    return Err(PatchError::bad_arg_type("map[string]interface {}", v));
                };
                if m.get(DIRECTIVE).and_then(Value::as_str) != Some("delete") {
                    kept.push(v);
                }
            }
            kept
        }
        None => patch_list.iter().collect(),
    };
    let (mut pi, mut si) = (0, 0);
    while pi < non_delete.len() && si < set_order.len() {
        if non_delete[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(non_delete[pi], &set_order[si], merge_key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < non_delete.len() && si >= set_order.len() {
        return Err(PatchError::SetElementOrderMismatch {
            patch: go_sprint(&Value::Array(patch_list.to_vec())),
            order: go_sprint(&Value::Array(set_order.to_vec())),
        });
    }
    Ok(())
}

fn merge_key_value_equal(
    left: &Value,
    right: &Value,
    merge_key: Option<&str>,
) -> Result<bool, PatchError> {
    let Some(key) = merge_key else {
        return Ok(left == right);
    };
    let l = map_key(left, key)?;
    let r = map_key(right, key)?;
    Ok(l == r)
}

/// The merge key value of a list element that must be a map holding it.
fn map_key<'a>(v: &'a Value, key: &str) -> Result<&'a Value, PatchError> {
    let Value::Object(m) = v else {
        return Err(PatchError::bad_arg_type("map[string]interface {}", v));
    };
    m.get(key).ok_or_else(|| PatchError::no_merge_key(v, key))
}

/// Splits scalars into those present in `by` and the others, keeping their order.
pub(crate) fn partition_scalars(items: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    items.into_iter().partition(|v| by.contains(v))
}

/// Splits maps into those whose merge key value appears in `by` and the others.
pub(crate) fn partition_maps(
    items: Vec<Value>,
    by: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    // `None` marks an element of `by` that is not a map.
    let by_keys: Vec<Option<Option<&Value>>> = by
        .iter()
        .map(|v| v.as_object().map(|m| m.get(key)))
        .collect();
    let (mut present, mut absent) = (Vec::new(), Vec::new());
    for item in items {
        let value = map_key(&item, key)?;
        let mut found = false;
        for (i, by_key) in by_keys.iter().enumerate() {
            match by_key {
                None => return Err(PatchError::NotAMap(i)),
                Some(k) if *k == Some(value) => {
                    found = true;
                    break;
                }
                Some(_) => {}
            }
        }
        if found {
            present.push(item);
        } else {
            absent.push(item);
        }
    }
    Ok((present, absent))
}

/// Index of the first map in `list` whose `key` equals `value`; an element that is not a
/// map before the match is an error.
pub(crate) fn find_by_key(
    list: &[Value],
    key: &str,
    value: &Value,
) -> Result<Option<usize>, PatchError> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(PatchError::NotAMap(i));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Sorts the patch's elements by `patch_order` and the object-only ones by `server_order`,
/// then interleaves them.
pub(crate) fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

/// Stable sort of `items` by their position in `order` (maps by merge key); `$patch: delete`
/// maps go last.
fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let (mut items, to_delete) = if kind == GoType::Map {
        let key = merge_key.unwrap_or_default();
        for v in items.iter().chain(order) {
            map_key(v, key)?;
        }
        items
            .into_iter()
            .partition(|v| v.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"))
    } else {
        (items, Vec::new())
    };
    // Upstream's comparator only orders two elements that are both found; every element
    // sorted here is found except in malformed patches, where unfound ones keep their relative
    // order after the found ones.
    let placement = Placement::new(order, merge_key, kind);
    let mut keyed: Vec<(usize, Value)> = items
        .drain(..)
        .map(|v| (placement.position(&v).unwrap_or(usize::MAX), v))
        .collect();
    keyed.sort_by_key(|(p, _)| *p);
    let mut sorted: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    sorted.extend(to_delete);
    Ok(sorted)
}

/// Interleaves `left` (object-only elements) into `right` (patch elements): a left element
/// goes before the first right element it preceded in `server_order`.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: Option<&str>,
    kind: GoType,
) -> Vec<Value> {
    let placement = Placement::new(server_order, merge_key, kind);
    let positions = |items: &[Value]| -> Vec<Option<usize>> {
        items.iter().map(|v| placement.position(v)).collect()
    };
    let (left_pos, right_pos) = (positions(&left), positions(&right));
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter(), right.into_iter());
    let (mut i, mut j) = (0, 0);
    while i < left_pos.len() || j < right_pos.len() {
        let take_left = j >= right_pos.len()
            || (i < left_pos.len()
                && matches!((left_pos[i], right_pos[j]), (Some(li), Some(ri)) if li < ri));
        if take_left {
            out.extend(left.next());
            i += 1;
        } else {
            out.extend(right.next());
            j += 1;
        }
    }
    out
}

/// Where elements sit in an order list: by merge key value for maps (a missing key matches
/// a missing key, as upstream's `index` compares nil values), by value for scalars. The list's
/// keys are looked up once.
struct Placement<'a> {
    keys: Vec<Option<&'a Value>>,
    merge_key: &'a str,
    by_key: bool,
}

impl<'a> Placement<'a> {
    fn new(list: &'a [Value], merge_key: Option<&'a str>, kind: GoType) -> Self {
        let mut placement = Placement {
            keys: Vec::new(),
            merge_key: merge_key.unwrap_or_default(),
            by_key: kind == GoType::Map,
        };
        placement.keys = list.iter().map(|v| placement.key_of(v)).collect();
        placement
    }

    fn key_of<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        if self.by_key {
            v.as_object().and_then(|m| m.get(self.merge_key))
        } else {
            Some(v)
        }
    }

    fn position(&self, item: &Value) -> Option<usize> {
        let wanted = self.key_of(item);
        self.keys.iter().position(|k| *k == wanted)
    }
}
