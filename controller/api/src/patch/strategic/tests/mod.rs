//! Strategic merge tests, drawn from upstream's documented behaviour: apimachinery's
//! `strategicpatch` test cases (on a test type like upstream's `MergeItem`), the
//! "Update API Objects in Place Using kubectl patch" task, and patches captured from the real
//! `kubectl` (`apply`, `edit`, `set image`, `set env`, `rollout restart`).

mod directives;
mod errors;
mod kinds;
mod kubectl;
mod lists;
mod order;

use serde_json::Value;

use super::schema::{merge_by, merge_retain_by, merge_set, replace, retain_keys, TypeMeta};
use super::{apply, apply_to, PatchError};
use crate::resources::ResourceInfo;
use crate::status::Status;

/// A test type shaped like upstream's `MergeItem`: every strategy on one struct.
pub(super) static MERGE_ITEM: TypeMeta = TypeMeta {
    name: "MergeItem",
    fields: &[
        merge_by("mergingList", "name", &MERGE_ITEM),
        merge_set("mergingIntList"),
        replace("replacingItem"),
        retain_keys("retainKeysMap", &RETAIN_KEYS_ITEM),
        merge_retain_by("retainKeysMergingList", "name", &MERGE_ITEM),
    ],
};

static RETAIN_KEYS_ITEM: TypeMeta = TypeMeta {
    name: "RetainKeysMergeItem",
    fields: &[
        merge_set("mergingIntList"),
        merge_by("mergingList", "name", &MERGE_ITEM),
    ],
};

/// Parses a YAML document (tests write objects and patches in YAML, like upstream's).
pub(super) fn yaml(s: &str) -> Value {
    let v: Value = serde_norway::from_str(s).expect("test YAML parses");
    if v.is_null() {
        Value::Object(Default::default())
    } else {
        v
    }
}

/// Applies a YAML patch to a YAML object with the `MergeItem` schema.
pub(super) fn merge_item(original: &str, patch: &str) -> Result<Value, PatchError> {
    apply_to(&MERGE_ITEM, &yaml(original), yaml(patch))
}

/// Asserts that patching `original` with `patch` (MergeItem schema) gives `expected`,
/// comparing list order too.
#[track_caller]
pub(super) fn check(original: &str, patch: &str, expected: &str) {
    let got = merge_item(original, patch).expect("patch applies");
    assert_eq!(
        got,
        yaml(expected),
        "\ngot:\n{}",
        serde_norway::to_string(&got).unwrap()
    );
}

fn passthrough(v: Value) -> Result<Value, String> {
    Ok(v)
}

/// A built-in resource (typed decode present).
pub(super) fn builtin(group: &str, kind: &str) -> ResourceInfo {
    ResourceInfo {
        group: group.to_string(),
        version: "v1".to_string(),
        resource: format!("{}s", kind.to_lowercase()),
        singular: kind.to_lowercase(),
        kind: kind.to_string(),
        list_kind: format!("{kind}List"),
        namespaced: true,
        short_names: Vec::new(),
        categories: Vec::new(),
        verbs: Vec::new(),
        subresources: Vec::new(),
        decode: Some(passthrough),
    }
}

/// Applies a YAML patch to a YAML object of a built-in kind through the public entry point.
#[allow(clippy::result_large_err)]
pub(super) fn apply_kind(
    group: &str,
    kind: &str,
    original: &str,
    patch: &str,
) -> Result<Value, Status> {
    apply(&builtin(group, kind), &yaml(original), &yaml(patch))
}

#[track_caller]
pub(super) fn check_kind(group: &str, kind: &str, original: &str, patch: &str, expected: &str) {
    let got = apply_kind(group, kind, original, patch).expect("patch applies");
    assert_eq!(
        got,
        yaml(expected),
        "\ngot:\n{}",
        serde_norway::to_string(&got).unwrap()
    );
}
