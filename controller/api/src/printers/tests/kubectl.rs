//! Real kubectl, every version on this machine, reading our Tables: a minimal HTTP server
//! (legacy discovery from the built-in registry, lists answered with [`table`]) and
//! `kubectl get` runs whose output is compared, column by column, with what kubectl prints
//! against an upstream API server for the same objects.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::{ago, now};
use crate::printers::{table, IncludeObject, TableOptions};
use crate::registry::Registry;
use crate::resources::ResourceInfo;

/// Objects the fake server holds, by `(api_version, kind)`.
struct Fixture {
    registry: Registry,
    objects: Vec<(String, String, Value)>,
}

fn obj(api_version: &str, kind: &str, v: Value) -> (String, String, Value) {
    (api_version.to_string(), kind.to_string(), v)
}

fn fixture() -> Fixture {
    let running = json!({"running": {"startedAt": ago(TimeDelta::minutes(5))}});
    let objects = vec![
        obj(
            "v1",
            "Pod",
            json!({"metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
                "creationTimestamp": ago(TimeDelta::days(2))},
            "spec": {"nodeName": "pi-1", "containers": [{"name": "web", "image": "nginx"}]},
            "status": {"phase": "Running", "podIP": "10.1.0.5", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "web", "ready": true, "restartCount": 3, "state": running,
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(TimeDelta::minutes(5))}}}]}}),
        ),
        obj(
            "v1",
            "Pod",
            json!({"metadata": {"name": "init-1", "namespace": "default",
                "creationTimestamp": ago(TimeDelta::seconds(10))},
            "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "setup", "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
        ),
        obj(
            "v1",
            "Pod",
            json!({"metadata": {"name": "coredns-0", "namespace": "kube-system",
                "creationTimestamp": ago(TimeDelta::hours(3))},
            "spec": {"containers": [{"name": "coredns"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "coredns", "ready": true, "state": {"running": {}}}]}}),
        ),
        obj(
            "v1",
            "Node",
            json!({"metadata": {"name": "pi-1", "creationTimestamp": ago(TimeDelta::days(5)),
                "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.33.0"}}}),
        ),
        obj(
            "v1",
            "Node",
            json!({"metadata": {"name": "pi-2", "creationTimestamp": ago(TimeDelta::minutes(30))},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}], "nodeInfo": {"kubeletVersion": "v1.33.0"}}}),
        ),
        obj(
            "v1",
            "Service",
            json!({"metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(TimeDelta::days(2))},
            "spec": {"type": "NodePort", "clusterIP": "10.43.12.7", "clusterIPs": ["10.43.12.7"], "selector": {"app": "web"},
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}}),
        ),
        obj(
            "v1",
            "Service",
            json!({"metadata": {"name": "lb", "namespace": "default", "creationTimestamp": ago(TimeDelta::hours(1))},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.43.0.9"], "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}}),
        ),
        obj(
            "apps/v1",
            "Deployment",
            json!({"metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(TimeDelta::days(2))},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
        ),
        obj(
            "batch/v1",
            "Job",
            json!({"metadata": {"name": "pi", "namespace": "default", "creationTimestamp": ago(TimeDelta::minutes(10))},
            "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
            "status": {"succeeded": 1, "startTime": ago(TimeDelta::minutes(10)), "completionTime": ago(TimeDelta::seconds(410)),
                "conditions": [{"type": "Complete", "status": "True"}]}}),
        ),
        obj(
            "v1",
            "Event",
            json!({"metadata": {"name": "web-1.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1"}, "type": "Normal", "reason": "Pulled",
            "message": "Pulled image", "lastTimestamp": ago(TimeDelta::minutes(3)), "firstTimestamp": ago(TimeDelta::minutes(3)), "count": 1}),
        ),
        obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            json!({"metadata": {"name": "admin",
            "creationTimestamp": "2024-05-01T10:20:30Z"}}),
        ),
        obj(
            "storage.k8s.io/v1",
            "StorageClass",
            json!({"metadata": {"name": "local-path", "creationTimestamp": ago(TimeDelta::days(5)),
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "bramble.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
        ),
        obj(
            "scheduling.k8s.io/v1",
            "PriorityClass",
            json!({"metadata": {"name": "high", "creationTimestamp": ago(TimeDelta::days(5))},
            "value": 1000000, "preemptionPolicy": "PreemptLowerPriority"}),
        ),
    ];
    Fixture {
        registry: Registry::builtin(),
        objects,
    }
}

fn resource_json(r: &ResourceInfo) -> Value {
    json!({"name": r.resource, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
           "verbs": r.verbs, "shortNames": r.short_names, "categories": r.categories})
}

fn status(code: u16, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}),
    )
}

/// Answers one GET as a Kubernetes API server would for these fixtures.
fn route(fx: &Fixture, target: &str, accept: &str) -> (u16, Value) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => return (200, json!({"kind": "APIVersions", "versions": ["v1"]})),
        ["apis"] => {
            let groups: Vec<Value> = fx
                .registry
                .group_versions()
                .into_iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(g, v)| {
                    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            return (
                200,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            );
        }
        ["api", v, rest @ ..] => ("", *v, rest.to_vec()),
        ["apis", g, v, rest @ ..] => (*g, *v, rest.to_vec()),
        _ => return status(404, "the server could not find the requested resource"),
    };
    if rest.is_empty() {
        let resources: Vec<Value> = fx
            .registry
            .in_group_version(group, version)
            .iter()
            .map(|r| resource_json(r))
            .collect();
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        return (
            200,
            json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources}),
        );
    }
    let (namespace, resource, name) = match rest.as_slice() {
        ["namespaces", ns, res, tail @ ..] => (Some(*ns), *res, tail.first().copied()),
        [res, tail @ ..] => (None, *res, tail.first().copied()),
        [] => unreachable!("handled above"),
    };
    let Some(info) = fx.registry.find(group, version, resource) else {
        return status(404, "the server could not find the requested resource");
    };
    let items: Vec<Value> = fx
        .objects
        .iter()
        .filter(|(av, kind, _)| *av == info.api_version() && *kind == info.kind)
        .map(|(_, _, o)| o.clone())
        .filter(|o| namespace.is_none_or(|ns| o["metadata"]["namespace"] == json!(ns)))
        .filter(|o| name.is_none_or(|n| o["metadata"]["name"] == json!(n)))
        .collect();
    if let Some(n) = name {
        if items.is_empty() {
            return status(
                404,
                &format!("{} \"{n}\" not found", info.qualified_resource()),
            );
        }
    }
    if !accept.contains("as=Table") {
        return (
            200,
            json!({"kind": info.list_kind, "apiVersion": info.api_version(), "metadata": {}, "items": items}),
        );
    }
    let include = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("includeObject="))
        .unwrap_or("");
    let mut opts = TableOptions::at(now());
    opts.include_object = match IncludeObject::parse(include) {
        Ok(i) => i,
        Err(e) => return status(400, &e),
    };
    let mut t = table(&info, &items, &opts);
    t["metadata"]["resourceVersion"] = json!("1");
    (200, t)
}

fn handle(fx: &Fixture, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut accept = String::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "accept" => accept = v.trim().to_string(),
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (code, value) = route(fx, &target, &accept);
        let body = value.to_string();
        write!(
            stream,
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()?;
    }
}

/// Starts the server on a free loopback port; returns its URL.
fn start() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fx = Arc::new(fixture());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let fx = fx.clone();
            std::thread::spawn(move || {
                let _ = handle(&fx, stream);
            });
        }
    });
    url
}

/// Every kubectl on this machine (`/usr/bin/kubectl` must exist).
fn kubectls() -> Vec<PathBuf> {
    let mut all = vec![PathBuf::from("/usr/bin/kubectl")];
    assert!(all[0].exists(), "kubectl is installed at /usr/bin/kubectl");
    if let Ok(dir) = std::fs::read_dir("/usr/lib/google-cloud-sdk/bin") {
        let mut versioned: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("kubectl.1."))
            })
            .collect();
        versioned.sort();
        all.extend(versioned);
    }
    all
}

/// Output lines split into cells (kubectl pads cells with at least three spaces).
fn grid(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim_end()
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn run(kubectl: &Path, url: &str, home: &Path, args: &[&str]) -> String {
    let out = Command::new(kubectl)
        .args(["--server", url, "--request-timeout=20s", "--cache-dir"])
        .arg(home.join("cache"))
        .args(args)
        .env("HOME", home)
        .env("KUBECONFIG", home.join("config"))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        kubectl.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_kubectl_prints_our_tables_like_upstream() {
    let url = start();
    let cases: Vec<(Vec<&str>, Vec<Vec<&str>>)> = vec![
        (
            vec!["get", "pods"],
            vec![
                vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                vec!["web-1", "1/1", "Running", "3 (5m ago)", "2d"],
                vec!["init-1", "0/1", "Init:0/1", "0", "10s"],
            ],
        ),
        (
            vec!["get", "pods", "-o", "wide"],
            vec![
                vec![
                    "NAME",
                    "READY",
                    "STATUS",
                    "RESTARTS",
                    "AGE",
                    "IP",
                    "NODE",
                    "NOMINATED NODE",
                    "READINESS GATES",
                ],
                vec![
                    "web-1",
                    "1/1",
                    "Running",
                    "3 (5m ago)",
                    "2d",
                    "10.1.0.5",
                    "pi-1",
                    "<none>",
                    "<none>",
                ],
                vec![
                    "init-1", "0/1", "Init:0/1", "0", "10s", "<none>", "<none>", "<none>", "<none>",
                ],
            ],
        ),
        (
            vec!["get", "pods", "--show-labels"],
            vec![
                vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"],
                vec!["web-1", "1/1", "Running", "3 (5m ago)", "2d", "app=web"],
                vec!["init-1", "0/1", "Init:0/1", "0", "10s", "<none>"],
            ],
        ),
        (
            vec!["get", "pods", "--sort-by", ".metadata.name", "--no-headers"],
            vec![
                vec!["init-1", "0/1", "Init:0/1", "0", "10s"],
                vec!["web-1", "1/1", "Running", "3 (5m ago)", "2d"],
            ],
        ),
        (
            vec!["get", "po", "-A"],
            vec![
                vec!["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                vec!["default", "web-1", "1/1", "Running", "3 (5m ago)", "2d"],
                vec!["default", "init-1", "0/1", "Init:0/1", "0", "10s"],
                vec!["kube-system", "coredns-0", "1/1", "Running", "0", "3h"],
            ],
        ),
        (
            vec!["get", "pod", "web-1"],
            vec![
                vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                vec!["web-1", "1/1", "Running", "3 (5m ago)", "2d"],
            ],
        ),
        (
            vec!["get", "nodes"],
            vec![
                vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
                vec!["pi-1", "Ready", "control-plane", "5d", "v1.33.0"],
                vec![
                    "pi-2",
                    "NotReady,SchedulingDisabled",
                    "<none>",
                    "30m",
                    "v1.33.0",
                ],
            ],
        ),
        (
            vec!["get", "svc"],
            vec![
                vec![
                    "NAME",
                    "TYPE",
                    "CLUSTER-IP",
                    "EXTERNAL-IP",
                    "PORT(S)",
                    "AGE",
                ],
                vec![
                    "web",
                    "NodePort",
                    "10.43.12.7",
                    "<none>",
                    "80:30080/TCP",
                    "2d",
                ],
                vec![
                    "lb",
                    "LoadBalancer",
                    "10.43.0.9",
                    "<pending>",
                    "443:31443/TCP",
                    "60m",
                ],
            ],
        ),
        (
            vec!["get", "deploy", "-o", "wide"],
            vec![
                vec![
                    "NAME",
                    "READY",
                    "UP-TO-DATE",
                    "AVAILABLE",
                    "AGE",
                    "CONTAINERS",
                    "IMAGES",
                    "SELECTOR",
                ],
                vec!["web", "2/3", "3", "2", "2d", "web", "nginx:1.27", "app=web"],
            ],
        ),
        (
            vec!["get", "jobs"],
            vec![
                vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
                vec!["pi", "Complete", "1/1", "3m10s", "10m"],
            ],
        ),
        (
            vec!["get", "events"],
            vec![
                vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
                vec!["3m", "Normal", "Pulled", "pod/web-1", "Pulled image"],
            ],
        ),
        (
            vec!["get", "clusterroles"],
            vec![
                vec!["NAME", "CREATED AT"],
                vec!["admin", "2024-05-01T10:20:30Z"],
            ],
        ),
        (
            vec!["get", "sc"],
            vec![
                vec![
                    "NAME",
                    "PROVISIONER",
                    "RECLAIMPOLICY",
                    "VOLUMEBINDINGMODE",
                    "ALLOWVOLUMEEXPANSION",
                    "AGE",
                ],
                vec![
                    "local-path (default)",
                    "bramble.io/local-path",
                    "Delete",
                    "WaitForFirstConsumer",
                    "false",
                    "5d",
                ],
            ],
        ),
        (
            vec!["get", "pc"],
            vec![
                vec!["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
                vec!["high", "1000000", "false", "5d", "PreemptLowerPriority"],
            ],
        ),
    ];
    let home =
        std::env::temp_dir().join(format!("bramble-printers-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    for kubectl in kubectls() {
        for (args, want) in &cases {
            let out = run(&kubectl, &url, &home, args);
            let want: Vec<Vec<String>> = want
                .iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect();
            assert_eq!(grid(&out), want, "{} {args:?}:\n{out}", kubectl.display());
        }
    }
    let _ = std::fs::remove_dir_all(&home);
}
