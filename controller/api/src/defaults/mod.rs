//! Defaulting of API objects as upstream Kubernetes' generated defaulters (`SetDefaults_*`,
//! v1.33) do it, on the JSON form. Server-side allocation (cluster IPs, node ports) and
//! admission (priority, default tolerations) are not defaulting and are left to the server.

mod core;
mod other;
mod pod;
mod workloads;

use serde_json::{Map, Value};

use crate::resources::ResourceInfo;

pub use pod::{default_pod_spec, default_pod_template, image_tag};

/// Applies upstream's defaults for the resource `info` to `obj`, in place.
/// Unknown kinds (custom resources) are left unchanged.
pub fn apply(info: &ResourceInfo, obj: &mut Value) {
    let _span = tracing::trace_span!("defaults", kind = %info.kind, group = %info.group).entered();
    if !obj.is_object() {
        return;
    }
    // a served version without rules of its own is defaulted as its storage version
    crate::conversion::in_rules_form(info, obj, |obj| apply_kind(info, obj));
}

fn apply_kind(info: &ResourceInfo, obj: &mut Value) {
    match (info.group.as_str(), info.kind.as_str()) {
        ("", "Pod") => pod::default_pod(obj),
        ("", "PodTemplate") => {
            if let Some(t) = obj.get_mut("template") {
                default_pod_template(t);
            }
        }
        ("", "ReplicationController") => workloads::replication_controller(obj),
        ("", "Service") => core::service(obj),
        ("", "Namespace") => core::namespace(obj),
        ("", "Secret") => core::secret(obj),
        ("", "PersistentVolume") => core::persistent_volume(obj),
        ("", "PersistentVolumeClaim") => core::persistent_volume_claim(obj),
        ("", "Endpoints") => core::endpoints(obj),
        ("", "Node") => core::node(obj),
        ("", "LimitRange") => core::limit_range(obj),
        ("apps", "Deployment") => workloads::deployment(obj),
        ("apps", "ReplicaSet") => workloads::replica_set(obj),
        ("apps", "DaemonSet") => workloads::daemon_set(obj),
        ("apps", "StatefulSet") => workloads::stateful_set(obj),
        ("batch", "Job") => workloads::job(obj),
        ("batch", "CronJob") => workloads::cron_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => other::hpa(obj),
        ("scheduling.k8s.io", "PriorityClass") => other::priority_class(obj),
        ("storage.k8s.io", "StorageClass") => other::storage_class(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            other::role_binding(obj)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => other::crd(obj),
        ("discovery.k8s.io", "EndpointSlice") => other::endpoint_slice(obj),
        ("networking.k8s.io", "NetworkPolicy") => other::network_policy(obj),
        ("networking.k8s.io", "IngressClass") => other::ingress_class(obj),
        _ => {}
    }
}

/// `obj[key]`, created as `{}` when absent or null.
pub(crate) fn child<'a>(obj: &'a mut Value, key: &str) -> &'a mut Value {
    let map = as_map(obj);
    let slot = map.entry(key.to_string()).or_insert(Value::Null);
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot
}

/// The object map of `v`, turning a non-object into `{}` first.
pub(crate) fn as_map(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("object")
}

/// Go pointer defaulting: set `key` when absent or null.
pub(crate) fn set_if_nil(obj: &mut Value, key: &str, value: Value) {
    let map = as_map(obj);
    match map.get(key) {
        Some(v) if !v.is_null() => {}
        _ => {
            map.insert(key.to_string(), value);
        }
    }
}

/// Go string defaulting: set `key` when absent, null or `""`.
pub(crate) fn set_if_empty(obj: &mut Value, key: &str, value: &str) {
    let map = as_map(obj);
    match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => {
            map.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
}

/// Each element of the array at `key`, if any.
pub(crate) fn each(obj: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) {
        for item in list.iter_mut() {
            f(item);
        }
    }
}

/// `obj[key]` if present as an object.
pub(crate) fn get_obj<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    obj.get_mut(key).filter(|v| v.is_object())
}

#[cfg(test)]
mod tests;
