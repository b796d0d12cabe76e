use super::*;
use serde_json::json;

fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: serde_json::Value) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i",
                     "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip},
        }))
        .unwrap(),
    )
}

fn ns(name: &str, labels: serde_json::Value) -> Arc<Namespace> {
    Arc::new(serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap())
}

fn policy(ns: &str, spec: serde_json::Value) -> Arc<NetworkPolicy> {
    Arc::new(
        serde_json::from_value(json!({"metadata": {"namespace": ns, "name": "p"}, "spec": spec}))
            .unwrap(),
    )
}

fn cluster() -> (Vec<Arc<Pod>>, Vec<Arc<Namespace>>) {
    (
        vec![
            pod("default", "web", "a", "10.42.0.5", json!({"app": "web"})),
            pod(
                "default",
                "client",
                "b",
                "10.42.1.7",
                json!({"access": "true"}),
            ),
            pod("default", "other", "b", "10.42.1.8", json!({})),
            pod("team", "t", "b", "10.42.1.9", json!({"access": "true"})),
        ],
        vec![ns("default", json!({})), ns("team", json!({"team": "x"}))],
    )
}

fn hosts(ips: &[&str]) -> Option<Vec<Net>> {
    Some(
        ips.iter()
            .map(|ip| Net {
                cidr: format!("{ip}/32"),
                except: vec![],
            })
            .collect(),
    )
}

#[test]
fn pods_without_a_selecting_policy_are_not_isolated() {
    let (pods, nss) = cluster();
    let p = policy(
        "default",
        json!({"podSelector": {"matchLabels": {"app": "db"}}}),
    );
    assert!(build_model("a", &[p], &pods, &nss).is_empty());
    let p = policy("team", json!({"podSelector": {}}));
    assert!(build_model("a", &[p], &pods, &nss).is_empty());
}

#[test]
fn default_deny_isolates_only_this_nodes_pods() {
    let (pods, nss) = cluster();
    let p = policy(
        "default",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    let m = build_model("a", std::slice::from_ref(&p), &pods, &nss);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].pod, "default/web");
    assert_eq!(m[0].ingress, Some(vec![]));
    assert_eq!(m[0].egress, None);
    let m = build_model("b", &[p], &pods, &nss);
    let isolated: Vec<&str> = m.iter().map(|p| p.pod.as_str()).collect();
    assert_eq!(isolated, ["default/client", "default/other"]);
}

#[test]
fn pod_and_namespace_selectors_resolve_to_pod_ips() {
    let (pods, nss) = cluster();
    let p = policy(
        "default",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "true"}}}],
                            "ports": [{"port": 8080}]},
                           {"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}]},
                           {"from": [{"namespaceSelector": {},
                                      "podSelector": {"matchLabels": {"access": "true"}}}],
                            "ports": [{"port": "http"}, {"port": 9000, "endPort": 9100,
                                                           "protocol": "UDP"}]}]}),
    );
    let m = build_model("a", &[p], &pods, &nss);
    let tcp8080 = PortMatch {
        protocol: "tcp".into(),
        range: Some((8080, 8080)),
    };
    let udp = PortMatch {
        protocol: "udp".into(),
        range: Some((9000, 9100)),
    };
    assert_eq!(
        m[0].ingress,
        Some(vec![
            Allow {
                peers: hosts(&["10.42.1.7"]),
                ports: Some(vec![tcp8080.clone()])
            },
            Allow {
                peers: hosts(&["10.42.1.7", "10.42.1.9"]),
                ports: Some(vec![tcp8080, udp])
            },
            Allow {
                peers: hosts(&["10.42.1.9"]),
                ports: None
            },
        ])
    );
}

#[test]
fn namespaces_match_their_name_label_and_empty_from_allows_everyone() {
    let (pods, nss) = cluster();
    let p = policy(
        "default",
        json!({"podSelector": {},
               "ingress": [{"from": [{"namespaceSelector": {"matchLabels":
                                         {"kubernetes.io/metadata.name": "team"}}}]},
                           {"ports": [{"protocol": "UDP", "port": 53}]}]}),
    );
    let m = build_model("a", &[p], &pods, &nss);
    let ingress = m[0].ingress.clone().unwrap();
    assert!(ingress.contains(&Allow {
        peers: hosts(&["10.42.1.9"]),
        ports: None
    }));
    assert!(ingress.contains(&Allow {
        peers: None,
        ports: Some(vec![PortMatch {
            protocol: "udp".into(),
            range: Some((53, 53))
        }])
    }));
}

#[test]
fn a_peer_selecting_nobody_allows_nothing_and_an_unknown_port_name_too() {
    let (pods, nss) = cluster();
    let p = policy(
        "default",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "none"}}}]},
                           {"ports": [{"port": "metrics"}]}]}),
    );
    let m = build_model("a", &[p], &pods, &nss);
    assert_eq!(m[0].ingress, Some(vec![]));
}

#[test]
fn egress_ip_blocks_with_exceptions_and_named_ports_on_each_destination() {
    let (pods, nss) = cluster();
    let p = policy(
        "default",
        json!({"podSelector": {"matchLabels": {"access": "true"}},
               "policyTypes": ["Egress"],
               "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                               "except": ["10.42.0.0/16"]}}],
                           "ports": [{"port": 53, "protocol": "UDP"}]},
                          {"to": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                           "ports": [{"port": "http"}]}]}),
    );
    let m = build_model("b", &[p], &pods, &nss);
    assert_eq!(m.len(), 1, "only default/client on node b is selected");
    assert_eq!(m[0].ingress, None);
    assert_eq!(
        m[0].egress,
        Some(vec![
            Allow {
                peers: Some(vec![Net {
                    cidr: "10.0.0.0/8".into(),
                    except: vec!["10.42.0.0/16".into()]
                }]),
                ports: Some(vec![PortMatch {
                    protocol: "udp".into(),
                    range: Some((53, 53))
                }])
            },
            Allow {
                peers: hosts(&["10.42.0.5"]),
                ports: Some(vec![PortMatch {
                    protocol: "tcp".into(),
                    range: Some((8080, 8080))
                }])
            },
        ])
    );
}

#[test]
fn finished_and_host_network_pods_are_neither_targets_nor_peers() {
    let (mut pods, nss) = cluster();
    let mut done = (*pods[1]).clone();
    done.status.as_mut().unwrap().phase = Some("Succeeded".into());
    pods[1] = Arc::new(done);
    let mut host = (*pods[0]).clone();
    host.spec.as_mut().unwrap().host_network = Some(true);
    pods.push(Arc::new(host));
    let p = policy(
        "default",
        json!({"podSelector": {},
               "ingress": [{"from": [{"podSelector": {}}]}]}),
    );
    let m = build_model("a", &[p], &pods, &nss);
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].ingress,
        Some(vec![Allow {
            peers: hosts(&["10.42.0.5", "10.42.1.8"]),
            ports: None
        }])
    );
}
