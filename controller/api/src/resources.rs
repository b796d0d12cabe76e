//! The resource registry: every kind Bramble serves, with its group, version, scope and names.

use serde_json::Value;

/// Round-trips an object through its typed k8s-openapi struct: checks field types and drops
/// unknown fields the way upstream's decoder does. `Err` carries a decode message.
pub type DecodeFn = fn(Value) -> Result<Value, String>;

/// One served resource (a group/version/plural), built-in or from a CRD.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group; `""` for the core group.
    pub group: String,
    pub version: String,
    /// Plural resource name used in paths (`pods`, `deployments`).
    pub resource: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    /// Subresources served under this resource (`status`, `scale`, `binding`, ...).
    pub subresources: Vec<String>,
    /// Typed round trip for built-in kinds; `None` for custom resources.
    pub decode: Option<DecodeFn>,
}

impl ResourceInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource as upstream names it in messages: `pods`, `deployments.apps`.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s == name)
    }

    /// Store key prefix for every object of this resource (all namespaces), ending in `/`.
    /// The version is not part of the key: one object, whatever version serves it.
    /// A resource stored as another's objects ([`crate::conversion`]) shares that one's keys.
    pub fn store_prefix(&self) -> String {
        let (group, resource) = match crate::conversion::storage_for(self) {
            Some(s) => (s.group, s.resource),
            None => (self.group.as_str(), self.resource.as_str()),
        };
        let group = if group.is_empty() { "core" } else { group };
        format!("{group}/{resource}/")
    }

    /// Store key prefix for one namespace (namespaced resources), ending in `/`.
    pub fn store_namespace_prefix(&self, namespace: &str) -> String {
        format!("{}{namespace}/", self.store_prefix())
    }

    /// Store key of one object.
    pub fn store_key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.store_prefix()),
            _ => format!("{}{name}", self.store_prefix()),
        }
    }
}
