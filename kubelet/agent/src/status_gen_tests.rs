//! Tests of the generated pod status: phases, conditions, container states.

use super::*;
use bramble_runtime::{ContainerConfig, ContainerKind, ContainerMeta, ExitInfo};
use std::collections::BTreeMap;

fn pod(policy: &str, inits: usize) -> Pod {
    let init: Vec<Value> = (0..inits)
        .map(|i| json!({"name": format!("init{i}"), "image": "busybox"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "u"},
        "spec": {"restartPolicy": policy, "initContainers": init,
                 "containers": [{"name": "main", "image": "busybox"}]}
    }))
    .unwrap()
}

fn container(
    name: &str,
    attempt: u32,
    status: ContainerStatusKind,
    exit: Option<i32>,
) -> ContainerState {
    let mut labels = BTreeMap::new();
    labels.insert(
        crate::container_config::LABEL_CONTAINER_NAME.to_string(),
        name.to_string(),
    );
    labels.insert(
        crate::container_config::LABEL_ATTEMPT.to_string(),
        attempt.to_string(),
    );
    labels.insert(LABEL_IMAGE_ID.to_string(), "busybox@sha256:1".to_string());
    ContainerState {
        meta: ContainerMeta {
            id: format!("{name}-{attempt}"),
            kind: ContainerKind::App {
                sandbox_id: "s".into(),
                config: ContainerConfig {
                    name: name.into(),
                    labels,
                    ..Default::default()
                },
            },
            cgroup_path: "x".into(),
            log_path: "x".into(),
            created_at: format!("2026-01-01T00:00:0{attempt}Z"),
        },
        status,
        pid: None,
        started_at: Some("2026-01-01T00:00:00.5Z".into()),
        exit: exit.map(|code| ExitInfo {
            exit_code: code,
            signal: None,
            oom_killed: false,
            finished_at: "2026-01-01T00:00:01.9Z".into(),
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
        }),
        shim_pid: None,
    }
}

fn gen(pod: &Pod, rp: &RuntimePod, waiting: &HashMap<String, Waiting>) -> Value {
    generate(&StatusInput {
        pod,
        runtime: rp,
        waiting,
        start_failures: &HashMap::new(),
        sandbox_ready: true,
        pod_ips: &[],
        host_ip: "10.0.0.1".parse().unwrap(),
        start_time: "2026-01-01T00:00:00Z",
        qos_class: "BestEffort",
        terminal: false,
        old: None,
        probes: &PodProbes::default(),
    })
}

#[test]
fn running_container_is_ready_and_pod_running() {
    let p = pod("Always", 0);
    let rp = RuntimePod {
        containers: vec![container("main", 0, ContainerStatusKind::Running, None)],
        ..Default::default()
    };
    let s = gen(&p, &rp, &HashMap::new());
    assert_eq!(s["phase"], "Running");
    assert_eq!(s["containerStatuses"][0]["ready"], true);
    assert_eq!(
        s["containerStatuses"][0]["state"]["running"]["startedAt"],
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(s["containerStatuses"][0]["containerID"], "bramble://main-0");
    let types: Vec<&str> = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    assert!(s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "True"));
}

#[test]
fn crash_loop_keeps_running_phase_with_last_state() {
    let p = pod("Always", 0);
    let rp = RuntimePod {
        containers: vec![
            container("main", 3, ContainerStatusKind::Exited, Some(1)),
            container("main", 2, ContainerStatusKind::Exited, Some(1)),
        ],
        ..Default::default()
    };
    let mut w = HashMap::new();
    w.insert(
        "main".to_string(),
        Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 40s".into(),
        },
    );
    let s = gen(&p, &rp, &w);
    let cs = &s["containerStatuses"][0];
    assert_eq!(s["phase"], "Running");
    assert_eq!(cs["restartCount"], 3);
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(
        cs["lastState"]["terminated"]["containerID"],
        "bramble://main-3"
    );
    let ready = &s["conditions"][2];
    assert_eq!(ready["reason"], "ContainersNotReady");
    assert_eq!(ready["message"], "containers with unready status: [main]");
}

#[test]
fn phases_follow_restart_policy_and_init_containers() {
    let exited = |code| RuntimePod {
        containers: vec![container(
            "main",
            0,
            ContainerStatusKind::Exited,
            Some(code),
        )],
        ..Default::default()
    };
    assert_eq!(
        gen(&pod("Never", 0), &exited(3), &HashMap::new())["phase"],
        "Failed"
    );
    assert_eq!(
        gen(&pod("OnFailure", 0), &exited(0), &HashMap::new())["phase"],
        "Succeeded"
    );
    assert_eq!(
        gen(&pod("Never", 0), &exited(0), &HashMap::new())["phase"],
        "Succeeded"
    );
    // Nothing started yet: Pending, app container waits for the init container.
    let s = gen(&pod("Always", 1), &RuntimePod::default(), &HashMap::new());
    assert_eq!(s["phase"], "Pending");
    assert_eq!(
        s["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(
        s["initContainerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(
        s["conditions"][1]["message"],
        "containers with incomplete status: [init0]"
    );
    // A failed init container fails a Never pod.
    let rp = RuntimePod {
        containers: vec![container("init0", 0, ContainerStatusKind::Exited, Some(1))],
        ..Default::default()
    };
    assert_eq!(
        gen(&pod("Never", 1), &rp, &HashMap::new())["phase"],
        "Failed"
    );
    assert_eq!(
        gen(&pod("Always", 1), &rp, &HashMap::new())["phase"],
        "Pending"
    );
}
