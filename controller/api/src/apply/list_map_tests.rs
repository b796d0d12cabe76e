//! Server-side apply of lists keyed by compound `x-kubernetes-list-map-keys` (Service and
//! container ports by port and protocol), in the shape of Bramble's own kube-dns Service.

use serde_json::json;

use super::*;
use crate::registry::Registry;

fn services() -> std::sync::Arc<ResourceInfo> {
    Registry::builtin().find("", "v1", "services").unwrap()
}

const NOW: &str = "2026-01-01T00:00:00Z";
const LATER: &str = "2026-01-02T00:00:00Z";

/// The kube-dns Service as controller/dns publishes it: 53/UDP and 53/TCP.
fn kube_dns(udp_target: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {"clusterIP": "10.43.0.10", "selector": {"k8s-app": "kube-dns"},
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": udp_target},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353}]}})
}

#[test]
fn a_second_apply_of_udp_and_tcp_on_one_port_changes_nothing() {
    let info = services();
    let first = apply(&info, None, &kube_dns(5353), "bramble-dns", false, NOW).unwrap();
    let ports = &first["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:ports"];
    let keys: Vec<&String> = ports.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            r#"k:{"port":53,"protocol":"TCP"}"#,
            r#"k:{"port":53,"protocol":"UDP"}"#
        ]
    );
    let udp = &ports[r#"k:{"port":53,"protocol":"UDP"}"#];
    for f in [".", "f:name", "f:port", "f:protocol", "f:targetPort"] {
        assert_eq!(udp[f], json!({}), "{f} in {udp}");
    }
    // a later apply of the same configuration keeps even the entry's time: nothing changes
    let dns = |live: &Value, udp_target| {
        apply(
            &info,
            Some(live),
            &kube_dns(udp_target),
            "bramble-dns",
            false,
            LATER,
        )
        .unwrap()
    };
    let second = dns(&first, 5353);
    assert_eq!(second, first);
    let third = dns(&first, 53);
    assert_eq!(third["metadata"]["managedFields"][0]["time"], LATER);
    assert_eq!(second["spec"]["ports"].as_array().unwrap().len(), 2);
}

#[test]
fn another_manager_conflicts_on_one_protocol_of_the_port() {
    let info = services();
    let live = apply(&info, None, &kube_dns(5353), "bramble-dns", false, NOW).unwrap();
    let bob = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {"ports": [{"port": 53, "protocol": "UDP", "targetPort": 5300}]}});
    let err = apply(&info, Some(&live), &bob, "bob", false, LATER).unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"bramble-dns\" using v1: \
         .spec.ports[port=53,protocol=\"UDP\"].targetPort"
    );
    assert_eq!(
        err.causes[0].field,
        ".spec.ports[port=53,protocol=\"UDP\"].targetPort"
    );
    // forced: bob takes the UDP target port, the TCP element is untouched
    let forced = apply(&info, Some(&live), &bob, "bob", true, LATER).unwrap();
    let ports = forced["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[0]["protocol"], "UDP");
    assert_eq!(ports[0]["targetPort"], 5300);
    assert_eq!(ports[1]["protocol"], "TCP");
    assert_eq!(ports[1]["targetPort"], 5353);
    let dns = read_entries(&forced)
        .into_iter()
        .find(|e| e.manager == "bramble-dns")
        .unwrap();
    let paths = dns.fields.leaf_paths();
    assert!(!paths.contains(&".spec.ports[port=53,protocol=\"UDP\"].targetPort".to_string()));
    assert!(paths.contains(&".spec.ports[port=53,protocol=\"UDP\"].name".to_string()));
}

#[test]
fn an_omitted_protocol_is_the_tcp_element() {
    let info = services();
    let live = apply(&info, None, &kube_dns(5353), "bramble-dns", false, NOW).unwrap();
    let bob = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {"ports": [{"port": 53, "targetPort": 9053}]}});
    let err = apply(&info, Some(&live), &bob, "bob", false, LATER).unwrap_err();
    assert_eq!(
        err.causes[0].field,
        ".spec.ports[port=53,protocol=\"TCP\"].targetPort"
    );
    let forced = apply(&info, Some(&live), &bob, "bob", true, LATER).unwrap();
    assert_eq!(forced["spec"]["ports"][1]["targetPort"], 9053);
    assert_eq!(forced["spec"]["ports"][0]["targetPort"], 5353);
    let entries = read_entries(&forced);
    let bob = entries.iter().find(|e| e.manager == "bob").unwrap();
    assert_eq!(
        bob.fields.leaf_paths(),
        [
            ".spec.ports[port=53,protocol=\"TCP\"]",
            ".spec.ports[port=53,protocol=\"TCP\"].port",
            ".spec.ports[port=53,protocol=\"TCP\"].targetPort"
        ],
        "the omitted key field is not owned"
    );
}

#[test]
fn an_element_no_longer_applied_is_removed_whole() {
    let info = services();
    let live = apply(&info, None, &kube_dns(5353), "bramble-dns", false, NOW).unwrap();
    let mut udp_only = kube_dns(5353);
    udp_only["spec"]["ports"].as_array_mut().unwrap().pop();
    let out = apply(&info, Some(&live), &udp_only, "bramble-dns", false, LATER).unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}])
    );
}

#[test]
fn elements_without_keys_or_with_duplicate_keys_are_refused() {
    let info = services();
    let mut dup = kube_dns(5353);
    dup["spec"]["ports"][1]["protocol"] = json!("UDP");
    let err = apply(&info, None, &dup, "m", false, NOW).unwrap_err();
    assert_eq!(err.code(), 500);
    assert_eq!(
        err.message,
        "failed to create typed patch object (kube-system/kube-dns; /v1, Kind=Service): \
         .spec.ports: duplicate entries for key [port=53,protocol=\"UDP\"]"
    );
    let mut keyless = kube_dns(5353);
    keyless["spec"]["ports"][0]
        .as_object_mut()
        .unwrap()
        .remove("port");
    let err = apply(&info, None, &keyless, "m", false, NOW).unwrap_err();
    assert!(
        err.message.ends_with(
            ".spec.ports: element 0: associative list with keys has an element that omits \
             key field \"port\" (and doesn't have default value)"
        ),
        "{}",
        err.message
    );
}

#[test]
fn container_ports_and_spread_constraints_use_their_list_map_keys() {
    let info = Registry::builtin().find("", "v1", "pods").unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [
                {"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}]}],
            "topologySpreadConstraints": [
                {"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "maxSkew": 1},
                {"topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 2}]}});
    let first = apply(&info, None, &pod, "m", false, NOW).unwrap();
    let again = apply(&info, Some(&first), &pod, "m", false, NOW).unwrap();
    assert_eq!(again, first);
    let f = &first["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    let c = &f["f:containers"][r#"k:{"name":"c"}"#]["f:ports"];
    assert!(
        c[r#"k:{"containerPort":53,"protocol":"UDP"}"#].is_object(),
        "{c}"
    );
    assert!(
        c[r#"k:{"containerPort":53,"protocol":"TCP"}"#].is_object(),
        "{c}"
    );
    let t = &f["f:topologySpreadConstraints"];
    assert!(
        t[r#"k:{"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}"#]["f:maxSkew"]
            .is_object(),
        "{t}"
    );
}

#[test]
fn entries_are_written_in_upstream_order() {
    let info = services();
    let mut live = kube_dns(5353);
    record_create(&info, &mut live, "kubectl-create", NOW);
    let mut bob = kube_dns(5353);
    bob["spec"]["ports"].as_array_mut().unwrap().truncate(1);
    let out = apply(&info, Some(&live), &bob, "bob", false, LATER).unwrap();
    let out = apply(&info, Some(&out), &kube_dns(5353), "alice", false, LATER).unwrap();
    let order: Vec<(&str, &str)> = out["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().unwrap(),
                e["manager"].as_str().unwrap(),
            )
        })
        .collect();
    // operation (Apply first), then time, then manager
    assert_eq!(
        order,
        [
            ("Apply", "alice"),
            ("Apply", "bob"),
            ("Update", "kubectl-create")
        ]
    );
}
