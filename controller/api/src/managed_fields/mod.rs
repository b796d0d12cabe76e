//! Server-side apply bookkeeping: the set of fields an object (or an applied configuration)
//! sets, as upstream's structured-merge-diff computes it, in the `FieldsV1` form stored in
//! `metadata.managedFields`.
//!
//! Lists are identified as upstream identifies them for built-in kinds: lists with a merge
//! key (the strategic-merge-patch tag table) are maps keyed `k:{"<key>":...}`, merge lists
//! of scalars are sets keyed `v:<value>`, every other list is atomic (a leaf).
//!
//! [`crate::apply`] records the entries: `Apply` for server-side apply, `Update` for
//! creates, updates, patches and subresource writes.

mod fieldset;

pub use fieldset::{FieldSet, PathElement};
