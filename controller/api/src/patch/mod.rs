//! Patch mechanisms the API server applies to stored objects.
//!
//! [`strategic`] implements `application/strategic-merge-patch+json` the way upstream's
//! apimachinery `strategicpatch` package applies it server-side. This module also holds the
//! patch media types upstream accepts per resource and its 415 for the others.

pub mod strategic;

use crate::resources::ResourceInfo;
use crate::status::{Reason, Status};

/// `application/strategic-merge-patch+json`.
pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";

/// Patch media types of built-in resources, in upstream's order (apiserver `installer.go`).
pub const BUILTIN_PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    STRATEGIC_MERGE_PATCH,
    "application/apply-patch+yaml",
];

/// Patch media types of custom resources (apiextensions' `customresource_handler.go`): no
/// strategic merge patch, as custom resources have no patch-strategy tags.
pub const CUSTOM_RESOURCE_PATCH_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// The patch media types upstream accepts for `info` (custom resources have `decode: None`).
pub fn supported_patch_types(info: &ResourceInfo) -> &'static [&'static str] {
    if info.decode.is_some() {
        &BUILTIN_PATCH_TYPES
    } else {
        &CUSTOM_RESOURCE_PATCH_TYPES
    }
}

/// Upstream's 415 for a PATCH whose Content-Type is not one of `accepted`.
pub fn unsupported_patch_type(accepted: &[&str]) -> Status {
    Status::new(
        Reason::UnsupportedMediaType,
        format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        ),
    )
}
