//! What the EndpointSlice and Endpoints controllers want for one Service, as pure functions
//! of the Service and the pods of its namespace (upstream's endpointslice reconciler and
//! endpoints controller rules).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CorePort, EndpointSubset, Endpoints, ObjectReference, Service,
    ServicePort,
};

use bramble_informer::pod::Pod;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

/// `kubernetes.io/service-name`.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// `endpointslice.kubernetes.io/managed-by`.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The value upstream's controller writes.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// `service.kubernetes.io/headless`, set on slices of headless Services.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// Upstream's maximum number of endpoints per slice.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Whether the controllers manage endpoints for this Service (it has a selector and is not
/// ExternalName).
pub fn manages(svc: &Service) -> bool {
    let Some(spec) = &svc.spec else { return false };
    spec.type_.as_deref() != Some("ExternalName")
        && spec.selector.as_ref().is_some_and(|s| !s.is_empty())
}

fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn selects(svc: &Service, pod: &Pod) -> bool {
    let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    pod.metadata.namespace == svc.metadata.namespace
        && selector.iter().all(|(k, v)| {
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(k))
                .is_some_and(|pv| pv == v)
        })
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn pod_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

/// The port a Service port targets in this pod: a number, or a named container port
/// (`None` when the pod has no port of that name and protocol).
pub fn resolve_target_port(sp: &ServicePort, pod: &Pod) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let spec = pod.spec.as_ref()?;
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// One pod's endpoint with the ports it resolves to.
struct PodEndpoint<'a> {
    pod: &'a Pod,
    ip: &'a str,
    ready: bool,
    serving: bool,
    terminating: bool,
    ports: Vec<EndpointPort>,
}

fn pod_endpoints<'a>(svc: &Service, pods: &'a [Arc<Pod>]) -> Vec<PodEndpoint<'a>> {
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let service_ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut out: Vec<PodEndpoint<'a>> = Vec::new();
    for pod in pods.iter().map(|p| p.as_ref()) {
        if !selects(svc, pod) || pod_terminal(pod) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = pod_ready(pod);
        let ready = publish_not_ready || (serving && !terminating);
        let mut ports = Vec::new();
        for sp in &service_ports {
            // A pod without the named port is left out for that port, as upstream does.
            if let Some(port) = resolve_target_port(sp, pod) {
                ports.push(EndpointPort {
                    name: Some(sp.name.clone().unwrap_or_default()),
                    port: Some(port),
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                });
            }
        }
        out.push(PodEndpoint {
            pod,
            ip,
            ready,
            serving: publish_not_ready || serving,
            terminating,
            ports,
        });
    }
    out.sort_by(|a, b| a.pod.metadata.name.cmp(&b.pod.metadata.name));
    out
}

fn hostname(svc: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let host = spec.hostname.as_ref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_ref() == svc.metadata.name.as_ref()).then(|| host.clone())
}

fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

fn owner(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.metadata.name.clone().unwrap_or_default(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn short_hash(parts: &[String]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The EndpointSlices a Service should have: endpoints grouped by address family and the
/// ports they resolve to, at most [`MAX_ENDPOINTS_PER_SLICE`] per slice, named
/// deterministically `<service>-<hash>` so reconciling compares by name.
pub fn desired_slices(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSlice> {
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let mut groups: BTreeMap<(String, String), (Vec<EndpointPort>, Vec<Endpoint>)> =
        BTreeMap::new();
    for pe in pod_endpoints(svc, pods) {
        let family = if pe.ip.contains(':') { "IPv6" } else { "IPv4" };
        let key = serde_json::to_string(&pe.ports).unwrap_or_default();
        let entry = groups
            .entry((family.to_string(), key))
            .or_insert_with(|| (pe.ports.clone(), Vec::new()));
        entry.1.push(Endpoint {
            addresses: vec![pe.ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(pe.ready),
                serving: Some(pe.serving),
                terminating: Some(pe.terminating),
            }),
            hostname: hostname(svc, pe.pod),
            node_name: pe.pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(pe.pod)),
            ..Default::default()
        });
    }
    let mut labels: BTreeMap<String, String> = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(LABEL_SERVICE_NAME.into(), svc_name.clone());
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    if is_headless(svc) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    let mut slices = Vec::new();
    for ((family, key), (ports, endpoints)) in groups {
        for (i, chunk) in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE).enumerate() {
            let name = format!(
                "{svc_name}-{}",
                short_hash(&[family.clone(), key.clone(), i.to_string()])
            );
            slices.push(slice(svc, name, &labels, &family, &ports, chunk.to_vec()));
        }
    }
    if slices.is_empty() {
        // Upstream keeps one empty placeholder slice so consumers see "no endpoints".
        let ports: Vec<EndpointPort> = Vec::new();
        let name = format!("{svc_name}-{}", short_hash(&["placeholder".into()]));
        slices.push(slice(svc, name, &labels, "IPv4", &ports, Vec::new()));
    }
    slices
}

fn slice(
    svc: &Service,
    name: String,
    labels: &BTreeMap<String, String>,
    family: &str,
    ports: &[EndpointPort],
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner(svc)]),
            ..Default::default()
        },
        address_type: family.to_string(),
        endpoints,
        ports: Some(ports.to_vec()),
    }
}

/// The legacy Endpoints object of a Service (ready addresses, `notReadyAddresses`, one
/// subset per resolved port set; terminating pods left out unless publishNotReadyAddresses).
pub fn desired_endpoints(svc: &Service, pods: &[Arc<Pod>]) -> Endpoints {
    let mut subsets: BTreeMap<String, EndpointSubset> = BTreeMap::new();
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    for pe in pod_endpoints(svc, pods) {
        if pe.terminating && !publish_not_ready {
            continue;
        }
        let key = serde_json::to_string(&pe.ports).unwrap_or_default();
        let subset = subsets.entry(key).or_insert_with(|| EndpointSubset {
            ports: (!pe.ports.is_empty()).then(|| {
                pe.ports
                    .iter()
                    .map(|p| CorePort {
                        name: p.name.clone().filter(|n| !n.is_empty()),
                        port: p.port.unwrap_or_default(),
                        protocol: p.protocol.clone(),
                        app_protocol: p.app_protocol.clone(),
                    })
                    .collect()
            }),
            ..Default::default()
        });
        let addr = EndpointAddress {
            ip: pe.ip.to_string(),
            hostname: hostname(svc, pe.pod),
            node_name: pe.pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(pe.pod)),
        };
        let list = if pe.ready {
            subset.addresses.get_or_insert_with(Vec::new)
        } else {
            subset.not_ready_addresses.get_or_insert_with(Vec::new)
        };
        list.push(addr);
    }
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if is_headless(svc) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    let subsets: Vec<EndpointSubset> = subsets.into_values().collect();
    Endpoints {
        metadata: ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    }
}

#[cfg(test)]
mod tests;
