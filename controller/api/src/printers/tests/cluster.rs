//! Rows of EndpointSlice, Ingress, IngressClass, StorageClass, Lease, RBAC bindings,
//! PriorityClass, CSR, and the default table of kinds without a printer.

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::{ago, cells, columns, expect_columns};

fn strs(v: &[&str]) -> Vec<Value> {
    v.iter().map(|s| json!(s)).collect()
}

#[test]
fn endpoint_slice_rows_are_upstreams() {
    let es = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.1.2.3"]}, {"addresses": ["2001:db8::1234:5678"]}]});
    assert_eq!(
        cells("discovery.k8s.io/v1", "EndpointSlice", &es),
        strs(&[
            "web-abc",
            "IPv4",
            "80",
            "10.1.2.3,2001:db8::1234:5678",
            "<unknown>"
        ])
    );
    let es = json!({"metadata": {"name": "many"}, "addressType": "IPv4",
        "ports": [{"port": 80}, {"name": "named"}, {}, {"port": 443}],
        "endpoints": [{"addresses": ["10.0.0.1", "10.0.0.2"]}, {"addresses": ["10.0.0.3", "10.0.0.4", "10.0.0.5"]}]});
    assert_eq!(
        cells("discovery.k8s.io/v1", "EndpointSlice", &es)[2..4],
        strs(&[
            "80,named,* + 1 more...",
            "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."
        ])
    );
    let es = json!({"metadata": {"name": "empty"}, "addressType": "IPv6"});
    assert_eq!(
        cells("discovery.k8s.io/v1", "EndpointSlice", &es)[2..4],
        strs(&["<unset>", "<unset>"])
    );
}

#[test]
fn ingress_rows_are_upstreams() {
    // TestPrintIngress.
    let ing = json!({"metadata": {"name": "test1", "creationTimestamp": ago(TimeDelta::hours(10 * 365 * 24))},
        "spec": {"ingressClassName": "foo", "defaultBackend": {"service": {"name": "default-backend", "port": {"number": 80}}}},
        "status": {"loadBalancer": {"ingress": [{"ip": "2.3.4.5", "hostname": "localhost.localdomain"}]}}});
    assert_eq!(
        cells("networking.k8s.io/v1", "Ingress", &ing),
        strs(&["test1", "foo", "*", "2.3.4.5", "80", "10y"])
    );
    let ing = json!({"metadata": {"name": "hosts"}, "spec": {
        "tls": [{"hosts": ["a.example"]}],
        "rules": [{"host": "a.example"}, {}, {"host": "b.example"}, {"host": "c.example"}, {"host": "d.example"}]}});
    assert_eq!(
        cells("networking.k8s.io/v1", "Ingress", &ing)[1..5],
        strs(&[
            "<none>",
            "a.example,b.example,c.example + 2 more...",
            "",
            "80, 443"
        ])
    );
    // TestPrintIngressClass.
    let class = |params: Value| {
        json!({"metadata": {"name": "test1"},
        "spec": {"controller": "example.com/controller", "parameters": params}})
    };
    assert_eq!(
        cells(
            "networking.k8s.io/v1",
            "IngressClass",
            &class(json!({"kind": "customgroup", "name": "example"}))
        )[2],
        json!("customgroup/example")
    );
    assert_eq!(
        cells(
            "networking.k8s.io/v1",
            "IngressClass",
            &class(json!({"apiGroup": "example.com", "kind": "customgroup", "name": "example"}))
        )[2],
        json!("customgroup.example.com/example")
    );
    assert_eq!(
        cells("networking.k8s.io/v1", "IngressClass", &class(Value::Null))[2],
        json!("<none>")
    );
}

#[test]
fn storage_class_rows_are_upstreams() {
    assert_eq!(
        columns("storage.k8s.io/v1", "StorageClass"),
        expect_columns(&[
            "Name",
            "Provisioner",
            "ReclaimPolicy",
            "VolumeBindingMode",
            "AllowVolumeExpansion",
            "Age"
        ])
    );
    let sc = json!({"metadata": {"name": "local-path",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "bramble.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        cells("storage.k8s.io/v1", "StorageClass", &sc),
        vec![
            json!("local-path (default)"),
            json!("bramble.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false),
            json!("<unknown>")
        ]
    );
    let sc = json!({"metadata": {"name": "beta", "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "true"}},
        "provisioner": "p", "reclaimPolicy": "Retain", "allowVolumeExpansion": true});
    assert_eq!(
        cells("storage.k8s.io/v1", "StorageClass", &sc)[..5],
        [
            json!("beta (default)"),
            json!("p"),
            json!("Retain"),
            json!("Immediate"),
            json!(true)
        ]
    );
    let sc = json!({"metadata": {"name": "plain", "annotations": {"storageclass.kubernetes.io/is-default-class": "false"}}});
    assert_eq!(
        cells("storage.k8s.io/v1", "StorageClass", &sc)[0],
        json!("plain")
    );
}

#[test]
fn lease_priority_class_and_csr_rows_are_upstreams() {
    let lease = json!({"metadata": {"name": "node1"}, "spec": {"holderIdentity": "node1"}});
    assert_eq!(
        cells("coordination.k8s.io/v1", "Lease", &lease),
        strs(&["node1", "node1", "<unknown>"])
    );
    assert_eq!(
        columns("scheduling.k8s.io/v1", "PriorityClass"),
        expect_columns(&["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"])
    );
    let pc = json!({"metadata": {"name": "high"}, "value": 1000000, "globalDefault": true,
        "preemptionPolicy": "PreemptLowerPriority"});
    assert_eq!(
        cells("scheduling.k8s.io/v1", "PriorityClass", &pc),
        vec![
            json!("high"),
            json!(1000000),
            json!(true),
            json!("<unknown>"),
            json!("PreemptLowerPriority")
        ]
    );
    let csr = json!({"metadata": {"name": "csr1"},
        "spec": {"username": "CSRRequestor", "expirationSeconds": 3600},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Y2VydA=="}});
    assert_eq!(
        cells("certificates.k8s.io/v1", "CertificateSigningRequest", &csr),
        strs(&[
            "csr1",
            "<unknown>",
            "<none>",
            "CSRRequestor",
            "60m",
            "Approved,Issued"
        ])
    );
    let csr = json!({"metadata": {"name": "csr2"}, "spec": {"signerName": "kubernetes.io/kubelet-serving"},
        "status": {"conditions": [{"type": "Denied"}, {"type": "Approved"}, {"type": "Failed"}]}});
    assert_eq!(
        cells("certificates.k8s.io/v1", "CertificateSigningRequest", &csr)[2..],
        strs(&[
            "kubernetes.io/kubelet-serving",
            "",
            "<none>",
            "Denied,Failed"
        ])
    );
    let pending = json!({"metadata": {"name": "csr3"}, "spec": {}});
    assert_eq!(
        cells(
            "certificates.k8s.io/v1",
            "CertificateSigningRequest",
            &pending
        )[5],
        json!("Pending")
    );
}

#[test]
fn binding_rows_are_upstreams() {
    let rb = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "reader"},
        "subjects": [{"kind": "User", "name": "u1"}, {"kind": "Group", "name": "g1"},
                     {"kind": "ServiceAccount", "namespace": "ns", "name": "sa"}, {"kind": "User", "name": "u2"}]});
    assert_eq!(
        cells("rbac.authorization.k8s.io/v1", "RoleBinding", &rb),
        strs(&["b", "Role/reader", "<unknown>", "u1, u2", "g1", "ns/sa"])
    );
    let crb = json!({"metadata": {"name": "admin"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}});
    assert_eq!(
        cells("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", &crb),
        strs(&[
            "admin",
            "ClusterRole/cluster-admin",
            "<unknown>",
            "",
            "",
            ""
        ])
    );
    assert_eq!(
        columns("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        expect_columns(&[
            "Name",
            "Role",
            "Age",
            "*Users",
            "*Groups",
            "*ServiceAccounts"
        ])
    );
}

#[test]
fn kinds_without_printer_get_the_default_table() {
    for (api_version, kind) in [
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("v1", "LimitRange"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ] {
        assert_eq!(
            columns(api_version, kind),
            expect_columns(&["Name", "Created At"]),
            "{kind}"
        );
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T10:20:30Z"}});
        assert_eq!(
            cells(api_version, kind, &obj),
            strs(&["x", "2024-05-01T10:20:30Z"])
        );
        let fractional =
            json!({"metadata": {"name": "y", "creationTimestamp": "2024-05-01T10:20:30.5+02:00"}});
        assert_eq!(
            cells(api_version, kind, &fractional),
            strs(&["y", "2024-05-01T08:20:30Z"])
        );
        let unset = json!({"metadata": {"name": "z"}});
        assert_eq!(
            cells(api_version, kind, &unset),
            strs(&["z", "0001-01-01T00:00:00Z"])
        );
    }
    let t = super::table_of("v1", "LimitRange", &json!({"metadata": {"name": "x"}}));
    assert_eq!(t["columnDefinitions"][1]["type"], json!("date"));
}
