//! What the caches drop from objects: fields no controller reads that can be larger than the
//! rest of the object.

use std::any::Any;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Resource;

/// The annotation `kubectl apply` (client-side) writes: a full copy of the applied object.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops `metadata.managedFields` and the last-applied annotation, and releases spare
/// capacity of what remains of the annotations. Pods also lose what [`compact_pod`] drops.
pub fn compact<K: Resource + 'static>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
    if let Some(pod) = (obj as &mut dyn Any).downcast_mut::<Pod>() {
        compact_pod(pod);
    }
}

/// Drops a cached Pod's `spec.volumes` and its containers' `volumeMounts` and
/// `volumeDevices`: no in-process controller reads them (the kubelet reads its pods from the
/// API, not from these caches; nothing writes a cached Pod back), and they were the largest
/// part of a typed Pod: every pod carries the projected `kube-api-access-*` volume, and a
/// k8s-openapi `Volume` holds every volume source inline (about 40% of a cached one-container
/// pod's heap).
pub fn compact_pod(pod: &mut Pod) {
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    spec.volumes = None;
    let strip = |c: &mut Container| {
        c.volume_mounts = None;
        c.volume_devices = None;
    };
    spec.containers.iter_mut().for_each(strip);
    spec.init_containers.iter_mut().flatten().for_each(strip);
}
