//! Workload rows: Deployment, ReplicaSet, DaemonSet, StatefulSet, ControllerRevision, Job,
//! CronJob, HPA, PDB (upstream's printers_test.go cases where it has them).

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::{ago, cells, columns, expect_columns};

fn template() -> Value {
    json!({"spec": {"containers": [
        {"name": "fake-container1", "image": "fake-image1"},
        {"name": "fake-container2", "image": "fake-image2"}]}})
}

#[test]
fn deployment_row_is_upstreams() {
    assert_eq!(
        columns("apps/v1", "Deployment"),
        expect_columns(&[
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "*Containers",
            "*Images",
            "*Selector"
        ])
    );
    // TestPrintDeployment: created 1.9s in the future prints 0s.
    let d = json!({"metadata": {"name": "test1", "creationTimestamp": ago(TimeDelta::milliseconds(-1900))},
        "spec": {"replicas": 5, "template": template(), "selector": {"matchLabels": {"foo": "bar"}}},
        "status": {"replicas": 10, "updatedReplicas": 2, "availableReplicas": 1, "unavailableReplicas": 4}});
    assert_eq!(
        cells("apps/v1", "Deployment", &d),
        vec![
            json!("test1"),
            json!("0/5"),
            json!(2),
            json!(1),
            json!("0s"),
            json!("fake-container1,fake-container2"),
            json!("fake-image1,fake-image2"),
            json!("foo=bar")
        ]
    );
    let d = json!({"metadata": {"name": "sel"}, "spec": {"selector": {
        "matchLabels": {"z": "1"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                             {"key": "gone", "operator": "DoesNotExist"}]}}});
    let c = cells("apps/v1", "Deployment", &d);
    assert_eq!(c[1], json!("0/1"));
    assert_eq!(c[7], json!("env in (dev,prod),!gone,z=1"));
}

#[test]
fn replica_set_and_daemon_set_rows_are_upstreams() {
    let rs = json!({"metadata": {"name": "rs"}, "spec": {"replicas": 3, "template": template(),
        "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 3, "readyReplicas": 2}});
    assert_eq!(
        cells("apps/v1", "ReplicaSet", &rs),
        vec![
            json!("rs"),
            json!(3),
            json!(3),
            json!(2),
            json!("<unknown>"),
            json!("fake-container1,fake-container2"),
            json!("fake-image1,fake-image2"),
            json!("app=web")
        ]
    );
    // TestPrintDaemonSet.
    let ds = json!({"metadata": {"name": "test1", "creationTimestamp": ago(TimeDelta::milliseconds(-1900))},
        "spec": {"template": template(), "selector": {"matchLabels": {"foo": "bar"}}},
        "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 3, "numberReady": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 0}});
    assert_eq!(
        cells("apps/v1", "DaemonSet", &ds),
        vec![
            json!("test1"),
            json!(3),
            json!(2),
            json!(1),
            json!(2),
            json!(0),
            json!("<none>"),
            json!("0s"),
            json!("fake-container1,fake-container2"),
            json!("fake-image1,fake-image2"),
            json!("foo=bar")
        ]
    );
    let mut ds = ds.clone();
    ds["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
    ds["spec"]["selector"] = Value::Null;
    let c = cells("apps/v1", "DaemonSet", &ds);
    assert_eq!(
        (c[6].clone(), c[10].clone()),
        (json!("kubernetes.io/os=linux"), json!("<none>"))
    );
}

#[test]
fn stateful_set_and_controller_revision_rows_are_upstreams() {
    let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": template()},
        "status": {"readyReplicas": 1}});
    assert_eq!(
        cells("apps/v1", "StatefulSet", &sts),
        vec![
            json!("db"),
            json!("1/3"),
            json!("<unknown>"),
            json!("fake-container1,fake-container2"),
            json!("fake-image1,fake-image2")
        ]
    );
    let cr = |owners: Value| json!({"metadata": {"name": "rev", "ownerReferences": owners}, "revision": 2});
    let owner = |api: &str, kind: &str, controller: bool| json!({"apiVersion": api, "kind": kind, "name": "foo", "uid": "u", "controller": controller});
    let expect = |c: &str| vec![json!("rev"), json!(c), json!(2), json!("<unknown>")];
    let k = "ControllerRevision";
    assert_eq!(
        cells(
            "apps/v1",
            k,
            &cr(json!([owner("apps/v1", "DaemonSet", true)]))
        ),
        expect("daemonset.apps/foo")
    );
    assert_eq!(
        cells(
            "apps/v1",
            k,
            &cr(json!([owner("apps/v1", "DaemonSet", false)]))
        ),
        expect("<none>")
    );
    assert_eq!(cells("apps/v1", k, &cr(json!([]))), expect("<none>"));
    assert_eq!(
        cells("apps/v1", k, &cr(json!([owner("v1", "Pod", true)]))),
        expect("pod/foo")
    );
}

fn job(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "job1"}, "spec": spec, "status": status})
}

#[test]
fn job_rows_are_upstreams() {
    assert_eq!(
        columns("batch/v1", "Job"),
        expect_columns(&[
            "Name",
            "Status",
            "Completions",
            "Duration",
            "Age",
            "*Containers",
            "*Images",
            "*Selector"
        ])
    );
    let row = |j: &Value| cells("batch/v1", "Job", j)[..4].to_vec();
    let v = |s: [&str; 4]| s.iter().map(|x| json!(x)).collect::<Vec<_>>();
    assert_eq!(
        row(&job(json!({"completions": 2}), json!({"succeeded": 1}))),
        v(["job1", "Running", "1/2", ""])
    );
    assert_eq!(
        row(&job(json!({}), json!({}))),
        v(["job1", "Running", "0/1", ""])
    );
    assert_eq!(
        row(&job(json!({"parallelism": 3}), json!({}))),
        v(["job1", "Running", "0/1 of 3", ""])
    );
    let started = json!({"startTime": ago(TimeDelta::minutes(5)), "succeeded": 0});
    assert_eq!(
        row(&job(json!({"completions": 1}), started)),
        v(["job1", "Running", "0/1", "5m"])
    );
    let done = json!({"startTime": ago(TimeDelta::minutes(10)), "completionTime": ago(TimeDelta::seconds(410)),
        "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
    assert_eq!(
        row(&job(json!({"completions": 1}), done)),
        v(["job1", "Complete", "1/1", "3m10s"])
    );
    let cond = |t: &str| json!({"conditions": [{"type": t, "status": "True"}]});
    assert_eq!(row(&job(json!({}), cond("Failed")))[1], json!("Failed"));
    assert_eq!(
        row(&job(json!({}), cond("Suspended")))[1],
        json!("Suspended")
    );
    assert_eq!(
        row(&job(json!({}), cond("FailureTarget")))[1],
        json!("FailureTarget")
    );
    let not_true = json!({"conditions": [{"type": "Complete", "status": "False"}]});
    assert_eq!(row(&job(json!({}), not_true))[1], json!("Running"));
    let mut deleting = job(json!({}), cond("Suspended"));
    deleting["metadata"]["deletionTimestamp"] = json!(ago(TimeDelta::seconds(1)));
    assert_eq!(row(&deleting)[1], json!("Terminating"));
    let mut deleting_done = job(json!({}), cond("Complete"));
    deleting_done["metadata"]["deletionTimestamp"] = json!(ago(TimeDelta::seconds(1)));
    assert_eq!(row(&deleting_done)[1], json!("Complete"));
}

#[test]
fn cron_job_rows_are_upstreams() {
    let cj = json!({"metadata": {"name": "cj", "creationTimestamp": ago(TimeDelta::hours(2))},
        "spec": {"schedule": "*/5 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": template()}}},
        "status": {"active": [{"name": "a"}], "lastScheduleTime": ago(TimeDelta::seconds(30))}});
    assert_eq!(
        cells("batch/v1", "CronJob", &cj),
        vec![
            json!("cj"),
            json!("*/5 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("30s"),
            json!("120m"),
            json!("fake-container1,fake-container2"),
            json!("fake-image1,fake-image2"),
            json!("<none>")
        ]
    );
    let cj = json!({"metadata": {"name": "tz"}, "spec": {"schedule": "0 0 * * *", "timeZone": "Europe/Paris"}});
    assert_eq!(
        cells("batch/v1", "CronJob", &cj)[..6],
        [
            json!("tz"),
            json!("0 0 * * *"),
            json!("Europe/Paris"),
            json!("<unset>"),
            json!(0),
            json!("<none>")
        ]
    );
}

fn hpa(metrics: Value, current: Value) -> Value {
    json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "maxReplicas": 10, "metrics": metrics}, "status": {"currentReplicas": 4, "currentMetrics": current}})
}

#[test]
fn hpa_rows_are_upstreams() {
    let targets = |h: &Value| cells("autoscaling/v2", "HorizontalPodAutoscaler", h)[2].clone();
    let h = hpa(json!([]), json!([]));
    assert_eq!(
        cells("autoscaling/v2", "HorizontalPodAutoscaler", &h),
        vec![
            json!("h"),
            json!("Deployment/web"),
            json!("<none>"),
            json!("<unset>"),
            json!(10),
            json!(4),
            json!("<unknown>")
        ]
    );
    let cpu = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}});
    assert_eq!(
        targets(&hpa(json!([cpu]), json!([]))),
        json!("cpu: <unknown>/80%")
    );
    let cpu_now = json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 50}}});
    assert_eq!(
        targets(&hpa(json!([cpu]), json!([cpu_now]))),
        json!("cpu: 50%/80%")
    );
    let mem = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
    let mem_now = json!({"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "50Mi"}}});
    assert_eq!(
        targets(&hpa(json!([mem]), json!([mem_now]))),
        json!("memory: 50Mi/100Mi")
    );
    let pods = json!({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "100m"}}});
    assert_eq!(
        targets(&hpa(json!([pods]), json!([]))),
        json!("<unknown>/100m")
    );
    let ext = json!({"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "AverageValue", "averageValue": "100m"}}});
    assert_eq!(
        targets(&hpa(json!([ext]), json!([]))),
        json!("<unknown>/100m (avg)")
    );
    let ext_value = json!({"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "2"}}});
    let ext_now = json!({"type": "External", "external": {"current": {"value": "1"}}});
    assert_eq!(
        targets(&hpa(json!([ext_value]), json!([ext_now]))),
        json!("1/2")
    );
    assert_eq!(
        targets(&hpa(json!([cpu, mem, pods]), json!([cpu_now]))),
        json!("cpu: 50%/80%, memory: <unknown>/100Mi + 1 more...")
    );
    let mut h = hpa(json!([]), json!([]));
    h["spec"]["minReplicas"] = json!(2);
    assert_eq!(
        cells("autoscaling/v2", "HorizontalPodAutoscaler", &h)[3],
        json!("2")
    );
}

#[test]
fn pdb_rows_are_upstreams() {
    let pdb = json!({"metadata": {"name": "pdb1"}, "spec": {"minAvailable": 22}, "status": {"disruptionsAllowed": 5}});
    assert_eq!(
        cells("policy/v1", "PodDisruptionBudget", &pdb),
        vec![
            json!("pdb1"),
            json!("22"),
            json!("N/A"),
            json!(5),
            json!("<unknown>")
        ]
    );
    let pdb = json!({"metadata": {"name": "pdb2"}, "spec": {"maxUnavailable": "10%"}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        cells("policy/v1", "PodDisruptionBudget", &pdb)[1..4],
        [json!("N/A"), json!("10%"), json!(1)]
    );
}
