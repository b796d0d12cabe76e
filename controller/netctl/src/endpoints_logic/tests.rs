use super::*;
use serde_json::json;

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap()
}

fn pod(name: &str, ip: &str, ready: bool, labels: serde_json::Value) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"), "labels": labels},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap(),
    )
}

fn web() -> Service {
    svc(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "s1", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.43.0.9",
            "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                      {"name": "raw", "port": 81, "targetPort": 9000, "protocol": "UDP"}]}
    }))
}

#[test]
fn slices_hold_selected_pods_with_conditions_ports_and_refs() {
    let pods = vec![
        pod("b", "10.42.0.3", false, json!({"app": "web"})),
        pod("a", "10.42.0.2", true, json!({"app": "web"})),
        pod("other", "10.42.0.4", true, json!({"app": "db"})),
    ];
    let slices = desired_slices(&web(), &pods);
    assert_eq!(slices.len(), 1);
    let s = &slices[0];
    assert_eq!(s.address_type, "IPv4");
    let labels = s.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_SERVICE_NAME], "web");
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY);
    assert_eq!(
        s.metadata.owner_references.as_ref().unwrap()[0].kind,
        "Service"
    );
    let ports = s.ports.as_ref().unwrap();
    assert_eq!(ports[0].port, Some(8080));
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    assert_eq!(ports[1].port, Some(9000));
    assert_eq!(ports[1].protocol.as_deref(), Some("UDP"));
    assert_eq!(s.endpoints.len(), 2);
    assert_eq!(s.endpoints[0].addresses, vec!["10.42.0.2"]);
    assert_eq!(
        s.endpoints[0].conditions.as_ref().unwrap().ready,
        Some(true)
    );
    assert_eq!(
        s.endpoints[1].conditions.as_ref().unwrap().ready,
        Some(false)
    );
    assert_eq!(
        s.endpoints[1].conditions.as_ref().unwrap().serving,
        Some(false)
    );
    assert_eq!(s.endpoints[0].node_name.as_deref(), Some("n1"));
    assert_eq!(
        s.endpoints[0].target_ref.as_ref().unwrap().name.as_deref(),
        Some("a")
    );

    let ep = desired_endpoints(&web(), &pods);
    let subset = &ep.subsets.as_ref().unwrap()[0];
    assert_eq!(subset.addresses.as_ref().unwrap()[0].ip, "10.42.0.2");
    assert_eq!(
        subset.not_ready_addresses.as_ref().unwrap()[0].ip,
        "10.42.0.3"
    );
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, 8080);
}

#[test]
fn terminating_publish_not_ready_headless_and_hostname() {
    let mut terminating = (*pod("t", "10.42.0.5", true, json!({"app": "web"}))).clone();
    terminating.metadata.deletion_timestamp =
        Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
    let pods = vec![Arc::new(terminating)];
    let s = &desired_slices(&web(), &pods)[0];
    let c = s.endpoints[0].conditions.as_ref().unwrap();
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(false), Some(true), Some(true))
    );
    assert!(desired_endpoints(&web(), &pods).subsets.is_none());

    let headless = svc(json!({
        "metadata": {"name": "db", "namespace": "default", "uid": "s2"},
        "spec": {"selector": {"app": "db"}, "clusterIP": "None", "publishNotReadyAddresses": true}
    }));
    let mut p = (*pod("db-0", "10.42.0.7", false, json!({"app": "db"}))).clone();
    let spec = p.spec.as_mut().unwrap();
    spec.hostname = Some("db-0".into());
    spec.subdomain = Some("db".into());
    let s = &desired_slices(&headless, &[Arc::new(p)])[0];
    assert!(s
        .metadata
        .labels
        .as_ref()
        .unwrap()
        .contains_key(LABEL_HEADLESS));
    assert_eq!(s.endpoints[0].hostname.as_deref(), Some("db-0"));
    assert_eq!(
        s.endpoints[0].conditions.as_ref().unwrap().ready,
        Some(true)
    );
    assert_eq!(s.ports.as_ref().unwrap().len(), 0);
}

#[test]
fn more_than_100_endpoints_split_and_empty_service_gets_placeholder() {
    let pods: Vec<_> = (0..250)
        .map(|i| {
            pod(
                &format!("p{i:03}"),
                &format!("10.42.{}.{}", i / 200, i % 200 + 2),
                true,
                json!({"app": "web"}),
            )
        })
        .collect();
    let slices = desired_slices(&web(), &pods);
    assert_eq!(slices.len(), 3);
    assert!(slices
        .iter()
        .all(|s| s.endpoints.len() <= MAX_ENDPOINTS_PER_SLICE));
    let names: std::collections::BTreeSet<_> =
        slices.iter().map(|s| s.metadata.name.clone()).collect();
    assert_eq!(names.len(), 3);
    let empty = desired_slices(&web(), &[]);
    assert_eq!(empty.len(), 1);
    assert!(empty[0].endpoints.is_empty());
    assert!(desired_endpoints(&web(), &[]).subsets.is_none());
}

#[test]
fn named_port_missing_in_pod_and_unmanaged_services() {
    let no_named: Arc<Pod> = Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
            "status": {"podIP": "10.42.0.9", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap(),
    );
    let s = &desired_slices(&web(), &[no_named])[0];
    // Only the numeric port resolves; the pod lands in a slice of that port alone.
    assert_eq!(s.ports.as_ref().unwrap().len(), 1);
    assert_eq!(s.ports.as_ref().unwrap()[0].port, Some(9000));
    assert!(!manages(&svc(
        json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "x.org", "selector": {"a": "b"}}})
    )));
    assert!(!manages(&svc(
        json!({"metadata": {"name": "m"}, "spec": {"ports": [{"port": 1}]}})
    )));
    assert!(manages(&web()));
}
