//! `application/strategic-merge-patch+json`, applied the way upstream's apiserver does it
//! (apimachinery `strategicpatch.StrategicMergeMapPatch` with the kind's Go struct tags).
//!
//! - Maps merge recursively; `null` deletes a key.
//! - Lists follow the field's patch strategy ([`schema`]): `merge` lists of maps merge element
//!   by element on the merge key (`containers` by `name`, `ports` by `containerPort`, ...),
//!   `merge` lists of scalars (`finalizers`) merge as ordered sets, every other list is
//!   replaced.
//! - Directives: `$patch: replace|delete` in maps and list elements, `$patch: replace` in
//!   lists, `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`, `$retainKeys`.
//! - Custom resources have no struct tags: upstream does not serve this patch type for them
//!   and answers 415.

mod error;
mod gofmt;
mod merge;
mod order;
pub mod schema;
mod tables;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use error::PatchError;
pub use schema::{field_meta, root_for, FieldMeta, Strategy, TypeMeta};

use super::{unsupported_patch_type, CUSTOM_RESOURCE_PATCH_TYPES};
use crate::resources::ResourceInfo;
use crate::status::Status;

/// Applies a strategic merge patch to `original`, an object of the resource `info`.
///
/// Errors: 415 UnsupportedMediaType for custom resources (`info.decode` is `None`), with
/// upstream's "the body of the request was in an unknown format" message; 400 BadRequest for
/// a patch that is not a JSON object and for malformed directives; the other failures carry
/// upstream's message (see [`PatchError::to_status`]).
// `Status` is the crate's error currency; boxing it here would only move the allocation.
#[allow(clippy::result_large_err)]
pub fn apply(info: &ResourceInfo, original: &Value, patch: &Value) -> Result<Value, Status> {
    if info.decode.is_none() {
        return Err(unsupported_patch_type(&CUSTOM_RESOURCE_PATCH_TYPES));
    }
    let patch = match patch {
        Value::Object(_) => patch.clone(),
        // `null` decodes into an empty patch upstream.
        Value::Null => return Ok(original.clone()),
        other => {
            return Err(Status::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(other)
            )))
        }
    };
    apply_to(root_for(&info.group, &info.kind), original, patch).map_err(PatchError::into)
}

/// Applies `patch` to `original` with the patch metadata rooted at `root` (any
/// [`TypeMeta`], e.g. [`root_for`] of a kind). Both must be JSON objects.
pub fn apply_to(
    root: &'static TypeMeta,
    original: &Value,
    patch: Value,
) -> Result<Value, PatchError> {
    let (Value::Object(original), Value::Object(patch)) = (original, patch) else {
        return Err(PatchError::BadJsonDoc);
    };
    merge::merge_map(Some(original.clone()), patch, root).map(Value::Object)
}

/// The JSON type name Go's decoder uses in "cannot unmarshal X into" messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}
