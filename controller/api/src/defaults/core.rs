//! core/v1 defaults other than pods: Service, Namespace, Secret, PersistentVolume(Claim),
//! Endpoints, Node, LimitRange.

use serde_json::{json, Value};

use super::{as_map, child, each, get_obj, set_if_empty, set_if_nil};

/// `SetDefaults_Service` (cluster IP allocation is the server's, not defaulting).
pub fn service(svc: &mut Value) {
    let spec = child(svc, "spec");
    set_if_empty(spec, "sessionAffinity", "None");
    let affinity = spec
        .get("sessionAffinity")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if affinity == "None" {
        as_map(spec).remove("sessionAffinityConfig");
    } else if affinity == "ClientIP" {
        let cfg = child(spec, "sessionAffinityConfig");
        let cip = child(cfg, "clientIP");
        set_if_nil(cip, "timeoutSeconds", json!(10800));
    }
    set_if_empty(spec, "type", "ClusterIP");
    each(spec, "ports", |p| {
        set_if_empty(p, "protocol", "TCP");
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset {
            let port = p.get("port").cloned().unwrap_or(json!(0));
            as_map(p).insert("targetPort".into(), port);
        }
    });
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips);
    if externally_accessible {
        set_if_empty(spec, "externalTrafficPolicy", "Cluster");
    }
    if ty == "NodePort" || ty == "LoadBalancer" || ty == "ClusterIP" {
        set_if_nil(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_if_nil(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        // Done by the registry's IP-family logic upstream; single-stack IPv4 here.
        let headless_without_selector = spec.get("clusterIP").and_then(Value::as_str)
            == Some("None")
            && spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty());
        let policy = if headless_without_selector {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        set_if_nil(spec, "ipFamilyPolicy", json!(policy));
        set_if_nil(spec, "ipFamilies", json!(["IPv4"]));
    }
}

/// Namespace: `spec.finalizers: [kubernetes]` (namespace strategy) and `status.phase: Active`.
pub fn namespace(ns: &mut Value) {
    let spec = child(ns, "spec");
    set_if_nil(spec, "finalizers", json!(["kubernetes"]));
    let status = child(ns, "status");
    set_if_empty(status, "phase", "Active");
}

/// `SetDefaults_Secret`: type Opaque.
pub fn secret(s: &mut Value) {
    set_if_empty(s, "type", "Opaque");
}

/// `SetDefaults_PersistentVolume`: reclaim policy Retain, volume mode Filesystem, phase Pending.
pub fn persistent_volume(pv: &mut Value) {
    let spec = child(pv, "spec");
    set_if_empty(spec, "persistentVolumeReclaimPolicy", "Retain");
    set_if_nil(spec, "volumeMode", json!("Filesystem"));
    if let Some(h) = get_obj(spec, "hostPath") {
        set_if_nil(h, "type", json!(""));
    }
    set_if_empty(child(pv, "status"), "phase", "Pending");
}

/// `SetDefaults_PersistentVolumeClaim`: volume mode Filesystem, phase Pending.
pub fn persistent_volume_claim(pvc: &mut Value) {
    set_if_nil(child(pvc, "spec"), "volumeMode", json!("Filesystem"));
    set_if_empty(child(pvc, "status"), "phase", "Pending");
}

/// `SetDefaults_EndpointPort`: protocol TCP.
pub fn endpoints(ep: &mut Value) {
    each(ep, "subsets", |ss| {
        each(ss, "ports", |p| set_if_empty(p, "protocol", "TCP"))
    });
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub fn node(n: &mut Value) {
    let Some(status) = get_obj(n, "status") else {
        return;
    };
    let capacity = status.get("capacity").filter(|c| c.is_object()).cloned();
    if let Some(cap) = capacity {
        set_if_nil(status, "allocatable", cap);
    }
}

/// `SetDefaults_LimitRangeItem`: container limits default from max, requests from limits/min.
pub fn limit_range(lr: &mut Value) {
    let Some(spec) = get_obj(lr, "spec") else {
        return;
    };
    each(spec, "limits", |item| {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            return;
        }
        let max = item
            .get("max")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let min = item
            .get("min")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        {
            let def = as_map(child(item, "default"));
            for (k, v) in max {
                def.entry(k).or_insert(v);
            }
        }
        let def = item
            .get("default")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let req = as_map(child(item, "defaultRequest"));
        for (k, v) in def {
            req.entry(k).or_insert(v);
        }
        for (k, v) in min {
            req.entry(k).or_insert(v);
        }
    });
}
