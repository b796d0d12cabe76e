//! Server-side apply bookkeeping: the set of fields an object (or an applied configuration)
//! sets, as upstream's structured-merge-diff computes it, in the `FieldsV1` form stored in
//! `metadata.managedFields`.
//!
//! Lists are identified as upstream identifies them for built-in kinds, from the OpenAPI list
//! types ([`FieldMeta::list_type`](crate::patch::strategic::FieldMeta::list_type)): map lists
//! are keyed `k:{...}` by their `x-kubernetes-list-map-keys` (Service ports by port and
//! protocol, containers by name), sets are keyed `v:<value>`, every other list is atomic (a
//! leaf), as are the maps and structs upstream declares atomic (label selectors).
//!
//! [`crate::apply`] records the entries: `Apply` for server-side apply, `Update` for
//! creates, updates, patches and subresource writes.

mod element;
mod fieldset;

pub use element::{check_list_keys, dotted, map_element, set_element, ElementError};
pub use fieldset::{FieldSet, PathElement};
