//! Strategic merge patch failures, with upstream's messages and their HTTP mapping.

use serde_json::Value;

use super::gofmt::{go_sprint, go_sprint_s, go_type_name};
use crate::status::{Reason, Status};

/// A strategic merge patch that cannot be applied. Messages are upstream's (`mergepatch` and
/// `strategicpatch` errors), with Go's `%v` rendering of the offending values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The patch or the object is not a JSON object.
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// A list element is itself a list.
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// A `$deleteFromPrimitiveList/<field>` key without a field.
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    /// A `$retainKeys` directive that is not a list, or a patch field missing from it.
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    /// A malformed `$setElementOrder/<field>` directive.
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    /// A list element lacks the field's merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The element, rendered like Go's `%v`.
        map: String,
        key: String,
    },
    /// A value of the wrong JSON type where a map or a list is required.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    /// `$patch` with an unknown (or, in a map, a `merge`) directive.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType { directive: String, map: String },
    /// `$patch: merge` inside a list.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// The patch list's order contradicts its `$setElementOrder` list.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch { patch: String, order: String },
    /// A list mixes element types.
    #[error("list element types are not identical: {0}")]
    ElementTypesDiffer(String),
    /// Neither list has an element to take a type from.
    #[error("no elements in any of the given slices")]
    NoElements,
    /// A list of maps merged (or deleted from) without a declared merge key.
    #[error("cannot merge lists without merge key for {0}")]
    NoDeclaredMergeKey(&'static str),
    /// An element of a list searched by merge key is not a map.
    #[error("value for key {0} is not a map")]
    NotAMap(usize),
}

impl PatchError {
    pub(crate) fn no_merge_key(map: &Value, key: &str) -> Self {
        PatchError::NoMergeKey {
            map: go_sprint(map),
            key: key.to_string(),
        }
    }

    pub(crate) fn bad_arg_type(expected: &'static str, actual: &Value) -> Self {
        PatchError::BadArgType {
            expected,
            actual: go_type_name(actual),
        }
    }

    pub(crate) fn bad_patch_type(directive: &Value, map: &Value) -> Self {
        PatchError::BadPatchType {
            directive: go_sprint_s(directive),
            map: go_sprint(map),
        }
    }

    /// The `kind: Status` upstream's PATCH handler answers with
    /// (`interpretStrategicMergePatchError` in apiserver's `handlers/patch.go`):
    /// format errors are 400 BadRequest, lists of lists a generic 422 Invalid, and every other
    /// failure is a plain error the server reports as a 500 with its message.
    pub fn to_status(&self) -> Status {
        match self {
            PatchError::BadJsonDoc
            | PatchError::BadPatchFormatForPrimitiveList
            | PatchError::BadPatchFormatForRetainKeys
            | PatchError::BadPatchFormatForSetElementOrderList => {
                Status::bad_request(self.to_string())
            }
            PatchError::NoListOfLists => Status::new(
                Reason::Invalid,
                "the server rejected our request due to an error in our request",
            ),
            // Upstream returns these as non-Status errors: code 500 and an empty (Unknown)
            // reason; `Reason` has no Unknown, so the nearest is InternalError (same code).
            _ => Status::internal(self.to_string()),
        }
    }
}

impl From<PatchError> for Status {
    fn from(e: PatchError) -> Self {
        e.to_status()
    }
}
