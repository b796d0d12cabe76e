//! Printers of workload kinds: Deployment, ReplicaSet, DaemonSet, StatefulSet,
//! ControllerRevision, Job, CronJob, HorizontalPodAutoscaler, PodDisruptionBudget.

use serde_json::{json, Value};

use super::descriptions as d;
use super::duration::{human_duration, since};
use super::format::{
    age, arr_at, at, bool_ptr, deleting, format_label_selector, format_labels, int_at,
    int_or_string, layout_containers, name, opt_str, quantity, s, selector_string, str_at, time_at,
};
use super::{col, typed, wide, Column, Ctx, Printer, Row, AGE, NAME};

const CONTAINERS: Column = wide("Containers", "Names of each container in the template.");
const IMAGES: Column = wide(
    "Images",
    "Images referenced by each container in the template.",
);

/// `spec.replicas`, upstream's default 1 when unset.
fn replicas(obj: &Value) -> i64 {
    at(obj, "/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// CONTAINERS and IMAGES cells of a pod template.
fn containers(obj: &Value, template: &str) -> [Value; 2] {
    let (names, images) = layout_containers(arr_at(obj, &format!("{template}/spec/containers")));
    [s(names), s(images)]
}

pub(crate) const DEPLOYMENT: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "Number of the pod with ready state"),
        col("Up-to-date", d::DEPLOY_UPDATED),
        col("Available", d::DEPLOY_AVAILABLE),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", d::DEPLOY_SELECTOR),
    ],
    row: |obj, ctx| {
        let selector =
            selector_string(at(obj, "/spec/selector")).unwrap_or_else(|()| "<invalid>".into());
        let [names, images] = containers(obj, "/spec/template");
        vec![
            name(obj),
            s(format!(
                "{}/{}",
                int_at(obj, "/status/readyReplicas"),
                replicas(obj)
            )),
            json!(int_at(obj, "/status/updatedReplicas")),
            json!(int_at(obj, "/status/availableReplicas")),
            age(obj, ctx),
            names,
            images,
            s(selector),
        ]
        .into()
    },
};

pub(crate) const REPLICA_SET: Printer = Printer {
    columns: &[
        NAME,
        typed("Desired", "integer", d::RS_SPEC_REPLICAS),
        typed("Current", "integer", d::RS_STATUS_REPLICAS),
        typed("Ready", "integer", d::RS_READY),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", d::RS_SELECTOR),
    ],
    row: |obj, ctx| {
        let [names, images] = containers(obj, "/spec/template");
        vec![
            name(obj),
            json!(replicas(obj)),
            json!(int_at(obj, "/status/replicas")),
            json!(int_at(obj, "/status/readyReplicas")),
            age(obj, ctx),
            names,
            images,
            s(format_label_selector(at(obj, "/spec/selector"))),
        ]
        .into()
    },
};

pub(crate) const DAEMON_SET: Printer = Printer {
    columns: &[
        NAME,
        typed("Desired", "integer", d::DS_DESIRED),
        typed("Current", "integer", d::DS_CURRENT),
        typed("Ready", "integer", d::DS_READY),
        typed("Up-to-date", "integer", d::DS_UPDATED),
        typed("Available", "integer", d::DS_AVAILABLE),
        col("Node Selector", d::POD_NODE_SELECTOR),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", d::DS_SELECTOR),
    ],
    row: |obj, ctx| {
        let [names, images] = containers(obj, "/spec/template");
        vec![
            name(obj),
            json!(int_at(obj, "/status/desiredNumberScheduled")),
            json!(int_at(obj, "/status/currentNumberScheduled")),
            json!(int_at(obj, "/status/numberReady")),
            json!(int_at(obj, "/status/updatedNumberScheduled")),
            json!(int_at(obj, "/status/numberAvailable")),
            s(format_labels(at(obj, "/spec/template/spec/nodeSelector"))),
            age(obj, ctx),
            names,
            images,
            s(format_label_selector(at(obj, "/spec/selector"))),
        ]
        .into()
    },
};

pub(crate) const STATEFUL_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "Number of the pod with ready state"),
        AGE,
        CONTAINERS,
        IMAGES,
    ],
    row: |obj, ctx| {
        let [names, images] = containers(obj, "/spec/template");
        vec![
            name(obj),
            s(format!(
                "{}/{}",
                int_at(obj, "/status/readyReplicas"),
                replicas(obj)
            )),
            age(obj, ctx),
            names,
            images,
        ]
        .into()
    },
};

pub(crate) const CONTROLLER_REVISION: Printer = Printer {
    columns: &[
        NAME,
        col("Controller", "Controller of the object"),
        col("Revision", d::CR_REVISION),
        AGE,
    ],
    row: |obj, ctx| {
        let controller = match crate::meta::controller_ref(obj) {
            None => "<none>".to_string(),
            Some(r) => {
                let api_version = str_at(r, "/apiVersion");
                let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
                let kind = str_at(r, "/kind");
                let ref_name = str_at(r, "/name");
                if group.is_empty() && kind.is_empty() {
                    ref_name.to_string()
                } else if group.is_empty() {
                    format!("{}/{ref_name}", kind.to_lowercase())
                } else {
                    format!("{}/{ref_name}", format!("{kind}.{group}").to_lowercase())
                }
            }
        };
        vec![
            name(obj),
            s(controller),
            json!(int_at(obj, "/revision")),
            age(obj, ctx),
        ]
        .into()
    },
};

pub(crate) const JOB: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "Status of the job."),
        col("Completions", d::JOB_SUCCEEDED),
        col("Duration", "Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", d::JOB_SELECTOR),
    ],
    row: job_row,
};

/// Upstream `hasJobCondition`: the first condition of the type is `True`.
fn job_condition(job: &Value, kind: &str) -> bool {
    arr_at(job, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == kind)
        .is_some_and(|c| str_at(c, "/status") == "True")
}

fn job_row(job: &Value, ctx: &Ctx) -> Row {
    let succeeded = int_at(job, "/status/succeeded");
    let completions = match at(job, "/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int_at(job, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time_at(job, "/status/startTime"),
        time_at(job, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(ctx.now - start),
        (Some(start), Some(done)) => human_duration(done - start),
    };
    let status = if job_condition(job, "Complete") {
        "Complete"
    } else if job_condition(job, "Failed") {
        "Failed"
    } else if deleting(job) {
        "Terminating"
    } else if job_condition(job, "Suspended") {
        "Suspended"
    } else if job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let [names, images] = containers(job, "/spec/template");
    vec![
        name(job),
        s(status),
        s(completions),
        s(duration),
        age(job, ctx),
        names,
        images,
        s(format_label_selector(at(job, "/spec/selector"))),
    ]
    .into()
}

pub(crate) const CRON_JOB: Printer = Printer {
    columns: &[
        NAME,
        col("Schedule", d::CJ_SCHEDULE),
        col("Timezone", d::CJ_TIMEZONE),
        typed("Suspend", "boolean", d::CJ_SUSPEND),
        typed("Active", "integer", d::CJ_ACTIVE),
        col("Last Schedule", d::CJ_LAST_SCHEDULE),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", d::JOB_SELECTOR),
    ],
    row: |cj, ctx| {
        let last = match time_at(cj, "/status/lastScheduleTime") {
            Some(t) => since(Some(t), ctx.now),
            None => "<none>".into(),
        };
        let [names, images] = containers(cj, "/spec/jobTemplate/spec/template");
        vec![
            name(cj),
            s(str_at(cj, "/spec/schedule")),
            s(opt_str(cj, "/spec/timeZone").unwrap_or("<none>")),
            s(bool_ptr(at(cj, "/spec/suspend"))),
            json!(arr_at(cj, "/status/active").len()),
            s(last),
            age(cj, ctx),
            names,
            images,
            s(format_label_selector(at(
                cj,
                "/spec/jobTemplate/spec/selector",
            ))),
        ]
        .into()
    },
};

pub(crate) const HPA: Printer = Printer {
    columns: &[
        NAME,
        col("Reference", d::HPA_REF),
        col("Targets", d::HPA_METRICS),
        col("MinPods", d::HPA_MIN),
        col("MaxPods", d::HPA_MAX),
        col("Replicas", d::HPA_CURRENT),
        AGE,
    ],
    row: |hpa, ctx| {
        let reference = format!(
            "{}/{}",
            str_at(hpa, "/spec/scaleTargetRef/kind"),
            str_at(hpa, "/spec/scaleTargetRef/name")
        );
        let min = match at(hpa, "/spec/minReplicas").and_then(Value::as_i64) {
            Some(m) => m.to_string(),
            None => "<unset>".into(),
        };
        vec![
            name(hpa),
            s(reference),
            s(hpa_metrics(
                arr_at(hpa, "/spec/metrics"),
                arr_at(hpa, "/status/currentMetrics"),
            )),
            s(min),
            json!(int_at(hpa, "/spec/maxReplicas")),
            json!(int_at(hpa, "/status/currentReplicas")),
            age(hpa, ctx),
        ]
        .into()
    },
};

/// Go's `(*resource.Quantity).String()` on an optional quantity (`<nil>` when unset).
fn qty_ptr(v: Option<&Value>) -> String {
    match v {
        Some(_) => quantity(v),
        None => "<nil>".into(),
    }
}

/// One metric of upstream `formatHPAMetrics`.
fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    let unknown = || "<unknown>".to_string();
    let field = |kind: &str| status.and_then(|st| at(st, &format!("/{kind}")));
    match str_at(spec, "/type") {
        kind @ ("External" | "Object") => {
            let key = if kind == "External" {
                "external"
            } else {
                "object"
            };
            let target = spec.get(key).and_then(|m| m.get("target"));
            let current = field(key).and_then(|m| m.get("current"));
            if let Some(avg) = target.and_then(|t| at(t, "/averageValue")) {
                let cur = current
                    .and_then(|c| at(c, "/averageValue"))
                    .map(|q| quantity(Some(q)))
                    .unwrap_or_else(unknown);
                format!("{cur}/{} (avg)", quantity(Some(avg)))
            } else {
                let cur = match field(key) {
                    Some(_) => qty_ptr(current.and_then(|c| at(c, "/value"))),
                    None => unknown(),
                };
                format!("{cur}/{}", qty_ptr(target.and_then(|t| at(t, "/value"))))
            }
        }
        "Pods" => {
            let cur = match field("pods") {
                Some(p) => qty_ptr(at(p, "/current/averageValue")),
                None => unknown(),
            };
            format!("{cur}/{}", qty_ptr(at(spec, "/pods/target/averageValue")))
        }
        kind @ ("Resource" | "ContainerResource") => {
            let key = if kind == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let metric = spec.get(key).unwrap_or(&Value::Null);
            let resource = str_at(metric, "/name");
            let current = field(key);
            if let Some(avg) = at(metric, "/target/averageValue") {
                let cur = match current {
                    Some(c) => qty_ptr(at(c, "/current/averageValue")),
                    None => unknown(),
                };
                format!("{resource}: {cur}/{}", quantity(Some(avg)))
            } else {
                let cur = current
                    .and_then(|c| at(c, "/current/averageUtilization"))
                    .and_then(Value::as_i64)
                    .map(|u| format!("{u}%"))
                    .unwrap_or_else(unknown);
                let target = at(metric, "/target/averageUtilization")
                    .and_then(Value::as_i64)
                    .map(|u| format!("{u}%"))
                    .unwrap_or_else(|| "<auto>".into());
                format!("{resource}: {cur}/{target}")
            }
        }
        _ => "<unknown type>".into(),
    }
}

/// Upstream `formatHPAMetrics`: at most two metrics, then `+ N more...`.
fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 2;
    let mut list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| hpa_metric(spec, statuses.get(i)))
        .collect();
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

pub(crate) const PDB: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Min Available",
            "The minimum number of pods that must be available.",
        ),
        col(
            "Max Unavailable",
            "The maximum number of pods that may be unavailable.",
        ),
        typed(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        AGE,
    ],
    row: |pdb, ctx| {
        let field = |f: &str| {
            at(pdb, &format!("/spec/{f}"))
                .map(int_or_string)
                .unwrap_or_else(|| "N/A".into())
        };
        vec![
            name(pdb),
            s(field("minAvailable")),
            s(field("maxUnavailable")),
            json!(int_at(pdb, "/status/disruptionsAllowed")),
            age(pdb, ctx),
        ]
        .into()
    },
};
