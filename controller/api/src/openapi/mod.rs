//! OpenAPI documents of the served API, generated from k8s-openapi's schemas of the API types
//! (never a copied spec file):
//!
//! - [`v3_root`]: `/openapi/v3`, the index of group-version documents with content hashes;
//! - [`v3_group_version`]: `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`;
//! - [`v2`]: `/openapi/v2` (Swagger 2.0, all groups in one document).
//!
//! Definitions are named as upstream names them (`io.k8s.api.core.v1.Pod`), top-level kinds
//! carry `x-kubernetes-group-version-kind`, fields tagged for strategic merge carry
//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`, and every operation carries
//! `x-kubernetes-action` and `x-kubernetes-group-version-kind`. Write operations list
//! `dryRun`, `fieldManager` and `fieldValidation`: kubectl looks for `fieldValidation` on the
//! PATCH operation of a kind to decide whether the server validates fields itself.
//!
//! Generation takes tens of milliseconds per document; [`OpenApiCache`] generates each
//! document once per registry content and keeps only what was asked for, serialized.

mod cache;
mod kinds;
mod params;
mod paths;
pub mod proto_v2;
mod render;
mod schemas;

use serde_json::Value;
use sha2::{Digest, Sha512};

use crate::registry::Registry;
use crate::resources::ResourceInfo;
use std::sync::Arc;

pub use cache::{CachedDocument, OpenApiCache};

/// The `/openapi/v3` path of a group-version: `api/v1`, `apis/apps/v1`.
pub fn group_version_path(group: &str, version: &str) -> String {
    paths::prefix(group, version)
        .trim_start_matches('/')
        .to_string()
}

/// `api/v1` -> (``, `v1`); `apis/apps/v1` -> (`apps`, `v1`); anything else: `None`.
fn parse_group_version_path(path: &str) -> Option<(String, String)> {
    let path = path.trim_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["api", version] => Some((String::new(), version.to_string())),
        ["apis", group, version] => Some((group.to_string(), version.to_string())),
        _ => None,
    }
}

/// Upstream's document hash: sha512 of the serialized document, upper-case hex.
pub fn document_hash(bytes: &[u8]) -> String {
    Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}`
/// for every served group-version. Generates every document to hash it; servers should use
/// [`OpenApiCache::root`].
pub fn v3_root(registry: &Registry) -> Value {
    let hashes = registry
        .group_versions()
        .into_iter()
        .filter_map(|(g, v)| {
            let path = group_version_path(&g, &v);
            let doc = v3_group_version(registry, &path)?;
            let bytes = serde_json::to_vec(&doc).ok()?;
            Some((path, document_hash(&bytes)))
        })
        .collect::<Vec<_>>();
    root_from_hashes(&hashes)
}

fn root_from_hashes(hashes: &[(String, String)]) -> Value {
    let paths: serde_json::Map<String, Value> = hashes
        .iter()
        .map(|(path, hash)| {
            (
                path.clone(),
                serde_json::json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}") }),
            )
        })
        .collect();
    serde_json::json!({ "paths": paths })
}

/// The OpenAPI 3.0 document of one group-version (`api/v1`, `apis/apps/v1`; a leading `/`
/// and a query string are ignored); `None` if no resource is served there.
pub fn v3_group_version(registry: &Registry, path: &str) -> Option<Value> {
    let path = path.split('?').next().unwrap_or_default();
    let (group, version) = parse_group_version_path(path)?;
    let resources = registry.in_group_version(&group, &version);
    if resources.is_empty() {
        return None;
    }
    let served = registry.group_versions();
    Some(build(&resources, &served, schemas::Flavor::V3))
}

/// `/openapi/v2`: one Swagger 2.0 document with every served resource.
pub fn v2(registry: &Registry) -> Value {
    build(
        &registry.all(),
        &registry.group_versions(),
        schemas::Flavor::V2,
    )
}

fn build(
    resources: &[Arc<ResourceInfo>],
    served: &[(String, String)],
    flavor: schemas::Flavor,
) -> Value {
    let _span = tracing::debug_span!("openapi_generate", resources = resources.len()).entered();
    let defs = schemas::definitions(resources, served, flavor);
    let items = resources
        .iter()
        .flat_map(|r| paths::resource_paths(r))
        .collect();
    let paths = render::paths(items, flavor);
    match flavor {
        schemas::Flavor::V3 => render::document_v3(paths, defs),
        schemas::Flavor::V2 => render::document_v2(paths, defs),
    }
}

#[cfg(test)]
mod kubectl_tests;
#[cfg(test)]
mod tests;
