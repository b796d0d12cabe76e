//! core/v1 rows: Node, Namespace, Service, Endpoints, ConfigMap, Secret, ServiceAccount,
//! PersistentVolume(Claim), ResourceQuota, Event (upstream's printers_test.go cases).

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::{ago, cells, columns, expect_columns};

fn strs(v: &[&str]) -> Vec<Value> {
    v.iter().map(|s| json!(s)).collect()
}

fn node(name: &str, spec: Value, status: Value, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels}, "spec": spec, "status": status})
}

#[test]
fn node_status_and_roles_are_upstreams() {
    let ready = |s: &str| json!({"type": "Ready", "status": s});
    let cases = vec![
        (json!({}), json!([ready("True")]), "Ready"),
        (
            json!({"unschedulable": true}),
            json!([ready("True")]),
            "Ready,SchedulingDisabled",
        ),
        (json!({}), json!([ready("True"), ready("True")]), "Ready"),
        (json!({}), json!([ready("False")]), "NotReady"),
        (
            json!({"unschedulable": true}),
            json!([ready("False")]),
            "NotReady,SchedulingDisabled",
        ),
        (
            json!({}),
            json!([{"type": "InvalidValue", "status": "True"}]),
            "Unknown",
        ),
        (json!({}), json!([]), "Unknown"),
        (
            json!({"unschedulable": true}),
            json!([{"type": "InvalidValue", "status": "True"}]),
            "Unknown,SchedulingDisabled",
        ),
        (
            json!({"unschedulable": true}),
            json!([]),
            "Unknown,SchedulingDisabled",
        ),
    ];
    for (spec, conditions, want) in cases {
        let n = node("foo", spec, json!({"conditions": conditions}), json!({}));
        assert_eq!(cells("v1", "Node", &n)[1], json!(want));
    }
    let n = node(
        "r1",
        json!({}),
        json!({}),
        json!({"node-role.kubernetes.io/fooRole": "true"}),
    );
    assert_eq!(cells("v1", "Node", &n)[2], json!("fooRole"));
    let n = node(
        "r2",
        json!({}),
        json!({}),
        json!({"node-role.kubernetes.io/bar": "", "node-role.kubernetes.io/baz": "",
               "node-role.kubernetes.io/": "", "kubernetes.io/role": "fooRole"}),
    );
    assert_eq!(cells("v1", "Node", &n)[2], json!("bar,baz,fooRole"));
}

#[test]
fn node_wide_cells_are_upstreams() {
    assert_eq!(
        columns("v1", "Node"),
        expect_columns(&[
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "*Internal-IP",
            "*External-IP",
            "*OS-Image",
            "*Kernel-Version",
            "*Container-Runtime"
        ])
    );
    let n = node(
        "foo1",
        json!({}),
        json!({"nodeInfo": {"kernelVersion": "fake-kernel-version"},
               "addresses": [{"type": "ExternalIP", "address": "1.1.1.1"}]}),
        json!({}),
    );
    assert_eq!(
        cells("v1", "Node", &n),
        strs(&[
            "foo1",
            "Unknown",
            "<none>",
            "<unknown>",
            "",
            "<none>",
            "1.1.1.1",
            "<unknown>",
            "fake-kernel-version",
            "<unknown>"
        ])
    );
    let n = node(
        "foo3",
        json!({}),
        json!({"addresses": [
            {"type": "ExternalIP", "address": "2.2.2.2"},
            {"type": "InternalIP", "address": "3.3.3.3"},
            {"type": "ExternalIP", "address": "4.4.4.4"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Bramble", "containerRuntimeVersion": "foo://1.2.3"}}),
        json!({}),
    );
    assert_eq!(
        cells("v1", "Node", &n),
        strs(&[
            "foo3",
            "Unknown",
            "<none>",
            "<unknown>",
            "v1.33.0",
            "3.3.3.3",
            "2.2.2.2",
            "Bramble",
            "<unknown>",
            "foo://1.2.3"
        ])
    );
}

#[test]
fn namespace_row() {
    let ns = json!({"metadata": {"name": "dev", "creationTimestamp": ago(TimeDelta::days(3))},
                    "status": {"phase": "Active"}});
    assert_eq!(
        cells("v1", "Namespace", &ns),
        strs(&["dev", "Active", "3d"])
    );
}

fn service(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "svc"}, "spec": spec, "status": status})
}

#[test]
fn service_rows_are_upstreams() {
    assert_eq!(
        columns("v1", "Service"),
        expect_columns(&[
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "*Selector"
        ])
    );
    let s = service(
        json!({"type": "LoadBalancer", "clusterIPs": ["1.2.3.4"], "ports": [{"port": 80, "protocol": "TCP"}]}),
        json!({"loadBalancer": {"ingress": [{"ip": "3.4.5.6"}, {"ip": "2.3.4.5"}]}}),
    );
    assert_eq!(
        cells("v1", "Service", &s),
        strs(&[
            "svc",
            "LoadBalancer",
            "1.2.3.4",
            "2.3.4.5,3.4.5.6",
            "80/TCP",
            "<unknown>",
            "<none>"
        ])
    );
    let s = service(
        json!({"type": "LoadBalancer", "clusterIPs": ["1.3.4.5"], "ports": [
            {"port": 80, "protocol": "TCP"}, {"port": 8090, "protocol": "UDP"},
            {"port": 8000, "protocol": "TCP"}, {"port": 7777, "protocol": "SCTP"}]}),
        json!({}),
    );
    assert_eq!(
        cells("v1", "Service", &s)[3..5],
        strs(&["<pending>", "80/TCP,8090/UDP,8000/TCP,7777/SCTP"])
    );
    // Server-side tables are wide: long address lists are not clipped.
    let s = service(
        json!({"type": "LoadBalancer", "clusterIPs": ["1.5.6.7"], "selector": {"foo": "bar"},
               "ports": [{"port": 80, "protocol": "TCP"}]}),
        json!({"loadBalancer": {"ingress": [{"ip": "2.3.4.5"}, {"ip": "3.4.5.6"}, {"ip": "5.6.7.8", "hostname": "host5678"}]}}),
    );
    assert_eq!(
        cells("v1", "Service", &s)[3..],
        strs(&["2.3.4.5,3.4.5.6,5.6.7.8", "80/TCP", "<unknown>", "foo=bar"])
    );
    let s = service(
        json!({"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"b": "2", "a": "1"},
               "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "nodePort": 30053, "protocol": "UDP"}]}),
        json!({}),
    );
    assert_eq!(
        cells("v1", "Service", &s),
        strs(&[
            "svc",
            "NodePort",
            "10.96.0.10",
            "<none>",
            "80:30080/TCP,53:30053/UDP",
            "<unknown>",
            "a=1,b=2"
        ])
    );
    let s = service(
        json!({"type": "ClusterIP", "clusterIPs": ["None"], "externalIPs": ["8.8.8.8"]}),
        json!({}),
    );
    assert_eq!(
        cells("v1", "Service", &s)[2..5],
        strs(&["None", "8.8.8.8", "<none>"])
    );
    let s = service(
        json!({"type": "ExternalName", "externalName": "example.com"}),
        json!({}),
    );
    assert_eq!(
        cells("v1", "Service", &s)[2..4],
        strs(&["<none>", "example.com"])
    );
}

#[test]
fn endpoints_rows_are_upstreams() {
    let ep = |subsets: Value| json!({"metadata": {"name": "ep"}, "subsets": subsets});
    assert_eq!(cells("v1", "Endpoints", &ep(json!([])))[1], json!("<none>"));
    let e =
        ep(json!([{"addresses": [{"ip": "127.0.0.1"}, {"ip": "::1"}], "ports": [{"port": 8080}]}]));
    assert_eq!(
        cells("v1", "Endpoints", &e)[1],
        json!("127.0.0.1:8080,[::1]:8080")
    );
    let e = ep(json!([
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
        {"addresses": [{"ip": "10.0.0.3"}]}
    ]));
    assert_eq!(
        cells("v1", "Endpoints", &e)[1],
        json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...")
    );
}

#[test]
fn config_secret_and_service_account_counts() {
    let cm = json!({"metadata": {"name": "cm"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(
        cells("v1", "ConfigMap", &cm),
        vec![json!("cm"), json!(3), json!("<unknown>")]
    );
    let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}});
    assert_eq!(
        cells("v1", "Secret", &secret),
        vec![json!("s"), json!("Opaque"), json!(1), json!("<unknown>")]
    );
    let sa = json!({"metadata": {"name": "default"}});
    assert_eq!(
        cells("v1", "ServiceAccount", &sa),
        vec![json!("default"), json!(0), json!("<unknown>")]
    );
    assert_eq!(
        columns("v1", "ServiceAccount"),
        expect_columns(&["Name", "Secrets", "Age"])
    );
}

#[test]
fn persistent_volume_rows_are_upstreams() {
    assert_eq!(
        columns("v1", "PersistentVolume"),
        expect_columns(&[
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "VolumeAttributesClass",
            "Reason",
            "Age",
            "*VolumeMode"
        ])
    );
    let pv = json!({"metadata": {"name": "pv1"},
        "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
                 "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}});
    assert_eq!(
        cells("v1", "PersistentVolume", &pv),
        strs(&[
            "pv1",
            "1Gi",
            "RWO,RWX",
            "Retain",
            "Bound",
            "default/data",
            "local",
            "<unset>",
            "",
            "<unknown>",
            "Filesystem"
        ])
    );
    let mut pv = json!({"metadata": {"name": "pv2", "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
        "spec": {"storageClassName": "ignored"}, "status": {"phase": "Released", "reason": "gone"}});
    pv["metadata"]["deletionTimestamp"] = json!(ago(TimeDelta::seconds(1)));
    assert_eq!(
        cells("v1", "PersistentVolume", &pv),
        strs(&[
            "pv2",
            "0",
            "",
            "",
            "Terminating",
            "",
            "beta",
            "<unset>",
            "gone",
            "<unknown>",
            "<unset>"
        ])
    );
}

#[test]
fn persistent_volume_claim_rows_are_upstreams() {
    let pvc = json!({"metadata": {"name": "data"},
        "spec": {"volumeName": "pv1", "storageClassName": "local", "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"]}});
    assert_eq!(
        cells("v1", "PersistentVolumeClaim", &pvc),
        strs(&[
            "data",
            "Bound",
            "pv1",
            "2Gi",
            "RWO",
            "local",
            "<unset>",
            "<unknown>",
            "<unset>"
        ])
    );
    let pending = json!({"metadata": {"name": "p"}, "spec": {"volumeMode": "Block"}, "status": {"phase": "Pending"}});
    assert_eq!(
        cells("v1", "PersistentVolumeClaim", &pending),
        strs(&[
            "p",
            "Pending",
            "",
            "",
            "",
            "",
            "<unset>",
            "<unknown>",
            "Block"
        ])
    );
}

#[test]
fn resource_quota_splits_requests_and_limits() {
    let q = json!({"metadata": {"name": "q"}, "status": {
        "hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi", "cpu": "500m"},
        "used": {"pods": "1", "limits.cpu": "0.5", "requests.memory": "512Mi"}}});
    assert_eq!(
        cells("v1", "ResourceQuota", &q),
        strs(&[
            "q",
            "<unknown>",
            "cpu: 0/500m, pods: 1/10, requests.memory: 512Mi/1Gi",
            "limits.cpu: 500m/2"
        ])
    );
}

#[test]
fn event_rows_are_upstreams() {
    assert_eq!(
        columns("v1", "Event"),
        expect_columns(&[
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "*Subobject",
            "*Source",
            "Message",
            "*First Seen",
            "*Count",
            "*Name"
        ])
    );
    let ev = json!({"metadata": {"name": "pod1.17a"},
        "involvedObject": {"kind": "Pod", "name": "pod1", "fieldPath": "spec.containers{c}"},
        "type": "Normal", "reason": "Pulled", "message": " Pulled image \n",
        "source": {"component": "kubelet", "host": "node1"},
        "firstTimestamp": ago(TimeDelta::minutes(20)), "lastTimestamp": ago(TimeDelta::minutes(3)), "count": 4});
    assert_eq!(
        cells("v1", "Event", &ev),
        vec![
            json!("3m"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/pod1"),
            json!("spec.containers{c}"),
            json!("kubelet, node1"),
            json!("Pulled image"),
            json!("20m"),
            json!(4),
            json!("pod1.17a")
        ]
    );
    // New-style event: eventTime, series, reporting controller; count defaults to 1.
    let ev = json!({"metadata": {"name": "e2"}, "involvedObject": {"kind": "Node"},
        "type": "Warning", "reason": "R", "message": "m",
        "eventTime": ago(TimeDelta::seconds(30)), "reportingComponent": "bramble/scheduler"});
    assert_eq!(
        cells("v1", "Event", &ev),
        vec![
            json!("30s"),
            json!("Warning"),
            json!("R"),
            json!("node"),
            json!(""),
            json!("bramble/scheduler"),
            json!("m"),
            json!("30s"),
            json!(1),
            json!("e2")
        ]
    );
    let ev = json!({"metadata": {"name": "e3"}, "regarding": {"kind": "Deployment", "name": "web"},
        "type": "Normal", "reason": "ScalingReplicaSet", "note": "Scaled up",
        "eventTime": ago(TimeDelta::hours(1)), "reportingController": "deployment-controller",
        "reportingInstance": "ctrl-1",
        "series": {"count": 7, "lastObservedTime": ago(TimeDelta::seconds(40))}});
    assert_eq!(
        cells("events.k8s.io/v1", "Event", &ev),
        vec![
            json!("40s"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller, ctrl-1"),
            json!("Scaled up"),
            json!("60m"),
            json!(7),
            json!("e3")
        ]
    );
}
