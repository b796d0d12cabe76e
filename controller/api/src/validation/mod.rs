//! Validation of API objects as upstream Kubernetes (v1.33) does it, on the JSON form.
//!
//! [`validate`] returns upstream's field errors as [`Cause`]s (reason, message, field path);
//! the API server wraps a non-empty list in `Status::invalid` (422). [`validate_name`] and
//! [`validate_generate_name`] check names used in paths and `generateName` prefixes.

mod batch;
mod cluster;
mod compute;
mod config;
mod container;
mod core_other;
pub mod cron;
pub mod field;
mod meta;
pub mod names;
mod network_policy;
mod networking;
mod obj;
mod pod;
mod pod_update;
mod policy;
mod qty;
mod rbac;
mod scheduling;
mod service;
mod storage;
mod subresource;
mod volumes;
mod workloads;

use serde_json::Value;

use crate::resources::ResourceInfo;
use crate::status::Cause;

use field::ErrorList;
use meta::MetaRules;
use names::{name_rule, NameRule};

/// Validates `obj` of the resource `info`; `old` is the stored object on updates.
/// Returns upstream's causes; empty means valid.
pub fn validate(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let _span = tracing::trace_span!("validate", kind = %info.kind, group = %info.group).entered();
    // a served version without rules of its own is validated as its storage version
    let obj = crate::conversion::rules_form(info, obj);
    let old = old.map(|o| crate::conversion::rules_form(info, o));
    let (obj, old) = (obj.as_ref(), old.as_deref());
    let mut errs = ErrorList::new();
    let builtin = info.decode.is_some();
    let rules = MetaRules {
        namespaced: info.namespaced,
        name: name_rule(&info.group, &info.kind),
        kube_finalizers: builtin,
    };
    if let Some(old) = old {
        errs.extend(meta::object_meta_update(obj, old, builtin));
    }
    errs.extend(meta::object_meta(obj, rules));
    if builtin {
        errs.extend(kind_rules(&info.group, &info.kind, obj, old));
    }
    dedup(errs)
        .into_iter()
        .map(field::FieldError::into_cause)
        .collect()
}

/// Validates a write to `subresource` of `info` (`status`, `scale`, `binding`, `eviction`,
/// `ephemeralcontainers`, `approval`, `finalize`) with that subresource's own upstream rules;
/// other subresources (and an empty one) get [`validate`]'s update rules.
pub fn validate_subresource(
    info: &ResourceInfo,
    subresource: &str,
    obj: &Value,
    old: &Value,
) -> Vec<Cause> {
    let builtin = info.decode.is_some();
    let (new_form, old_form) = (
        crate::conversion::rules_form(info, obj),
        crate::conversion::rules_form(info, old),
    );
    match subresource::rules(
        &info.group,
        &info.kind,
        subresource,
        &new_form,
        &old_form,
        builtin,
    ) {
        Some(errs) => dedup(errs)
            .into_iter()
            .map(field::FieldError::into_cause)
            .collect(),
        None => validate(info, obj, Some(old)),
    }
}

/// Errors for a name used in a request path or body: path-segment rules first (names may
/// not be `.`/`..` or contain `/` or `%`), then the kind's own name format.
pub fn validate_name(info: &ResourceInfo, name: &str) -> Vec<String> {
    let seg = names::is_path_segment_name(name);
    if !seg.is_empty() {
        return seg;
    }
    name_rule(&info.group, &info.kind).check(name, false)
}

/// Errors for a `generateName` prefix (a trailing `-` is allowed).
pub fn validate_generate_name(info: &ResourceInfo, prefix: &str) -> Vec<String> {
    let seg = names::is_path_segment_prefix(prefix);
    if !seg.is_empty() {
        return seg;
    }
    name_rule(&info.group, &info.kind).check(prefix, true)
}

/// Path-segment name check alone (`path.IsValidPathSegmentName`).
pub fn validate_path_segment(name: &str) -> Vec<String> {
    names::is_path_segment_name(name)
}

fn kind_rules(group: &str, kind: &str, o: &Value, old: Option<&Value>) -> ErrorList {
    match (group, kind) {
        ("", "Pod") => {
            let mut e = pod::pod_create(o);
            match old {
                None => e.extend(pod::pod_create_only(o)),
                Some(old) => e.extend(pod_update::pod_update(o, old)),
            }
            e
        }
        ("", "PodTemplate") => {
            pod::template_spec(obj::get(o, "template"), &field::Path::new("template"))
        }
        ("", "Service") => service::service(o, old),
        ("", "Endpoints") => service::endpoints(o),
        ("", "ConfigMap") => config::config_map(o, old),
        ("", "Secret") => config::secret(o, old),
        ("", "ServiceAccount") => vec![],
        ("", "Namespace") => core_other::namespace(o),
        ("", "Node") => core_other::node(o, old),
        ("", "Event") => core_other::event(o),
        ("", "PersistentVolume") => storage::persistent_volume(o, old),
        ("", "PersistentVolumeClaim") => storage::persistent_volume_claim(o, old),
        ("", "ResourceQuota") => core_other::resource_quota(o, old),
        ("", "LimitRange") => core_other::limit_range(o),
        ("apps", "Deployment") => workloads::deployment(o, old),
        ("apps", "ReplicaSet") => workloads::replica_set(o, old),
        ("apps", "DaemonSet") => workloads::daemon_set(o, old),
        ("apps", "StatefulSet") => workloads::stateful_set(o, old),
        ("apps", "ControllerRevision") => cluster::controller_revision(o, old),
        ("batch", "Job") => batch::job(o, old),
        ("batch", "CronJob") => batch::cron_job(o, old),
        ("coordination.k8s.io", "Lease") => cluster::lease(o),
        ("storage.k8s.io", "StorageClass") => cluster::storage_class(o, old),
        ("scheduling.k8s.io", "PriorityClass") => cluster::priority_class(o, old),
        ("certificates.k8s.io", "CertificateSigningRequest") => cluster::csr(o),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => cluster::crd(o),
        ("networking.k8s.io", "Ingress") => networking::ingress(o),
        ("networking.k8s.io", "IngressClass") => networking::ingress_class(o),
        ("networking.k8s.io", "NetworkPolicy") => network_policy::network_policy(o),
        ("discovery.k8s.io", "EndpointSlice") => networking::endpoint_slice(o, old),
        ("policy", "PodDisruptionBudget") => policy::pdb(o),
        ("autoscaling", "HorizontalPodAutoscaler") => policy::hpa(o),
        ("rbac.authorization.k8s.io", "Role") => rbac::role(o, true),
        ("rbac.authorization.k8s.io", "ClusterRole") => rbac::role(o, false),
        ("rbac.authorization.k8s.io", "RoleBinding") => rbac::binding(o, old, true),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => rbac::binding(o, old, false),
        _ => vec![],
    }
}

/// Drops exact repeats (upstream runs some checks twice on update; it is the same error).
fn dedup(errs: ErrorList) -> ErrorList {
    let mut out: ErrorList = Vec::with_capacity(errs.len());
    for e in errs {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Name rule used for `metadata.name` of a kind (exposed for the API server's messages).
pub fn kind_name_rule(info: &ResourceInfo) -> NameRule {
    name_rule(&info.group, &info.kind)
}

#[cfg(test)]
mod tests;
