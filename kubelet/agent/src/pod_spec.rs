//! Reading what the kubelet needs out of a Pod: identity, restart policy, grace period,
//! requests and limits (parsed as upstream quantities), QoS class.

use bramble_api::quantity::Quantity;
use bramble_cgroups::{ContainerResources, PodResources, QosClass};
use k8s_openapi::api::core::v1::{Container, Pod};

/// Default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: i64 = 30;

/// Namespace, name and uid of a pod.
pub fn pod_ids(pod: &Pod) -> (String, String, String) {
    (
        pod.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default(),
    )
}

/// upstream `format.Pod`: `name_namespace(uid)`.
pub fn format_pod(pod: &Pod) -> String {
    let (ns, name, uid) = pod_ids(pod);
    format!("{name}_{ns}({uid})")
}

/// `spec.restartPolicy` (default `Always`).
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Whether the pod runs in the host's network namespace.
pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The app containers.
pub fn containers(pod: &Pod) -> &[Container] {
    pod.spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or(&[])
}

/// The init containers.
pub fn init_containers(pod: &Pod) -> &[Container] {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[])
}

/// Grace period for killing the pod: `metadata.deletionGracePeriodSeconds` when deleting,
/// else `spec.terminationGracePeriodSeconds`, else 30 s.
pub fn grace_seconds(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        .max(0)
}

fn quantity(c: &Container, kind: &str, name: &str) -> Result<u64, String> {
    let Some(res) = c.resources.as_ref() else {
        return Ok(0);
    };
    let list = if kind == "requests" {
        &res.requests
    } else {
        &res.limits
    };
    let Some(q) = list.as_ref().and_then(|l| l.get(name)) else {
        return Ok(0);
    };
    let parsed = Quantity::parse(&q.0).map_err(|e| {
        format!(
            "invalid {kind}.{name} quantity {:?} of container {:?}: {e}",
            q.0, c.name
        )
    })?;
    let v = if name == "cpu" {
        parsed.milli_value()
    } else {
        parsed.value()
    };
    Ok(v.max(0) as u64)
}

/// A container's requests and limits in millicores and bytes. A request defaults to its
/// limit when only the limit is set (as the API server's defaulting does).
pub fn container_resources(c: &Container) -> Result<ContainerResources, String> {
    let cpu_limit = quantity(c, "limits", "cpu")?;
    let mem_limit = quantity(c, "limits", "memory")?;
    let mut cpu_req = quantity(c, "requests", "cpu")?;
    let mut mem_req = quantity(c, "requests", "memory")?;
    if cpu_req == 0 && cpu_limit > 0 && !has_request(c, "cpu") {
        cpu_req = cpu_limit;
    }
    if mem_req == 0 && mem_limit > 0 && !has_request(c, "memory") {
        mem_req = mem_limit;
    }
    Ok(ContainerResources {
        cpu_request_milli: cpu_req,
        cpu_limit_milli: cpu_limit,
        memory_request: mem_req,
        memory_limit: mem_limit,
    })
}

fn has_request(c: &Container, name: &str) -> bool {
    c.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .is_some_and(|r| r.contains_key(name))
}

/// The pod's containers' resources, for QoS and the pod cgroup.
pub fn pod_resources(pod: &Pod) -> Result<PodResources, String> {
    Ok(PodResources {
        init_containers: init_containers(pod)
            .iter()
            .map(container_resources)
            .collect::<Result<_, _>>()?,
        containers: containers(pod)
            .iter()
            .map(container_resources)
            .collect::<Result<_, _>>()?,
    })
}

/// The QoS class: `status.qosClass` when the API server set it, else computed.
pub fn qos_class(pod: &Pod, resources: &PodResources) -> QosClass {
    match pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        Some("Guaranteed") => QosClass::Guaranteed,
        Some("BestEffort") => QosClass::BestEffort,
        Some("Burstable") => QosClass::Burstable,
        _ => resources.qos_class(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn resources_parse_quantities_and_qos() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "image": "x",
                "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}}}]}
        }));
        let r = pod_resources(&p).unwrap();
        assert_eq!(r.containers[0].cpu_limit_milli, 250);
        assert_eq!(r.containers[0].cpu_request_milli, 250);
        assert_eq!(r.containers[0].memory_limit, 64 << 20);
        assert_eq!(qos_class(&p, &r), QosClass::Guaranteed);
        assert_eq!(format_pod(&p), "p_ns(u1)");
        assert_eq!(grace_seconds(&p), 30);
        let bad = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x",
                "resources": {"limits": {"memory": "12XB"}}}]}
        }));
        assert!(pod_resources(&bad).is_err());
    }
}
