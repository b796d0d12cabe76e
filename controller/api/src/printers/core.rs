//! Printers of core/v1 kinds other than Pod and Event: Node, Namespace, Service,
//! Endpoints, ConfigMap, Secret, ServiceAccount, PersistentVolume(Claim), ResourceQuota,
//! ComponentStatus.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::descriptions as d;
use super::format::{
    access_modes, age, arr_at, at, bool_at, deleting, format_labels, int_at, len_at, name, opt_str,
    quantity, s, str_at,
};
use super::{col, wide, Ctx, Printer, Row, AGE, NAME};

const LABEL_NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const LABEL_NODE_ROLE: &str = "kubernetes.io/role";
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// Upstream `loadBalancerWidth`: external addresses are clipped to it outside `-o wide`.
const LOAD_BALANCER_WIDTH: usize = 16;

pub(crate) const NODE: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "The status of the node"),
        col("Roles", "The roles of the node"),
        AGE,
        col("Version", d::NODE_KUBELET_VERSION),
        wide("Internal-IP", d::NODE_ADDRESSES),
        wide("External-IP", d::NODE_ADDRESSES),
        wide("OS-Image", d::NODE_OS_IMAGE),
        wide("Kernel-Version", d::NODE_KERNEL),
        wide("Container-Runtime", d::NODE_RUNTIME),
    ],
    row: node_row,
};

fn node_row(node: &Value, ctx: &Ctx) -> Row {
    // Upstream keeps the last condition of each type and reports only Ready.
    let ready = arr_at(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "/type") == "Ready");
    let mut status: Vec<&str> = match ready {
        Some(c) if str_at(c, "/status") == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if bool_at(node, "/spec/unschedulable") {
        status.push("SchedulingDisabled");
    }
    let mut roles = BTreeSet::new();
    if let Some(labels) = at(node, "/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix(LABEL_NODE_ROLE_PREFIX) {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == LABEL_NODE_ROLE {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };
    let address = |kind: &str| {
        arr_at(node, "/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type") == kind)
            .map(|a| str_at(a, "/address"))
            .unwrap_or("<none>")
            .to_string()
    };
    let info = |field: &str| {
        opt_str(node, &format!("/status/nodeInfo/{field}"))
            .unwrap_or("<unknown>")
            .to_string()
    };
    vec![
        name(node),
        s(status.join(",")),
        s(roles),
        age(node, ctx),
        s(str_at(node, "/status/nodeInfo/kubeletVersion")),
        s(address("InternalIP")),
        s(address("ExternalIP")),
        s(info("osImage")),
        s(info("kernelVersion")),
        s(info("containerRuntimeVersion")),
    ]
    .into()
}

pub(crate) const NAMESPACE: Printer = Printer {
    columns: &[NAME, col("Status", "The status of the namespace"), AGE],
    row: |ns, ctx| vec![name(ns), s(str_at(ns, "/status/phase")), age(ns, ctx)].into(),
};

pub(crate) const SERVICE: Printer = Printer {
    columns: &[
        NAME,
        col("Type", d::SVC_TYPE),
        col("Cluster-IP", d::SVC_CLUSTER_IP),
        col("External-IP", d::SVC_EXTERNAL_IPS),
        col("Port(s)", d::SVC_PORTS),
        AGE,
        wide("Selector", d::SVC_SELECTOR),
    ],
    row: service_row,
};

/// Upstream `loadBalancerStatusStringer`: sorted, de-duplicated IPs (or hostnames).
pub(crate) fn load_balancer_addresses(ingress: &[Value], wide: bool) -> String {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| opt_str(i, "/ip").or_else(|| opt_str(i, "/hostname")))
        .collect();
    let mut r = set.into_iter().collect::<Vec<_>>().join(",");
    if !wide && r.len() > LOAD_BALANCER_WIDTH {
        r.truncate(LOAD_BALANCER_WIDTH - 3);
        r.push_str("...");
    }
    r
}

fn external_ip(svc: &Value, svc_type: &str, wide: bool) -> String {
    let external: Vec<&str> = arr_at(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match svc_type {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".into(),
        "LoadBalancer" => {
            let lb = load_balancer_addresses(arr_at(svc, "/status/loadBalancer/ingress"), wide);
            if !external.is_empty() {
                let mut all: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    all.extend(lb.split(','));
                }
                all.extend(external);
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".into()
            } else {
                lb
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = arr_at(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int_at(p, "/port");
            let protocol = opt_str(p, "/protocol").unwrap_or("TCP");
            match int_at(p, "/nodePort") {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn service_row(svc: &Value, ctx: &Ctx) -> Row {
    // Objects are defaulted on write; these fallbacks are upstream's defaults.
    let svc_type = opt_str(svc, "/spec/type").unwrap_or("ClusterIP");
    let cluster_ip = arr_at(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_str(svc, "/spec/clusterIP"))
        .unwrap_or("<none>");
    vec![
        name(svc),
        s(svc_type),
        s(cluster_ip),
        s(external_ip(svc, svc_type, true)),
        s(service_ports(svc)),
        age(svc, ctx),
        s(format_labels(at(svc, "/spec/selector"))),
    ]
    .into()
}

pub(crate) const ENDPOINTS: Printer = Printer {
    columns: &[NAME, col("Endpoints", d::EP_SUBSETS), AGE],
    row: |ep, ctx| vec![name(ep), s(format_endpoints(ep)), age(ep, ctx)].into(),
};

/// Go's `net.JoinHostPort`: brackets around hosts containing a colon.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Upstream `formatEndpoints` (all ports): at most 3 addresses, then `+ N more...`.
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr_at(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, "/ip"), int_at(port, "/port")));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

pub(crate) const CONFIG_MAP: Printer = Printer {
    columns: &[NAME, col("Data", d::CM_DATA), AGE],
    row: |cm, ctx| {
        let n = len_at(cm, "/data") + len_at(cm, "/binaryData");
        vec![name(cm), json!(n), age(cm, ctx)].into()
    },
};

pub(crate) const SECRET: Printer = Printer {
    columns: &[
        NAME,
        col("Type", d::SECRET_TYPE),
        col("Data", d::SECRET_DATA),
        AGE,
    ],
    row: |secret, ctx| {
        vec![
            name(secret),
            s(str_at(secret, "/type")),
            json!(len_at(secret, "/data")),
            age(secret, ctx),
        ]
        .into()
    },
};

pub(crate) const SERVICE_ACCOUNT: Printer = Printer {
    columns: &[NAME, col("Secrets", d::SA_SECRETS), AGE],
    row: |sa, ctx| vec![name(sa), json!(len_at(sa, "/secrets")), age(sa, ctx)].into(),
};

pub(crate) const PERSISTENT_VOLUME: Printer = Printer {
    columns: &[
        NAME,
        col("Capacity", d::PV_CAPACITY),
        col("Access Modes", d::PV_ACCESS_MODES),
        col("Reclaim Policy", d::PV_RECLAIM),
        col("Status", d::PV_PHASE),
        col("Claim", d::PV_CLAIM),
        col("StorageClass", "StorageClass of the pv"),
        col("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
        col("Reason", d::PV_REASON),
        AGE,
        wide("VolumeMode", d::PV_VOLUME_MODE),
    ],
    row: pv_row,
};

/// Upstream `GetPersistentVolumeClass` / `GetPersistentVolumeClaimClass`: the beta
/// annotation wins over `spec.storageClassName`.
fn storage_class(obj: &Value) -> String {
    if let Some(class) = at(obj, "/metadata/annotations")
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .and_then(Value::as_str)
    {
        return class.to_string();
    }
    str_at(obj, "/spec/storageClassName").to_string()
}

fn pv_row(pv: &Value, ctx: &Ctx) -> Row {
    let claim = match at(pv, "/spec/claimRef") {
        Some(c) => format!("{}/{}", str_at(c, "/namespace"), str_at(c, "/name")),
        None => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        str_at(pv, "/status/phase")
    };
    vec![
        name(pv),
        s(quantity(at(pv, "/spec/capacity/storage"))),
        s(access_modes(arr_at(pv, "/spec/accessModes"))),
        s(str_at(pv, "/spec/persistentVolumeReclaimPolicy")),
        s(phase),
        s(claim),
        s(storage_class(pv)),
        s(opt_str(pv, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        s(str_at(pv, "/status/reason")),
        age(pv, ctx),
        s(opt_str(pv, "/spec/volumeMode").unwrap_or("<unset>")),
    ]
    .into()
}

pub(crate) const PERSISTENT_VOLUME_CLAIM: Printer = Printer {
    columns: &[
        NAME,
        col("Status", d::PVC_PHASE),
        col("Volume", d::PVC_VOLUME),
        col("Capacity", d::PVC_CAPACITY),
        col("Access Modes", d::PVC_ACCESS_MODES),
        col("StorageClass", "StorageClass of the pvc"),
        col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
        AGE,
        wide("VolumeMode", d::PVC_VOLUME_MODE),
    ],
    row: pvc_row,
};

fn pvc_row(pvc: &Value, ctx: &Ctx) -> Row {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        str_at(pvc, "/status/phase")
    };
    let volume = str_at(pvc, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(pvc, "/status/capacity/storage")),
            access_modes(arr_at(pvc, "/status/accessModes")),
        )
    };
    vec![
        name(pvc),
        s(phase),
        s(volume),
        s(capacity),
        s(modes),
        s(storage_class(pvc)),
        s(opt_str(pvc, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        age(pvc, ctx),
        s(opt_str(pvc, "/spec/volumeMode").unwrap_or("<unset>")),
    ]
    .into()
}

pub(crate) const RESOURCE_QUOTA: Printer = Printer {
    // Upstream lists Age second for quotas (unlike most kinds).
    columns: &[
        NAME,
        AGE,
        col(
            "Request",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        col(
            "Limit",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
    ],
    row: quota_row,
};

fn quota_row(quota: &Value, ctx: &Ctx) -> Row {
    let mut resources: Vec<&String> = at(quota, "/status/hard")
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for r in resources {
        let used = quota.pointer("/status/used").and_then(|u| u.get(r));
        let hard = quota.pointer("/status/hard").and_then(|h| h.get(r));
        let entry = format!("{r}: {}/{}", quantity(used), quantity(hard));
        let pieces: Vec<&str> = r.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(quota),
        age(quota, ctx),
        s(requests.join(", ")),
        s(limits.join(", ")),
    ]
    .into()
}

pub(crate) const COMPONENT_STATUS: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "Status of the component conditions"),
        col("Message", "Message of the component conditions"),
        col("Error", "Error of the component conditions"),
    ],
    row: |cs, _| {
        let healthy = arr_at(cs, "/conditions")
            .iter()
            .find(|c| str_at(c, "/type") == "Healthy");
        let (status, message, error) = match healthy {
            Some(c) => (
                if str_at(c, "/status") == "True" {
                    "Healthy"
                } else {
                    "Unhealthy"
                },
                str_at(c, "/message"),
                str_at(c, "/error"),
            ),
            None => ("Unknown", "", ""),
        };
        vec![name(cs), s(status), s(message), s(error)].into()
    },
};
