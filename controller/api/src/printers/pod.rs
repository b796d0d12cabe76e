//! The Pod printer (upstream `printPod`): READY counts, the STATUS reason logic (init
//! containers, sidecars, waiting/terminated reasons, `Terminating`, `NotReady`), RESTARTS
//! with the `(5m ago)` suffix, and the wide IP/NODE/NOMINATED NODE/READINESS GATES cells.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::descriptions as d;
use super::format::{age, arr_at, at, bool_at, deleting, int_at, opt_str, parse_time, s, str_at};
use super::{col, wide, Column, Ctx, Printer, Row, AGE, NAME};

const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", d::POD_IP),
    wide("Node", d::POD_NODE_NAME),
    wide("Nominated Node", d::POD_NOMINATED_NODE),
    wide("Readiness Gates", d::POD_READINESS_GATES),
];

pub(crate) const POD: Printer = Printer {
    columns: COLUMNS,
    row: pod_row,
};

/// Upstream `node.NodeUnreachablePodReason`.
const NODE_LOST: &str = "NodeLost";

/// The later of a running maximum and a container's last termination time.
fn later_termination(current: &mut Option<DateTime<Utc>>, status: &Value) {
    if let Some(t) = parse_time(status.pointer("/lastState/terminated/finishedAt")) {
        if current.is_none_or(|c| c < t) {
            *current = Some(t);
        }
    }
}

/// Upstream `podutil.IsRestartableInitContainer`: a sidecar (`restartPolicy: Always`).
fn restartable(container: Option<&&Value>) -> bool {
    container.is_some_and(|c| str_at(c, "/restartPolicy") == "Always")
}

fn has_condition(pod: &Value, kind: &str) -> Option<bool> {
    arr_at(pod, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == kind)
        .map(|c| str_at(c, "/status") == "True")
}

fn row_condition(reason: &str, message: &str) -> Value {
    json!({"type": "Completed", "status": "True", "reason": reason, "message": message})
}

fn pod_row(pod: &Value, ctx: &Ctx) -> Row {
    let init_specs = arr_at(pod, "/spec/initContainers");
    let mut total = arr_at(pod, "/spec/containers").len();
    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let mut ready = 0usize;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_restart: Option<DateTime<Utc>> = None;

    let phase = str_at(pod, "/status/phase");
    let mut reason = opt_str(pod, "/status/reason").unwrap_or(phase).to_string();
    for c in arr_at(pod, "/status/conditions") {
        if str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }

    let mut row = Row::default();
    match phase {
        "Succeeded" => {
            row.conditions = vec![row_condition(
                "Succeeded",
                "The pod has completed successfully.",
            )]
        }
        "Failed" => row.conditions = vec![row_condition("Failed", "The pod failed.")],
        _ => {}
    }

    let by_name: HashMap<&str, &Value> =
        init_specs.iter().map(|c| (str_at(c, "/name"), c)).collect();
    total += init_specs.iter().filter(|c| restartable(Some(c))).count();

    let mut initializing = false;
    for (i, status) in arr_at(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let count = int_at(status, "/restartCount");
        restarts += count;
        later_termination(&mut last_restart, status);
        let sidecar = restartable(by_name.get(str_at(status, "/name")));
        if sidecar {
            restartable_restarts += count;
            later_termination(&mut last_restartable_restart, status);
        }
        let terminated = at(status, "/state/terminated");
        let waiting_reason = str_at(status, "/state/waiting/reason");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if sidecar && at(status, "/started").and_then(Value::as_bool) == Some(true) {
            if bool_at(status, "/ready") {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match opt_str(t, "/reason") {
                Some(r) => format!("Init:{r}"),
                None if int_at(t, "/signal") != 0 => {
                    format!("Init:Signal:{}", int_at(t, "/signal"))
                }
                None => format!("Init:ExitCode:{}", int_at(t, "/exitCode")),
            };
        } else if at(status, "/state/waiting").is_some()
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || has_condition(pod, "Initialized") == Some(true) {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for status in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts += int_at(status, "/restartCount");
            later_termination(&mut last_restart, status);
            let waiting_reason = opt_str(status, "/state/waiting/reason");
            let terminated = at(status, "/state/terminated");
            if let Some(r) = waiting_reason.filter(|_| at(status, "/state/waiting").is_some()) {
                reason = r.to_string();
            } else if let Some(t) = terminated {
                reason = match opt_str(t, "/reason") {
                    Some(r) => r.to_string(),
                    None if int_at(t, "/signal") != 0 => {
                        format!("Signal:{}", int_at(t, "/signal"))
                    }
                    None => format!("ExitCode:{}", int_at(t, "/exitCode")),
                };
            } else if bool_at(status, "/ready") && at(status, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready") == Some(true) {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if deleting(pod) && str_at(pod, "/status/reason") == NODE_LOST {
        reason = "Unknown".into();
    } else if deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => {
            format!(
                "{restarts} ({} ago)",
                super::duration::since(Some(t), ctx.now)
            )
        }
        _ => restarts.to_string(),
    };

    row.cells = vec![
        s(str_at(pod, "/metadata/name")),
        s(format!("{ready}/{total}")),
        s(reason),
        s(restarts_cell),
        age(pod, ctx),
    ];
    row.cells.extend(wide_cells(pod));
    row
}

/// IP, NODE, NOMINATED NODE, READINESS GATES.
fn wide_cells(pod: &Value) -> Vec<Value> {
    // Upstream prints the internal `podIPs[0]`; conversion from v1 fills it from `podIP`.
    let ip = arr_at(pod, "/status/podIPs")
        .first()
        .map(|p| str_at(p, "/ip"))
        .filter(|ip| !ip.is_empty())
        .or_else(|| opt_str(pod, "/status/podIP"))
        .unwrap_or("<none>");
    let node = opt_str(pod, "/spec/nodeName").unwrap_or("<none>");
    let nominated = opt_str(pod, "/status/nominatedNodeName").unwrap_or("<none>");
    let gates = arr_at(pod, "/spec/readinessGates");
    let readiness = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|g| has_condition(pod, str_at(g, "/conditionType")) == Some(true))
            .count();
        format!("{true_conditions}/{}", gates.len())
    };
    vec![s(ip), s(node), s(nominated), s(readiness)]
}
