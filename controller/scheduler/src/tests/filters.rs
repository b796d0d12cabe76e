use serde_json::json;

use super::{info, node, pod, schedule, snapshot};
use crate::filters::{filter_node, PreFilter};

#[test]
fn resources_count_bound_pods_and_report_every_shortage() {
    let snap = snapshot(
        vec![
            node("a", "2", "4Gi", json!({})),
            node("b", "1", "1Gi", json!({})),
        ],
        vec![("a", pod("x", "1500m", "1Gi", json!({})))],
    );
    let err = schedule(pod("p", "1", "2Gi", json!({})), &snap).unwrap_err();
    assert_eq!(
        err.message(),
        "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
    );
    assert_eq!(err.failures["b"].reasons, vec!["Insufficient memory"]);
    assert_eq!(err.failures["a"].reasons, vec!["Insufficient cpu"]);
    assert_eq!(
        schedule(pod("q", "500m", "2Gi", json!({})), &snap)
            .unwrap()
            .node,
        "a"
    );
}

#[test]
fn init_containers_count_as_a_floor_and_overhead_adds() {
    let snap = snapshot(vec![node("a", "2", "4Gi", json!({}))], vec![]);
    let p = pod(
        "p",
        "500m",
        "",
        json!({"spec": {"initContainers": [{"name": "i", "image": "busybox",
            "resources": {"requests": {"cpu": "2500m"}}}]}}),
    );
    let err = schedule(p, &snap).unwrap_err();
    assert_eq!(
        err.message(),
        "0/1 nodes are available: 1 Insufficient cpu."
    );
    let p = pod(
        "p",
        "1500m",
        "",
        json!({"spec": {"overhead": {"cpu": "600m"}}}),
    );
    assert!(schedule(p, &snap).is_err());
    let p = pod(
        "p",
        "1500m",
        "",
        json!({"spec": {"overhead": {"cpu": "500m"}}}),
    );
    assert!(schedule(p, &snap).is_ok());
}

#[test]
fn too_many_pods() {
    let n = node(
        "a",
        "2",
        "4Gi",
        json!({"status": {"allocatable": {"pods": "1"}}}),
    );
    let snap = snapshot(vec![n], vec![("a", pod("x", "", "", json!({})))]);
    let err = schedule(pod("p", "", "", json!({})), &snap).unwrap_err();
    assert_eq!(err.message(), "0/1 nodes are available: 1 Too many pods.");
}

#[test]
fn node_selector_and_required_affinity_with_all_operators() {
    let nodes = vec![
        node(
            "a",
            "2",
            "4Gi",
            json!({"metadata": {"labels": {"disk": "ssd", "gen": "3"}}}),
        ),
        node(
            "b",
            "2",
            "4Gi",
            json!({"metadata": {"labels": {"disk": "hdd", "gen": "5"}}}),
        ),
        node("c", "2", "4Gi", json!({})),
    ];
    let snap = snapshot(nodes, vec![]);
    let sel = pod(
        "p",
        "",
        "",
        json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
    );
    assert_eq!(schedule(sel, &snap).unwrap().node, "a");
    let req = |exprs: serde_json::Value| {
        pod(
            "p",
            "",
            "",
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": exprs}]}}}}}),
        )
    };
    let on = |exprs| schedule(req(exprs), &snap).map(|p| p.node);
    assert_eq!(
        on(json!([{"key": "gen", "operator": "Gt", "values": ["4"]}])).unwrap(),
        "b"
    );
    assert_eq!(
        on(json!([{"key": "gen", "operator": "Lt", "values": ["4"]}])).unwrap(),
        "a"
    );
    assert_eq!(
        on(json!([{"key": "disk", "operator": "DoesNotExist"}])).unwrap(),
        "c"
    );
    assert_eq!(
        on(json!([{"key": "disk", "operator": "Exists"}, {"key": "disk", "operator": "NotIn", "values": ["ssd"]}]))
            .unwrap(),
        "b"
    );
    assert_eq!(
        on(json!([{"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}])).unwrap(),
        "a"
    );
    let err = on(json!([{"key": "disk", "operator": "In", "values": ["tape"]}])).unwrap_err();
    assert_eq!(
        err.message(),
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    );
    assert!(err.failures.values().all(|f| f.unresolvable));
    // matchFields on metadata.name
    let by_field = pod(
        "p",
        "",
        "",
        json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}]}}}}}),
    );
    assert_eq!(schedule(by_field, &snap).unwrap().node, "c");
}

#[test]
fn taints_need_tolerations_and_not_ready_nodes_are_skipped() {
    let tainted = node(
        "a",
        "2",
        "4Gi",
        json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}),
    );
    let not_ready = node(
        "b",
        "2",
        "4Gi",
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
    );
    let snap = snapshot(vec![tainted, not_ready], vec![]);
    let err = schedule(pod("p", "", "", json!({})), &snap).unwrap_err();
    assert_eq!(
        err.message(),
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
    );
    let tolerant = pod(
        "p",
        "",
        "",
        json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}}),
    );
    assert_eq!(schedule(tolerant, &snap).unwrap().node, "a");
    let wrong_value = pod(
        "p",
        "",
        "",
        json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "cpu"}]}}),
    );
    assert!(schedule(wrong_value, &snap).is_err());
    let everything = pod(
        "p",
        "",
        "",
        json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
    );
    assert!(schedule(everything, &snap).is_ok());
}

#[test]
fn cordoned_nodes_are_unschedulable_unless_tolerated() {
    let snap = snapshot(
        vec![node(
            "a",
            "2",
            "4Gi",
            json!({"spec": {"unschedulable": true}}),
        )],
        vec![],
    );
    let err = schedule(pod("p", "", "", json!({})), &snap).unwrap_err();
    assert_eq!(
        err.message(),
        "0/1 nodes are available: 1 node(s) were unschedulable."
    );
    let ds = pod(
        "p",
        "",
        "",
        json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
    );
    assert!(schedule(ds, &snap).is_ok());
}

#[test]
fn host_ports_conflict_per_protocol_and_address() {
    let with_port = |name: &str, port: i32, proto: &str, ip: &str| {
        pod(
            name,
            "",
            "",
            json!({"spec": {"containers": [{"name": "c", "image": "nginx",
                "ports": [{"containerPort": 80, "hostPort": port, "protocol": proto, "hostIP": ip}]}]}}),
        )
    };
    let snap = snapshot(
        vec![node("a", "2", "4Gi", json!({}))],
        vec![("a", with_port("x", 8080, "TCP", ""))],
    );
    let err = schedule(with_port("p", 8080, "TCP", "10.0.0.1"), &snap).unwrap_err();
    assert_eq!(
        err.message(),
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
    );
    assert!(!err.failures["a"].unresolvable);
    assert!(schedule(with_port("p", 8080, "UDP", ""), &snap).is_ok());
    assert!(schedule(with_port("p", 8081, "TCP", ""), &snap).is_ok());
}

#[test]
fn pod_affinity_and_anti_affinity_by_topology_key() {
    let zone = |n: &str, z: &str| {
        node(
            n,
            "4",
            "8Gi",
            json!({"metadata": {"labels": {"topology.kubernetes.io/zone": z}}}),
        )
    };
    let web = |n: &str| pod(n, "", "", json!({"metadata": {"labels": {"app": "web"}}}));
    let snap = snapshot(
        vec![zone("a", "z1"), zone("b", "z1"), zone("c", "z2")],
        vec![("a", web("w1"))],
    );
    let term = json!([{"labelSelector": {"matchLabels": {"app": "web"}},
        "topologyKey": "topology.kubernetes.io/zone"}]);
    let near = pod(
        "p",
        "",
        "",
        json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term}}}}),
    );
    let pre = PreFilter::compute(&info(near.clone()), &snap);
    let fits: Vec<&str> = snap
        .nodes
        .iter()
        .filter(|n| filter_node(&info(near.clone()), n, &snap, &pre).is_ok())
        .map(|n| n.name())
        .collect();
    assert_eq!(fits, vec!["a", "b"]);
    let far = pod(
        "p",
        "",
        "",
        json!({"spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term}}}}),
    );
    assert_eq!(schedule(far, &snap).unwrap().node, "c");
    // An existing pod's anti-affinity keeps matching pods out of its zone.
    let loner = pod(
        "l",
        "",
        "",
        json!({"metadata": {"labels": {"app": "db"}}, "spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": term}}}}),
    );
    let snap = snapshot(vec![zone("a", "z1"), zone("c", "z2")], vec![("c", loner)]);
    let err = schedule(web("p"), &snap);
    assert_eq!(err.unwrap().node, "a");
    let snap1 = snapshot(
        vec![zone("c", "z2")],
        vec![(
            "c",
            pod(
                "l",
                "",
                "",
                json!({"spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": term}}}}),
            ),
        )],
    );
    assert_eq!(
        schedule(web("p"), &snap1).unwrap_err().message(),
        "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."
    );
    // No matching pod anywhere: the first pod of a self-affine group may go anywhere.
    let first = pod(
        "p",
        "",
        "",
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": term}}}}),
    );
    assert!(schedule(first, &snapshot(vec![zone("a", "z1")], vec![])).is_ok());
    let other = pod(
        "p",
        "",
        "",
        json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term}}}}),
    );
    assert_eq!(
        schedule(other, &snapshot(vec![zone("a", "z1")], vec![]))
            .unwrap_err()
            .message(),
        "0/1 nodes are available: 1 node(s) didn't match pod affinity rules."
    );
}

#[test]
fn topology_spread_do_not_schedule_enforces_max_skew() {
    let zone = |n: &str, z: &str| node(n, "4", "8Gi", json!({"metadata": {"labels": {"zone": z}}}));
    let web = |n: &str| pod(n, "", "", json!({"metadata": {"labels": {"app": "web"}}}));
    let snap = snapshot(
        vec![
            zone("a", "z1"),
            zone("b", "z2"),
            node("c", "4", "8Gi", json!({})),
        ],
        vec![("a", web("w1")), ("a", web("w2"))],
    );
    let spread = pod(
        "p",
        "",
        "",
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
    );
    let err_or = schedule(spread.clone(), &snap).unwrap();
    assert_eq!(err_or.node, "b");
    let snap = snapshot(
        vec![zone("a", "z1"), node("c", "4", "8Gi", json!({}))],
        vec![("a", web("w1"))],
    );
    // One domain: skew is always 0 there; node c lacks the key.
    let res = schedule(spread.clone(), &snap).unwrap();
    assert_eq!(res.node, "a");
    let snap = snapshot(
        vec![
            zone("a", "z1"),
            node(
                "b",
                "4",
                "8Gi",
                json!({"metadata": {"labels": {"zone": "z2"}}, "spec": {"unschedulable": true}}),
            ),
            node("c", "4", "8Gi", json!({})),
        ],
        vec![("a", web("w1")), ("a", web("w2")), ("b", web("w3"))],
    );
    let err = schedule(spread, &snap).unwrap_err();
    assert_eq!(
        err.message(),
        "0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 node(s) didn't match pod topology spread constraints (missing required label), 1 node(s) were unschedulable."
    );
    assert!(!err.failures["a"].unresolvable);
    assert!(err.failures["c"].unresolvable);
}
