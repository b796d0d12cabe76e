//! Label and field selectors as upstream parses and matches them (`?labelSelector=`,
//! `?fieldSelector=`, `metav1.LabelSelector` in workload specs).

pub mod field;
pub mod label;
mod names;

pub use field::{FieldRequirement, FieldSelector};
pub use label::{LabelSelector, Operator, Requirement};

use crate::status::Status;

/// Selector errors; the message is upstream's, and every one is a 400 BadRequest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector string or `metav1.LabelSelector` that does not parse, e.g.
    /// `unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt`.
    #[error("{0}")]
    Label(String),
    /// A field selector that does not parse, e.g.
    /// `invalid selector: 'a'; can't understand 'a'`.
    #[error("{0}")]
    Field(String),
    /// A field the resource does not index: `field label not supported: spec.foo`.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

impl From<SelectorError> for Status {
    fn from(e: SelectorError) -> Status {
        Status::bad_request(e.to_string())
    }
}
