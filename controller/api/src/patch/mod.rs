//! Patch mechanisms the API server applies to stored objects.
//!
//! [`strategic`] implements `application/strategic-merge-patch+json` the way upstream's
//! apimachinery `strategicpatch` package applies it server-side.

pub mod strategic;
