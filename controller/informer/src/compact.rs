//! What the caches drop from objects: fields no controller reads that can be larger than the
//! rest of the object. (Pods are cached as [`crate::pod::Pod`], which keeps only what the
//! readers use in the first place.)

use std::any::Any;

use kube::Resource;

use crate::pod::Pod;

/// The annotation `kubectl apply` (client-side) writes: a full copy of the applied object.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops `metadata.managedFields` and the last-applied annotation, and releases spare
/// capacity of what remains of the annotations. Cached Pods also release their lists' spare
/// capacity ([`Pod::shrink`]).
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
        pod.shrink();
    }
}
