//! The resource registry: every kind Bramble serves with upstream's discovery data (group,
//! version, plural, singular, kind, scope, short names, categories, verbs, subresources),
//! built-ins from [`Registry::builtin`] plus custom resources inserted at run time.

use std::sync::{Arc, RwLock};

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling,
    batch::v1 as batch, certificates::v1 as certificates, coordination::v1 as coordination,
    core::v1 as core, discovery::v1 as discovery, events::v1 as events,
    networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;

use crate::resources::{DecodeFn, ResourceInfo};
use crate::roundtrip::decode_as;

/// Verbs of an ordinary resource, in upstream discovery order.
pub const VERBS_ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces: no `deletecollection`.
const VERBS_NO_COLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const VERBS_READ: &[&str] = &["get", "list"];

struct Def {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    subresources: &'static [&'static str],
    decode: DecodeFn,
}

#[allow(clippy::too_many_arguments)]
const fn def(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
    decode: DecodeFn,
) -> Def {
    Def {
        group,
        version,
        resource,
        kind,
        namespaced,
        short,
        categories,
        verbs: VERBS_ALL,
        subresources,
        decode,
    }
}

const NS: bool = true;
const CLUSTER: bool = false;
const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];
const STATUS: &[&str] = &["status"];
const STATUS_SCALE: &[&str] = &["scale", "status"];

/// Built-ins in upstream's discovery order (core first, then groups by priority).
fn builtin_defs() -> Vec<Def> {
    vec![
        def(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            NS,
            &["cm"],
            NONE,
            NONE,
            decode_as::<core::ConfigMap>,
        ),
        def(
            "",
            "v1",
            "endpoints",
            "Endpoints",
            NS,
            &["ep"],
            NONE,
            NONE,
            decode_as::<core::Endpoints>,
        ),
        def(
            "",
            "v1",
            "events",
            "Event",
            NS,
            &["ev"],
            NONE,
            NONE,
            decode_as::<core::Event>,
        ),
        def(
            "",
            "v1",
            "limitranges",
            "LimitRange",
            NS,
            &["limits"],
            NONE,
            NONE,
            decode_as::<core::LimitRange>,
        ),
        Def {
            verbs: VERBS_NO_COLLECTION,
            ..def(
                "",
                "v1",
                "namespaces",
                "Namespace",
                CLUSTER,
                &["ns"],
                NONE,
                &["finalize", "status"],
                decode_as::<core::Namespace>,
            )
        },
        def(
            "",
            "v1",
            "nodes",
            "Node",
            CLUSTER,
            &["no"],
            NONE,
            &["proxy", "status"],
            decode_as::<core::Node>,
        ),
        def(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            NS,
            &["pvc"],
            NONE,
            STATUS,
            decode_as::<core::PersistentVolumeClaim>,
        ),
        def(
            "",
            "v1",
            "persistentvolumes",
            "PersistentVolume",
            CLUSTER,
            &["pv"],
            NONE,
            STATUS,
            decode_as::<core::PersistentVolume>,
        ),
        def(
            "",
            "v1",
            "pods",
            "Pod",
            NS,
            &["po"],
            ALL,
            &[
                "attach",
                "binding",
                "ephemeralcontainers",
                "eviction",
                "exec",
                "log",
                "portforward",
                "proxy",
                "resize",
                "status",
            ],
            decode_as::<core::Pod>,
        ),
        def(
            "",
            "v1",
            "resourcequotas",
            "ResourceQuota",
            NS,
            &["quota"],
            NONE,
            STATUS,
            decode_as::<core::ResourceQuota>,
        ),
        def(
            "",
            "v1",
            "secrets",
            "Secret",
            NS,
            NONE,
            NONE,
            NONE,
            decode_as::<core::Secret>,
        ),
        def(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            NS,
            &["sa"],
            NONE,
            &["token"],
            decode_as::<core::ServiceAccount>,
        ),
        def(
            "",
            "v1",
            "services",
            "Service",
            NS,
            &["svc"],
            ALL,
            &["proxy", "status"],
            decode_as::<core::Service>,
        ),
        Def {
            verbs: VERBS_READ,
            ..def(
                "",
                "v1",
                "componentstatuses",
                "ComponentStatus",
                CLUSTER,
                &["cs"],
                NONE,
                NONE,
                decode_as::<core::ComponentStatus>,
            )
        },
        def(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            NS,
            NONE,
            NONE,
            NONE,
            decode_as::<apps::ControllerRevision>,
        ),
        def(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            NS,
            &["ds"],
            ALL,
            STATUS,
            decode_as::<apps::DaemonSet>,
        ),
        def(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            NS,
            &["deploy"],
            ALL,
            STATUS_SCALE,
            decode_as::<apps::Deployment>,
        ),
        def(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            NS,
            &["rs"],
            ALL,
            STATUS_SCALE,
            decode_as::<apps::ReplicaSet>,
        ),
        def(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            NS,
            &["sts"],
            ALL,
            STATUS_SCALE,
            decode_as::<apps::StatefulSet>,
        ),
        def(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            NS,
            &["ev"],
            NONE,
            NONE,
            decode_as::<events::Event>,
        ),
        def(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            NS,
            &["hpa"],
            ALL,
            STATUS,
            decode_as::<autoscaling::HorizontalPodAutoscaler>,
        ),
        // served too, after v2 so that v2 stays the preferred version (as upstream); stored
        // as v2 objects (`conversion::hpa`)
        def(
            "autoscaling",
            "v1",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            NS,
            &["hpa"],
            ALL,
            STATUS,
            decode_as::<autoscaling_v1::HorizontalPodAutoscaler>,
        ),
        def(
            "batch",
            "v1",
            "cronjobs",
            "CronJob",
            NS,
            &["cj"],
            ALL,
            STATUS,
            decode_as::<batch::CronJob>,
        ),
        def(
            "batch",
            "v1",
            "jobs",
            "Job",
            NS,
            NONE,
            ALL,
            STATUS,
            decode_as::<batch::Job>,
        ),
        def(
            "certificates.k8s.io",
            "v1",
            "certificatesigningrequests",
            "CertificateSigningRequest",
            CLUSTER,
            &["csr"],
            NONE,
            &["approval", "status"],
            decode_as::<certificates::CertificateSigningRequest>,
        ),
        def(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "IngressClass",
            CLUSTER,
            NONE,
            NONE,
            NONE,
            decode_as::<networking::IngressClass>,
        ),
        def(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            NS,
            &["ing"],
            NONE,
            STATUS,
            decode_as::<networking::Ingress>,
        ),
        def(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            NS,
            &["netpol"],
            NONE,
            NONE,
            decode_as::<networking::NetworkPolicy>,
        ),
        def(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            NS,
            &["pdb"],
            NONE,
            STATUS,
            decode_as::<policy::PodDisruptionBudget>,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            CLUSTER,
            NONE,
            NONE,
            NONE,
            decode_as::<rbac::ClusterRoleBinding>,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            CLUSTER,
            NONE,
            NONE,
            NONE,
            decode_as::<rbac::ClusterRole>,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            NS,
            NONE,
            NONE,
            NONE,
            decode_as::<rbac::RoleBinding>,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            NS,
            NONE,
            NONE,
            NONE,
            decode_as::<rbac::Role>,
        ),
        def(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            CLUSTER,
            &["sc"],
            NONE,
            NONE,
            decode_as::<storage::StorageClass>,
        ),
        def(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            CLUSTER,
            &["crd", "crds"],
            &["api-extensions"],
            STATUS,
            decode_as::<apiextensions::CustomResourceDefinition>,
        ),
        def(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "PriorityClass",
            CLUSTER,
            &["pc"],
            NONE,
            NONE,
            decode_as::<scheduling::PriorityClass>,
        ),
        def(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            NS,
            NONE,
            NONE,
            NONE,
            decode_as::<coordination::Lease>,
        ),
        def(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            NS,
            NONE,
            NONE,
            NONE,
            decode_as::<discovery::EndpointSlice>,
        ),
    ]
}

impl From<Def> for ResourceInfo {
    fn from(d: Def) -> ResourceInfo {
        let strings = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        ResourceInfo {
            group: d.group.to_string(),
            version: d.version.to_string(),
            resource: d.resource.to_string(),
            singular: d.kind.to_lowercase(),
            kind: d.kind.to_string(),
            list_kind: format!("{}List", d.kind),
            namespaced: d.namespaced,
            short_names: strings(d.short),
            categories: strings(d.categories),
            verbs: strings(d.verbs),
            subresources: strings(d.subresources),
            decode: Some(d.decode),
        }
    }
}

/// The served resources, shared as `Arc<Registry>`; custom resources are inserted and
/// removed at run time (interior mutability).
#[derive(Debug, Default)]
pub struct Registry {
    entries: RwLock<Vec<Arc<ResourceInfo>>>,
}

impl Registry {
    /// A registry with no resources.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// Every built-in kind of the feature map, with upstream's discovery data.
    pub fn builtin() -> Registry {
        let entries = builtin_defs()
            .into_iter()
            .map(|d| Arc::new(ResourceInfo::from(d)))
            .collect();
        Registry {
            entries: RwLock::new(entries),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<ResourceInfo>>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The resource served at `group/version/resource` (plural).
    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceInfo>> {
        self.read()
            .iter()
            .find(|r| r.group == group && r.version == version && r.resource == resource)
            .cloned()
    }

    /// The resource of a kind in an `apiVersion` (`v1`, `apps/v1`).
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = split_api_version(api_version);
        self.read()
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    /// The resources of a kind in a group, any version.
    pub fn find_group_kind(&self, group: &str, kind: &str) -> Vec<Arc<ResourceInfo>> {
        self.read()
            .iter()
            .filter(|r| r.group == group && r.kind == kind)
            .cloned()
            .collect()
    }

    /// Resolves a name as kubectl types it: plural, singular, short name or kind (case
    /// insensitive), optionally qualified by a group (`deployments.apps`, `deploy.apps`).
    /// Core resources come first, then groups in discovery order.
    pub fn by_short_or_plural(&self, name: &str) -> Vec<Arc<ResourceInfo>> {
        let lower = name.to_lowercase();
        let (base, group) = match lower.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (lower.clone(), None),
        };
        self.read()
            .iter()
            .filter(|r| group.as_deref().is_none_or(|g| r.group == g))
            .filter(|r| {
                r.resource == base
                    || r.singular == base
                    || r.kind.to_lowercase() == base
                    || r.short_names.contains(&base)
            })
            .cloned()
            .collect()
    }

    /// Every served group/version, in discovery order (`("", "v1")` first).
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in self.read().iter() {
            let gv = (r.group.clone(), r.version.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }

    /// The resources of one group/version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.read()
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .cloned()
            .collect()
    }

    /// Every resource.
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.read().clone()
    }

    /// Adds or replaces (same group/version/resource) a resource, e.g. a CRD's version.
    pub fn insert(&self, info: ResourceInfo) -> Arc<ResourceInfo> {
        let info = Arc::new(info);
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match entries.iter_mut().find(|r| {
            r.group == info.group && r.version == info.version && r.resource == info.resource
        }) {
            Some(slot) => *slot = info.clone(),
            None => entries.push(info.clone()),
        }
        info
    }

    /// Removes a resource; returns it if it was there.
    pub fn remove(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceInfo>> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let pos = entries
            .iter()
            .position(|r| r.group == group && r.version == version && r.resource == resource)?;
        Some(entries.remove(pos))
    }
}

/// `apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
