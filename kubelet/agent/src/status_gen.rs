//! The pod status the kubelet reports (upstream `generateAPIPodStatus` and `getPhase`):
//! container statuses from the runtime plus the worker's waiting reasons, the phase, the
//! conditions and the pod's addresses.

use std::collections::HashMap;
use std::net::IpAddr;

use bramble_runtime::{ContainerState, ContainerStatusKind};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

use crate::container_config::LABEL_IMAGE_ID;
use crate::node_status::now_time;
use crate::pod_spec::{containers, init_containers, restart_policy};
use crate::prober::PodProbes;
use crate::runtime_pod::{attempt, label, RuntimePod};

/// Prefix of `containerID` values.
pub const CONTAINER_ID_PREFIX: &str = "bramble://";
/// `startedAt` upstream reports for a container that never started.
const ZERO_TIME: &str = "1970-01-01T00:00:00Z";

/// Why a container is not running, as the worker decided in its last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Upstream reason (`ErrImagePull`, `CrashLoopBackOff`, ...).
    pub reason: String,
    /// Upstream message.
    pub message: String,
}

/// A container that could not be created or started (upstream reports these as terminated
/// with reason `StartError` and exit code 128).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// The attempt number it would have had.
    pub attempt: u32,
    /// The runtime's error.
    pub message: String,
    /// When it failed (RFC 3339).
    pub at: String,
}

/// Everything the status is generated from.
pub struct StatusInput<'a> {
    /// The pod as last seen from the API.
    pub pod: &'a Pod,
    /// The runtime's containers of the pod.
    pub runtime: &'a RuntimePod,
    /// Waiting reasons by container name.
    pub waiting: &'a HashMap<String, Waiting>,
    /// Failed starts by container name (the newest).
    pub start_failures: &'a HashMap<String, StartFailure>,
    /// The sandbox runs and its network is set up.
    pub sandbox_ready: bool,
    /// Pod IPs.
    pub pod_ips: &'a [IpAddr],
    /// The node's IP.
    pub host_ip: IpAddr,
    /// `status.startTime`.
    pub start_time: &'a str,
    /// `status.qosClass`.
    pub qos_class: &'a str,
    /// The pod is being terminated or no container will run again.
    pub terminal: bool,
    /// The previous status (for `lastTransitionTime`).
    pub old: Option<&'a Value>,
    /// Probe verdicts (`started`, `ready` of running containers).
    pub probes: &'a PodProbes,
}

/// Seconds-precision `metav1.Time` of a runtime RFC 3339 timestamp.
pub fn api_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// The `terminated` state of an exited runtime container.
pub fn terminated(c: &ContainerState) -> Option<Value> {
    if c.status != ContainerStatusKind::Exited {
        return None;
    }
    let exit = c.exit.as_ref();
    let mut t = json!({
        "exitCode": exit.map_or(0, |e| e.exit_code),
        "reason": exit.map_or("Unknown", |e| e.reason.as_str()),
        "startedAt": c.started_at.as_deref().map_or(ZERO_TIME.to_string(), api_time),
        "finishedAt": exit.map_or_else(now_time, |e| api_time(&e.finished_at)),
        "containerID": format!("{CONTAINER_ID_PREFIX}{}", c.meta.id),
    });
    if let Some(sig) = exit.and_then(|e| e.signal) {
        t["signal"] = json!(sig);
    }
    Some(t)
}

fn start_error(f: &StartFailure) -> Value {
    json!({
        "exitCode": 128,
        "reason": "StartError",
        "message": f.message,
        "startedAt": ZERO_TIME,
        "finishedAt": f.at,
    })
}

fn normalized_image(image: &str) -> String {
    bramble_images::ImageRef::parse_with_default_tag(image)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| image.to_string())
}

/// One entry of `containerStatuses`/`initContainerStatuses`.
fn container_status(
    input: &StatusInput<'_>,
    spec: &Container,
    init: bool,
    default_waiting: &str,
) -> Value {
    let name = spec.name.as_str();
    let mut runs = input.runtime.named(name);
    let current = runs.next();
    let previous = runs.next();
    let failure = input
        .start_failures
        .get(name)
        .filter(|f| current.is_none_or(|c| f.attempt > attempt(c)));
    let waiting = input.waiting.get(name);
    let image = normalized_image(spec.image.as_deref().unwrap_or_default());
    let mut st = json!({
        "name": name,
        "image": image,
        "imageID": "",
        "ready": false,
        "restartCount": 0,
        "started": false,
        "state": {},
        "lastState": {},
    });
    let waiting_state = |w: Option<&Waiting>| match w {
        Some(w) => json!({"waiting": {"reason": w.reason, "message": w.message}}),
        None => json!({"waiting": {"reason": default_waiting}}),
    };
    if let Some(f) = failure {
        st["restartCount"] = json!(f.attempt);
        st["state"] = waiting_state(waiting);
        st["lastState"] = json!({"terminated": start_error(f)});
        if let Some(c) = current {
            st["imageID"] = json!(label(c, LABEL_IMAGE_ID).unwrap_or_default());
        }
        return st;
    }
    let Some(c) = current else {
        st["state"] = waiting_state(waiting);
        return st;
    };
    st["restartCount"] = json!(attempt(c));
    st["imageID"] = json!(label(c, LABEL_IMAGE_ID).unwrap_or_default());
    st["containerID"] = json!(format!("{CONTAINER_ID_PREFIX}{}", c.meta.id));
    let prev_terminated = previous.and_then(terminated);
    match c.status {
        ContainerStatusKind::Running => {
            st["state"] = json!({"running": {
                "startedAt": c.started_at.as_deref().map_or_else(now_time, api_time)
            }});
            // Probes decide `started` and `ready` of app containers (an init container is
            // ready once it has succeeded).
            let (started, ready) = if init {
                (true, false)
            } else {
                input.probes.started_ready(spec, &c.meta.id)
            };
            st["started"] = json!(started);
            st["ready"] = json!(ready);
            if let Some(t) = prev_terminated {
                st["lastState"] = json!({"terminated": t});
            }
        }
        ContainerStatusKind::Exited => {
            let t = terminated(c).unwrap_or(Value::Null);
            if let Some(w) = waiting.filter(|_| !input.terminal) {
                st["state"] = json!({"waiting": {"reason": w.reason, "message": w.message}});
                st["lastState"] = json!({"terminated": t});
            } else {
                if init && t["exitCode"] == 0 {
                    st["ready"] = json!(true);
                }
                st["state"] = json!({"terminated": t});
                if let Some(p) = prev_terminated {
                    st["lastState"] = json!({"terminated": p});
                }
            }
        }
        ContainerStatusKind::Created | ContainerStatusKind::Unknown => {
            st["state"] = waiting_state(waiting);
            if let Some(p) = prev_terminated {
                st["lastState"] = json!({"terminated": p});
            }
        }
    }
    if let Some(reason) = st["state"]["waiting"]["reason"].as_str() {
        if reason.is_empty() {
            st["state"]["waiting"] = json!({});
        }
    }
    if st["state"]["waiting"]["message"] == "" {
        if let Some(w) = st["state"]["waiting"].as_object_mut() {
            w.remove("message");
        }
    }
    st
}

/// upstream `getPhase` over generated container statuses.
pub fn phase(
    pod: &Pod,
    init_statuses: &[Value],
    statuses: &[Value],
    terminal: bool,
) -> &'static str {
    let policy = restart_policy(pod);
    let (mut pending_init, mut failed_init) = (0, 0);
    for s in init_statuses {
        let state = &s["state"];
        if state.get("running").is_some() {
            pending_init += 1;
        } else if let Some(t) = state.get("terminated") {
            if t["exitCode"] != 0 {
                failed_init += 1;
            }
        } else if let Some(t) = s["lastState"].get("terminated") {
            if t["exitCode"] != 0 {
                failed_init += 1;
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        let state = &s["state"];
        if state.get("running").is_some() {
            running += 1;
        } else if let Some(t) = state.get("terminated") {
            stopped += 1;
            if t["exitCode"] == 0 {
                succeeded += 1;
            }
        } else if s["lastState"].get("terminated").is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    let any_started = statuses
        .iter()
        .any(|s| s["state"].get("waiting").is_none() || s["lastState"].get("terminated").is_some());
    if (pending_init > 0 && !any_started) || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if terminal {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn condition(
    old: Option<&Value>,
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let previous = old
        .and_then(|o| o["conditions"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_));
    let transition = match previous {
        Some(p) if p["status"] == status && p["lastTransitionTime"].is_string() => {
            p["lastTransitionTime"].clone()
        }
        _ => json!(now_time()),
    };
    let mut c = json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": transition});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// Generates `status` for a pod.
pub fn generate(input: &StatusInput<'_>) -> Value {
    let inits = init_containers(input.pod);
    let apps = containers(input.pod);
    let init_statuses: Vec<Value> = inits
        .iter()
        .map(|c| container_status(input, c, true, "PodInitializing"))
        .collect();
    let initialized = init_statuses.iter().all(|s| {
        s["state"]["terminated"]["exitCode"] == 0 && s["state"].get("terminated").is_some()
    });
    let app_default = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let statuses: Vec<Value> = apps
        .iter()
        .map(|c| container_status(input, c, false, app_default))
        .collect();
    let phase = phase(input.pod, &init_statuses, &statuses, input.terminal);
    let completed = phase == "Succeeded";
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| s["ready"] != true)
        .filter_map(|s| s["name"].as_str())
        .collect();
    let incomplete: Vec<&str> = init_statuses
        .iter()
        .filter(|s| {
            s["state"]["terminated"]["exitCode"] != 0 || s["state"].get("terminated").is_none()
        })
        .filter_map(|s| s["name"].as_str())
        .collect();
    let containers_ready = unready.is_empty();
    let (ready_reason, ready_message) = if completed {
        (Some("PodCompleted"), None)
    } else if containers_ready {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let (init_reason, init_message) = if completed && initialized {
        (Some("PodCompleted"), None)
    } else if initialized {
        (None, None)
    } else {
        (
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    };
    let old = input.old;
    let conditions = vec![
        condition(
            old,
            "PodReadyToStartContainers",
            input.sandbox_ready,
            None,
            None,
        ),
        condition(old, "Initialized", initialized, init_reason, init_message),
        condition(
            old,
            "Ready",
            containers_ready && !completed,
            ready_reason,
            ready_message.clone(),
        ),
        condition(
            old,
            "ContainersReady",
            containers_ready && !completed,
            ready_reason,
            ready_message,
        ),
        condition(old, "PodScheduled", true, None, None),
    ];
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": input.host_ip.to_string(),
        "hostIPs": [{"ip": input.host_ip.to_string()}],
        "startTime": input.start_time,
        "containerStatuses": statuses,
        "qosClass": input.qos_class,
    });
    if !inits.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    if let Some(first) = input.pod_ips.first() {
        status["podIP"] = json!(first.to_string());
        status["podIPs"] = json!(input
            .pod_ips
            .iter()
            .map(|i| json!({"ip": i.to_string()}))
            .collect::<Vec<_>>());
    }
    status
}

/// Whether two statuses differ in more than condition timestamps.
pub fn differs(a: &Value, b: &Value) -> bool {
    a != b
}

#[cfg(test)]
#[path = "status_gen_tests.rs"]
mod tests;
