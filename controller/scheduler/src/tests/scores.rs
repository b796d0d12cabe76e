use std::collections::HashMap;

use serde_json::json;

use super::{info, node, pod, schedule, snapshot};
use crate::algorithm::num_feasible_nodes_to_find;
use crate::node_info::NodeInfo;
use crate::scores::{
    balanced_allocation, image_locality, least_allocated, normalize_spread, normalized_image,
};

#[test]
fn least_allocated_prefers_the_emptier_node() {
    let snap = snapshot(
        vec![
            node("a", "4", "8Gi", json!({})),
            node("b", "4", "8Gi", json!({})),
        ],
        vec![("a", pod("x", "2", "4Gi", json!({})))],
    );
    let p = info(pod("p", "1", "1Gi", json!({})));
    assert!(least_allocated(&p, &snap.nodes[1]) > least_allocated(&p, &snap.nodes[0]));
    assert_eq!(
        schedule(pod("p", "1", "1Gi", json!({})), &snap)
            .unwrap()
            .node,
        "b"
    );
}

#[test]
fn balanced_allocation_prefers_even_cpu_and_memory_use() {
    let snap = snapshot(
        vec![
            node("a", "4", "4Gi", json!({})),
            node("b", "4", "4Gi", json!({})),
        ],
        vec![
            ("a", pod("x", "3", "", json!({}))),
            ("b", pod("y", "1", "1Gi", json!({}))),
        ],
    );
    let p = info(pod("p", "1", "1Gi", json!({})));
    assert_eq!(balanced_allocation(&p, &snap.nodes[1]), 100);
    assert!(balanced_allocation(&p, &snap.nodes[0]) < 100);
}

#[test]
fn pods_without_requests_still_spread_through_non_zero_defaults() {
    let mut snap = snapshot(
        vec![
            node("a", "1", "2Gi", json!({})),
            node("b", "1", "2Gi", json!({})),
        ],
        vec![],
    );
    let mut placed: HashMap<String, usize> = HashMap::new();
    for i in 0..6 {
        let p = pod(&format!("p{i}"), "", "", json!({}));
        let node = schedule(p.clone(), &snap).unwrap().node;
        snap.add_pod(&node, info(p));
        *placed.entry(node).or_default() += 1;
    }
    assert_eq!(placed["a"], 3);
    assert_eq!(placed["b"], 3);
}

#[test]
fn image_locality_prefers_nodes_holding_large_images() {
    let with_image = node(
        "a",
        "4",
        "8Gi",
        json!({"status": {"images": [{"names": ["docker.io/library/nginx:latest"], "sizeBytes": 500_000_000}]}}),
    );
    let snap = snapshot(vec![with_image, node("b", "4", "8Gi", json!({}))], vec![]);
    let p = pod("p", "", "", json!({}));
    assert!(image_locality(&p, &snap.nodes[0], &snap) > 0);
    assert_eq!(image_locality(&p, &snap.nodes[1], &snap), 0);
    assert_eq!(schedule(p, &snap).unwrap().node, "a");
    assert_eq!(normalized_image("nginx"), "docker.io/library/nginx:latest");
    assert_eq!(
        normalized_image("bitnami/redis:7"),
        "docker.io/bitnami/redis:7"
    );
    assert_eq!(normalized_image("ghcr.io/x/y"), "ghcr.io/x/y:latest");
    assert_eq!(normalized_image("localhost:5000/y:1"), "localhost:5000/y:1");
}

#[test]
fn preferred_node_affinity_weights_decide() {
    let snap = snapshot(
        vec![
            node(
                "a",
                "4",
                "8Gi",
                json!({"metadata": {"labels": {"tier": "gold"}}}),
            ),
            node(
                "b",
                "4",
                "8Gi",
                json!({"metadata": {"labels": {"tier": "silver", "ssd": "yes"}}}),
            ),
        ],
        vec![],
    );
    let p = |gold: i32, ssd: i32| {
        pod(
            "p",
            "",
            "",
            json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": gold, "preference": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]}},
                {"weight": ssd, "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]}},
            ]}}}}),
        )
    };
    assert_eq!(schedule(p(80, 20), &snap).unwrap().node, "a");
    assert_eq!(schedule(p(20, 80), &snap).unwrap().node, "b");
}

#[test]
fn prefer_no_schedule_taints_are_avoided() {
    let snap = snapshot(
        vec![
            node(
                "a",
                "4",
                "8Gi",
                json!({"spec": {"taints": [{"key": "old", "effect": "PreferNoSchedule"}]}}),
            ),
            node("b", "4", "8Gi", json!({})),
        ],
        vec![],
    );
    for _ in 0..5 {
        assert_eq!(
            schedule(pod("p", "", "", json!({})), &snap).unwrap().node,
            "b"
        );
    }
}

#[test]
fn preferred_pod_affinity_pulls_towards_matching_pods() {
    let snap = snapshot(
        vec![
            node("a", "4", "8Gi", json!({})),
            node("b", "4", "8Gi", json!({})),
        ],
        vec![(
            "b",
            pod(
                "cache",
                "",
                "",
                json!({"metadata": {"labels": {"app": "cache"}}}),
            ),
        )],
    );
    let p = pod(
        "p",
        "",
        "",
        json!({"spec": {"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}},
             "topologyKey": "kubernetes.io/hostname"}}]}}}}),
    );
    assert_eq!(schedule(p, &snap).unwrap().node, "b");
    let away = pod(
        "p",
        "",
        "",
        json!({"spec": {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}},
             "topologyKey": "kubernetes.io/hostname"}}]}}}}),
    );
    assert_eq!(schedule(away, &snap).unwrap().node, "a");
}

#[test]
fn default_spreading_keeps_a_controllers_pods_apart() {
    let owned = |n: &str| {
        pod(
            n,
            "",
            "",
            json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "rs", "uid": "rs-uid", "controller": true}]}}),
        )
    };
    // Node a is emptier by requests, but already runs 3 of the replica set's pods.
    let snap = snapshot(
        vec![
            node("a", "8", "16Gi", json!({})),
            node("b", "4", "8Gi", json!({})),
        ],
        vec![("a", owned("r1")), ("a", owned("r2")), ("a", owned("r3"))],
    );
    assert_eq!(schedule(owned("r4"), &snap).unwrap().node, "b");
    let scores = normalize_spread(&[Some(3.0), Some(0.0), None]);
    assert_eq!(scores, vec![0, 100, 0]);
}

#[test]
fn schedule_any_way_spread_prefers_the_emptier_domain() {
    let zone = |n: &str, z: &str| node(n, "4", "8Gi", json!({"metadata": {"labels": {"zone": z}}}));
    let web = |n: &str| pod(n, "", "", json!({"metadata": {"labels": {"app": "web"}}}));
    let snap = snapshot(
        vec![zone("a", "z1"), zone("b", "z2")],
        vec![("a", web("w1")), ("a", web("w2"))],
    );
    let p = pod(
        "p",
        "",
        "",
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
    );
    assert_eq!(schedule(p, &snap).unwrap().node, "b");
}

#[test]
fn adaptive_percentage_of_nodes_to_score() {
    assert_eq!(num_feasible_nodes_to_find(50), 50);
    assert_eq!(num_feasible_nodes_to_find(100), 100);
    assert_eq!(num_feasible_nodes_to_find(1000), 420);
    assert_eq!(num_feasible_nodes_to_find(5000), 500);
    let _ = NodeInfo::new(node("x", "1", "1Gi", json!({})));
}
