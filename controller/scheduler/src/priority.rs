//! Pod priority as the Priority admission plugin would set it: `spec.priority` when the API
//! server filled it in, else the value of `spec.priorityClassName`'s PriorityClass (the two
//! built-in system classes included), else the globalDefault class, else 0.

use std::collections::HashMap;

use bramble_informer::pod::Pod;
use k8s_openapi::api::scheduling::v1::PriorityClass;

/// `system-cluster-critical`'s value.
pub const SYSTEM_CLUSTER_CRITICAL: i32 = 2_000_000_000;
/// `system-node-critical`'s value.
pub const SYSTEM_NODE_CRITICAL: i32 = 2_000_001_000;

/// Priority classes by name, plus the global default.
#[derive(Debug, Clone, Default)]
pub struct PriorityResolver {
    classes: HashMap<String, (i32, Option<String>)>,
    global_default: Option<(i32, Option<String>)>,
}

impl PriorityResolver {
    /// From the PriorityClasses in the cluster.
    pub fn new<'a>(classes: impl IntoIterator<Item = &'a PriorityClass>) -> PriorityResolver {
        let mut r = PriorityResolver::default();
        r.classes.insert(
            "system-cluster-critical".into(),
            (SYSTEM_CLUSTER_CRITICAL, None),
        );
        r.classes
            .insert("system-node-critical".into(), (SYSTEM_NODE_CRITICAL, None));
        let mut defaults: Vec<(i32, Option<String>)> = Vec::new();
        for pc in classes {
            let Some(name) = pc.metadata.name.clone() else {
                continue;
            };
            let entry = (pc.value, pc.preemption_policy.clone());
            if pc.global_default == Some(true) {
                defaults.push(entry.clone());
            }
            r.classes.insert(name, entry);
        }
        // Upstream picks the lowest value if several claim to be the default.
        r.global_default = defaults.into_iter().min_by_key(|d| d.0);
        r
    }

    /// The pod's priority.
    pub fn priority(&self, pod: &Pod) -> i32 {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        match spec
            .and_then(|s| s.priority_class_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            Some(name) => self.classes.get(name).map(|c| c.0).unwrap_or(0),
            None => self.global_default.as_ref().map(|d| d.0).unwrap_or(0),
        }
    }

    /// True when the pod (or its class) says `preemptionPolicy: Never`.
    pub fn never_preempts(&self, pod: &Pod) -> bool {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.preemption_policy.as_deref()) {
            return p == "Never";
        }
        let class = match spec
            .and_then(|s| s.priority_class_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            Some(name) => self.classes.get(name),
            None => self.global_default.as_ref(),
        };
        class.and_then(|c| c.1.as_deref()) == Some("Never")
    }
}
