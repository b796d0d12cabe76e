//! Built-in admission: namespace lifecycle, Service address allocation and Pod Security
//! Admission.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde_json::{json, Value};

use bramble_api::{Cause, Reason, ResourceInfo, Status};
use bramble_store::ListOptions;

use crate::objects::{is_terminating, meta_str};
use crate::state::ApiState;

/// Pod Security Admission for a new pod of `namespace` (upstream's `PodSecurity` plugin,
/// levels from the namespace's `pod-security.kubernetes.io/*` labels): a 403 when its
/// enforce level refuses the pod, else the warnings of its warn level.
pub fn pod_security(state: &ApiState, namespace: &str, pod: &Value) -> Result<Vec<String>, Status> {
    use bramble_auth::pod_security::admit;
    let policy = crate::admission_pod_security::namespace_policy(state, namespace);
    let Ok(typed) = serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(pod.clone()) else {
        return Ok(Vec::new());
    };
    let name = meta_str(pod, "name")
        .or_else(|| meta_str(pod, "generateName"))
        .unwrap_or_default()
        .to_string();
    let decision = admit(&typed, &name, &policy);
    if let Some(message) = decision.forbidden {
        let mut status = Status::new(Reason::Forbidden, message);
        status.name = Some(name);
        status.kind = Some("pods".into());
        return Err(status);
    }
    Ok(decision.warnings)
}

/// Upstream's NamespaceLifecycle: no new objects in a namespace that does not exist or is
/// being terminated.
pub async fn namespace_accepts_new_content(
    state: &Arc<ApiState>,
    namespace: &str,
) -> Result<(), Status> {
    let key = format!("core/namespaces/{namespace}");
    let ns = state
        .store
        .get(&key)
        .map_err(|e| Status::internal(e.to_string()))?
        .ok_or_else(|| Status::not_found("namespaces", "", namespace))?;
    let obj: Value =
        serde_json::from_slice(&ns.value).map_err(|e| Status::internal(e.to_string()))?;
    if is_terminating(&obj) {
        let mut s = Status::new(
            Reason::Forbidden,
            format!("unable to create new content in namespace {namespace} because it is being terminated"),
        );
        s.causes = vec![Cause {
            reason: "NamespaceTerminating".into(),
            message: format!("namespace {namespace} is being terminated"),
            field: "metadata.namespace".into(),
        }];
        return Err(s);
    }
    Ok(())
}

pub fn allocates_service_addresses(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.resource == "services"
}

/// Addresses and ports held by every Service but `except` (namespace/name).
fn in_use(state: &ApiState, except: &str) -> Result<(HashSet<Ipv4Addr>, HashSet<u16>), Status> {
    let listed = state
        .store
        .list("core/services/", ListOptions::default())
        .map_err(|e| Status::internal(e.to_string()))?;
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for kv in listed.items {
        let Ok(svc) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        let id = format!(
            "{}/{}",
            meta_str(&svc, "namespace").unwrap_or(""),
            meta_str(&svc, "name").unwrap_or("")
        );
        if id == except {
            continue;
        }
        for ip in svc
            .pointer("/spec/clusterIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(Ok(addr)) = ip.as_str().map(str::parse::<Ipv4Addr>) {
                ips.insert(addr);
            }
        }
        for p in svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.get("nodePort").and_then(Value::as_u64) {
                ports.insert(n as u16);
            }
        }
    }
    Ok((ips, ports))
}

fn invalid(name: &str, field: &str, message: String) -> Status {
    Status::invalid(
        "Service",
        "",
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message,
            field: field.into(),
        }],
    )
}

/// Allocates (or keeps, on update) a Service's ClusterIP and NodePorts.
pub fn allocate_service(
    state: &ApiState,
    svc: &mut Value,
    old: Option<&Value>,
    name: &str,
) -> Result<(), Status> {
    let svc_type = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if svc_type == "ExternalName" {
        return Ok(());
    }
    let id = format!("{}/{}", meta_str(svc, "namespace").unwrap_or(""), name);
    let (used_ips, used_ports) = in_use(state, &id)?;
    if let Some(old) = old {
        carry_allocations(svc, old);
    }
    let requested = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (net, bits) = state.settings.service_cidr;
    let ip = match requested.as_str() {
        "None" => "None".to_string(),
        "" => allocate_ip(net, bits, &used_ips)
            .ok_or_else(|| Status::internal("failed to allocate a serviceIP: range is full"))?
            .to_string(),
        wanted => {
            let addr: Ipv4Addr = wanted.parse().map_err(|_| {
                invalid(
                    name,
                    "spec.clusterIPs",
                    format!("[]string{{\"{wanted}\"}}: must be a valid IP address"),
                )
            })?;
            let unchanged = old
                .and_then(|o| o.pointer("/spec/clusterIP"))
                .and_then(Value::as_str)
                == Some(wanted);
            if !unchanged {
                if !in_cidr(addr, net, bits) {
                    return Err(invalid(name, "spec.clusterIPs", format!(
                        "[]string{{\"{wanted}\"}}: failed to allocate IP {wanted}: the provided IP ({wanted}) is not in the valid range. The range of valid IPs is {net}/{bits}"
                    )));
                }
                if used_ips.contains(&addr) {
                    return Err(invalid(name, "spec.clusterIPs", format!(
                        "[]string{{\"{wanted}\"}}: failed to allocate IP {wanted}: provided IP is already allocated"
                    )));
                }
            }
            wanted.to_string()
        }
    };
    let spec = svc["spec"]
        .as_object_mut()
        .ok_or_else(|| Status::bad_request("spec must be an object"))?;
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    if ip != "None" {
        spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
        spec.entry("ipFamilyPolicy")
            .or_insert_with(|| json!("SingleStack"));
    }
    if svc_type == "NodePort" || svc_type == "LoadBalancer" {
        allocate_node_ports(state, svc, &used_ports, name)?;
    }
    Ok(())
}

/// On update, a client that omits the ClusterIP or NodePorts keeps the allocated ones.
fn carry_allocations(svc: &mut Value, old: &Value) {
    let old_ip = old
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    let new_ip = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    if new_ip.is_empty() && !old_ip.is_empty() {
        svc["spec"]["clusterIP"] = json!(old_ip);
        if let Some(ips) = old.pointer("/spec/clusterIPs") {
            svc["spec"]["clusterIPs"] = ips.clone();
        }
    }
    let old_ports: Vec<Value> = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports {
            if p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            let port = p.get("port").cloned();
            let proto = p.get("protocol").cloned();
            if let Some(n) = old_ports
                .iter()
                .find(|o| o.get("port") == port.as_ref() && o.get("protocol") == proto.as_ref())
                .and_then(|o| o.get("nodePort"))
            {
                p["nodePort"] = n.clone();
            }
        }
    }
}

fn allocate_node_ports(
    state: &ApiState,
    svc: &mut Value,
    used: &HashSet<u16>,
    name: &str,
) -> Result<(), Status> {
    let (lo, hi) = state.settings.node_port_range;
    let mut taken = used.clone();
    let ports = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut);
    for (i, p) in ports.into_iter().flatten().enumerate() {
        let field = format!("spec.ports[{i}].nodePort");
        match p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) {
            0 => {
                let span = u32::from(hi - lo) + 1;
                let offset = rand::random::<u32>() % span;
                let free = (0..span)
                    .map(|k| lo + ((offset + k) % span) as u16)
                    .find(|port| !taken.contains(port))
                    .ok_or_else(|| {
                        Status::internal("failed to allocate a nodePort: range is full")
                    })?;
                p["nodePort"] = json!(free);
                taken.insert(free);
            }
            n => {
                let n = n as u16;
                if n < lo || n > hi {
                    return Err(invalid(name, &field, format!(
                        "{n}: provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                    )));
                }
                if !taken.insert(n) {
                    return Err(invalid(
                        name,
                        &field,
                        format!("{n}: provided port is already allocated"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn in_cidr(ip: Ipv4Addr, net: Ipv4Addr, bits: u8) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(ip) & mask) == (u32::from(net) & mask)
}

/// The first free address of the dynamic band (the lowest 16 addresses are kept for static
/// assignments such as the `kubernetes` Service's `.1` and a DNS Service's `.10`).
fn allocate_ip(net: Ipv4Addr, bits: u8, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let size = 1u64 << (32 - bits);
    let base = u32::from(net);
    (16..size - 1)
        .map(|off| Ipv4Addr::from(base + off as u32))
        .find(|ip| !used.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership_and_allocation() {
        let net = Ipv4Addr::new(10, 43, 0, 0);
        assert!(in_cidr(Ipv4Addr::new(10, 43, 2, 3), net, 16));
        assert!(!in_cidr(Ipv4Addr::new(10, 44, 0, 1), net, 16));
        let mut used = HashSet::new();
        used.insert(Ipv4Addr::new(10, 43, 0, 16));
        assert_eq!(
            allocate_ip(net, 16, &used),
            Some(Ipv4Addr::new(10, 43, 0, 17))
        );
        let tiny: HashSet<_> = (16..31).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        assert_eq!(allocate_ip(Ipv4Addr::new(10, 0, 0, 0), 27, &tiny), None);
    }

    #[test]
    fn update_keeps_allocations() {
        let old = json!({"spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"], "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}]}});
        carry_allocations(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.43.0.20");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    }
}
