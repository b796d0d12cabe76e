//! Pod rows: upstream's TestPrintPod, TestPrintPodWithRestartableInitContainer,
//! TestPrintPodwide, TestPrintPodConditions and TestPrintNonTerminatedPod cases.

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::{ago, cells, columns, expect_columns, table_of};

fn pod(name: &str, containers: usize, init: Value, status: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": vec![json!({}); containers]},
        "status": status,
    });
    if !init.is_null() {
        p["spec"]["initContainers"] = init;
    }
    p
}

fn running() -> Value {
    json!({"running": {}})
}

fn terminated_ago(d: TimeDelta) -> Value {
    json!({"terminated": {"finishedAt": ago(d)}})
}

/// The five normal cells.
fn row(p: &Value) -> Vec<Value> {
    cells("v1", "Pod", p)[..5].to_vec()
}

fn expect(name: &str, ready: &str, status: &str, restarts: &str) -> Vec<Value> {
    vec![
        json!(name),
        json!(ready),
        json!(status),
        json!(restarts),
        json!("<unknown>"),
    ]
}

#[test]
fn pod_columns_are_upstreams() {
    assert_eq!(
        columns("v1", "Pod"),
        expect_columns(&[
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "*IP",
            "*Node",
            "*Nominated Node",
            "*Readiness Gates"
        ])
    );
}

#[test]
fn container_states_give_upstreams_status() {
    let cases = vec![
        // test1: name, containers, restarts, ready.
        (
            pod(
                "test1",
                2,
                Value::Null,
                json!({"phase": "podPhase", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": running()},
                {"restartCount": 3}]}),
            ),
            expect("test1", "1/2", "podPhase", "6"),
        ),
        // test2: a waiting reason overrides the phase.
        (
            pod(
                "test2",
                2,
                Value::Null,
                json!({"phase": "podPhase", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": running()},
                {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}}]}),
            ),
            expect("test2", "1/2", "ContainerWaitingReason", "6"),
        ),
        // test3: the first container's state wins (statuses are walked backwards).
        (
            pod(
                "test3",
                2,
                Value::Null,
                json!({"phase": "podPhase", "containerStatuses": [
                {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}},
                {"restartCount": 3, "state": {"terminated": {"reason": "ContainerTerminatedReason"}}}]}),
            ),
            expect("test3", "0/2", "ContainerWaitingReason", "6"),
        ),
        // test4: ready without running is not counted.
        (
            pod(
                "test4",
                2,
                Value::Null,
                json!({"phase": "podPhase", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": running()},
                {"ready": true, "restartCount": 3}]}),
            ),
            expect("test4", "1/2", "podPhase", "6"),
        ),
        // test5: status.reason overrides the phase.
        (
            pod(
                "test5",
                2,
                Value::Null,
                json!({"reason": "podReason", "phase": "podPhase", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": running()},
                {"ready": true, "restartCount": 3}]}),
            ),
            expect("test5", "1/2", "podReason", "6"),
        ),
        // test6: one completed, one running, no Ready condition.
        (
            pod(
                "test6",
                2,
                Value::Null,
                json!({"phase": "Running", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
                {"ready": true, "restartCount": 3, "state": running()}]}),
            ),
            expect("test6", "1/2", "NotReady", "6"),
        ),
        // test6 with the Ready condition.
        (
            pod(
                "test6",
                2,
                Value::Null,
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
                {"ready": true, "restartCount": 3, "state": running()}]}),
            ),
            expect("test6", "1/2", "Running", "6"),
        ),
        // test15: SchedulingGated.
        (
            pod(
                "test15",
                2,
                Value::Null,
                json!({"phase": "podPhase", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
            ),
            expect("test15", "0/2", "SchedulingGated", "0"),
        ),
        // Terminated without reason: ExitCode / Signal.
        (
            pod(
                "exit",
                1,
                Value::Null,
                json!({"phase": "Running", "containerStatuses": [
                {"state": {"terminated": {"exitCode": 2}}}]}),
            ),
            expect("exit", "0/1", "ExitCode:2", "0"),
        ),
        (
            pod(
                "sig",
                1,
                Value::Null,
                json!({"phase": "Running", "containerStatuses": [
                {"state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
            ),
            expect("sig", "0/1", "Signal:9", "0"),
        ),
        (
            pod(
                "crash",
                1,
                Value::Null,
                json!({"phase": "Running", "containerStatuses": [
                {"restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": terminated_ago(TimeDelta::seconds(190))}]}),
            ),
            expect("crash", "0/1", "CrashLoopBackOff", "4 (3m10s ago)"),
        ),
    ];
    for (p, want) in cases {
        assert_eq!(row(&p), want, "{}", p["metadata"]["name"]);
    }
}

#[test]
fn init_containers_give_upstreams_status_and_restarts() {
    let cases = vec![
        // test7: one init container restarting.
        (
            pod(
                "test7",
                1,
                json!([{}]),
                json!({"phase": "podPhase",
                "initContainerStatuses": [{"restartCount": 3, "state": running(), "lastState": terminated_ago(TimeDelta::seconds(10))}],
                "containerStatuses": [{"restartCount": 0, "state": {"waiting": {}}}]}),
            ),
            expect("test7", "0/1", "Init:0/1", "3 (10s ago)"),
        ),
        // test8: two init containers, the first restarting.
        (
            pod(
                "test8",
                1,
                json!([{}, {}]),
                json!({"phase": "podPhase",
                "initContainerStatuses": [
                    {"restartCount": 3, "state": running(), "lastState": terminated_ago(TimeDelta::seconds(10))},
                    {"state": {"waiting": {}}}],
                "containerStatuses": [{"state": {"waiting": {}}}]}),
            ),
            expect("test8", "0/1", "Init:0/2", "3 (10s ago)"),
        ),
        // test9: the first completed, the second restarting.
        (
            pod(
                "test9",
                1,
                json!([{}, {}]),
                json!({"phase": "podPhase",
                "initContainerStatuses": [
                    {"state": {"terminated": {}}},
                    {"restartCount": 3, "state": running(), "lastState": terminated_ago(TimeDelta::seconds(10))}],
                "containerStatuses": [{"state": {"waiting": {}}}]}),
            ),
            expect("test9", "0/1", "Init:1/2", "3 (10s ago)"),
        ),
        // test10: the first completed with restarts.
        (
            pod(
                "test10",
                1,
                json!([{}, {}]),
                json!({"phase": "podPhase",
                "initContainerStatuses": [
                    {"restartCount": 2, "state": {"terminated": {}}, "lastState": terminated_ago(TimeDelta::minutes(2))},
                    {"restartCount": 3, "state": running(), "lastState": terminated_ago(TimeDelta::seconds(10))}],
                "containerStatuses": [{"state": {"waiting": {}}}]}),
            ),
            expect("test10", "0/1", "Init:1/2", "5 (10s ago)"),
        ),
        // test11: init done; only app container restarts count.
        (
            pod(
                "test11",
                1,
                json!([{}]),
                json!({"phase": "Running",
                "initContainerStatuses": [
                    {"restartCount": 2, "state": {"terminated": {}}, "lastState": terminated_ago(TimeDelta::minutes(2))}],
                "containerStatuses": [
                    {"restartCount": 4, "state": running(), "lastState": terminated_ago(TimeDelta::seconds(20))}]}),
            ),
            expect("test11", "0/1", "Running", "4 (20s ago)"),
        ),
        // Init container failing: Init:<reason>, Init:ExitCode, waiting reasons.
        (
            pod(
                "initcrash",
                1,
                json!([{}]),
                json!({"phase": "Pending",
                "initContainerStatuses": [{"restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": terminated_ago(TimeDelta::seconds(5))}]}),
            ),
            expect("initcrash", "0/1", "Init:CrashLoopBackOff", "1 (5s ago)"),
        ),
        (
            pod(
                "initerr",
                1,
                json!([{}]),
                json!({"phase": "Pending",
                "initContainerStatuses": [{"state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
            ),
            expect("initerr", "0/1", "Init:Error", "0"),
        ),
        (
            pod(
                "initexit",
                1,
                json!([{}]),
                json!({"phase": "Pending",
                "initContainerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]}),
            ),
            expect("initexit", "0/1", "Init:ExitCode:3", "0"),
        ),
        (
            pod(
                "podinit",
                1,
                json!([{}]),
                json!({"phase": "Pending",
                "initContainerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}]}),
            ),
            expect("podinit", "0/1", "Init:0/1", "0"),
        ),
    ];
    for (p, want) in cases {
        assert_eq!(row(&p), want, "{}", p["metadata"]["name"]);
    }
}

#[test]
fn restarts_suffix_uses_latest_termination() {
    let p = pod(
        "test12",
        1,
        Value::Null,
        json!({"phase": "Running", "containerStatuses": [
        {"ready": true, "restartCount": 3, "state": running(), "lastState": terminated_ago(TimeDelta::days(5))}]}),
    );
    assert_eq!(row(&p), expect("test12", "1/1", "Running", "3 (5d ago)"));
    let p = pod(
        "test13",
        2,
        Value::Null,
        json!({"phase": "Running", "containerStatuses": [
        {"ready": true, "restartCount": 0, "state": running()},
        {"ready": true, "restartCount": 3, "state": running(), "lastState": terminated_ago(TimeDelta::days(10))}]}),
    );
    assert_eq!(row(&p), expect("test13", "2/2", "Running", "3 (10d ago)"));
    let p = pod(
        "test14",
        2,
        Value::Null,
        json!({"phase": "Running", "containerStatuses": [
        {"ready": true, "restartCount": 6, "state": running(), "lastState": terminated_ago(TimeDelta::days(5))},
        {"ready": true, "restartCount": 3, "state": running(), "lastState": terminated_ago(TimeDelta::days(20))}]}),
    );
    assert_eq!(row(&p), expect("test14", "2/2", "Running", "9 (5d ago)"));
}

fn sidecars() -> Value {
    json!([
        {"name": "restartable-init-1", "restartPolicy": "Always"},
        {"name": "restartable-init-2", "restartPolicy": "Always"}
    ])
}

#[test]
fn sidecars_count_as_containers() {
    let p = pod(
        "test1",
        1,
        sidecars(),
        json!({"phase": "Pending",
        "initContainerStatuses": [
            {"name": "restartable-init-1", "restartCount": 3, "state": running(), "started": false,
             "lastState": terminated_ago(TimeDelta::seconds(10))},
            {"name": "restartable-init-2", "state": {"waiting": {}}, "started": false}],
        "containerStatuses": [{"state": {"waiting": {}}}],
        "conditions": [{"type": "Initialized", "status": "False"}]}),
    );
    assert_eq!(row(&p), expect("test1", "0/3", "Init:0/2", "3 (10s ago)"));

    let p = pod(
        "test1",
        1,
        sidecars(),
        json!({"phase": "Pending",
        "initContainerStatuses": [
            {"name": "restartable-init-1", "restartCount": 3, "state": running(), "started": true,
             "lastState": terminated_ago(TimeDelta::seconds(10))},
            {"name": "restartable-init-2", "state": running(), "started": false}],
        "containerStatuses": [{"state": {"waiting": {}}}],
        "conditions": [{"type": "Initialized", "status": "False"}]}),
    );
    assert_eq!(row(&p), expect("test1", "0/3", "Init:1/2", "3 (10s ago)"));

    let p = pod(
        "test2",
        1,
        sidecars(),
        json!({"phase": "Running",
        "initContainerStatuses": [
            {"name": "restartable-init-1", "restartCount": 3, "state": running(), "started": true,
             "lastState": terminated_ago(TimeDelta::seconds(10))},
            {"name": "restartable-init-2", "state": running(), "started": true}],
        "containerStatuses": [{"ready": true, "restartCount": 4, "state": running(),
             "lastState": terminated_ago(TimeDelta::seconds(20))}],
        "conditions": [{"type": "Initialized", "status": "True"}]}),
    );
    assert_eq!(row(&p), expect("test2", "1/3", "Running", "7 (10s ago)"));

    let p = pod(
        "test3",
        1,
        sidecars(),
        json!({"phase": "Succeeded",
        "initContainerStatuses": [
            {"name": "restartable-init-1", "restartCount": 3, "started": false,
             "state": {"terminated": {"reason": "Error", "exitCode": 137}},
             "lastState": terminated_ago(TimeDelta::seconds(10))},
            {"name": "restartable-init-2", "started": false,
             "state": {"terminated": {"reason": "Error", "exitCode": 137}}}],
        "containerStatuses": [{"restartCount": 4, "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
             "lastState": terminated_ago(TimeDelta::seconds(20))}],
        "conditions": [{"type": "Initialized", "status": "True"}]}),
    );
    let t = table_of("v1", "Pod", &p);
    assert_eq!(
        t["rows"][0]["cells"].as_array().unwrap()[..5].to_vec(),
        expect("test3", "0/3", "Completed", "7 (10s ago)")
    );
    assert_eq!(
        t["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully."}])
    );

    // Statuses for containers the spec does not have.
    let mut p = pod(
        "test4",
        0,
        json!([
        {"name": "init1", "image": "initimage"},
        {"name": "sidecar1", "image": "sidecarimage", "restartPolicy": "Always"}]),
        json!({"phase": "Running",
            "initContainerStatuses": [{"name": "initinvalid"}, {"name": "init1"}, {"name": "sidecar1"}],
            "containerStatuses": [{"name": "containerinvalid"}, {"name": "container1"}]}),
    );
    p["spec"]["containers"] = json!([{"name": "container1", "image": "containerimage"}]);
    assert_eq!(row(&p), expect("test4", "0/2", "Init:0/2", "0"));
}

#[test]
fn deletion_gives_terminating_unless_finished() {
    let deleted = ago(TimeDelta::seconds(10));
    let mut p = pod(
        "test18",
        1,
        Value::Null,
        json!({"phase": "Succeeded", "containerStatuses": [
        {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}),
    );
    p["metadata"]["deletionTimestamp"] = json!(deleted);
    assert_eq!(row(&p), expect("test18", "0/1", "Completed", "0"));
    let mut p = pod(
        "test19",
        1,
        Value::Null,
        json!({"phase": "Running", "containerStatuses": [
        {"state": running()}]}),
    );
    p["metadata"]["deletionTimestamp"] = json!(deleted);
    assert_eq!(row(&p), expect("test19", "0/1", "Terminating", "0"));
    let mut p = pod("test20", 1, Value::Null, json!({"phase": "Pending"}));
    p["metadata"]["deletionTimestamp"] = json!(deleted);
    assert_eq!(row(&p), expect("test20", "0/1", "Terminating", "0"));
    let mut p = pod(
        "lost",
        1,
        Value::Null,
        json!({"phase": "Running", "reason": "NodeLost"}),
    );
    p["metadata"]["deletionTimestamp"] = json!(deleted);
    assert_eq!(row(&p), expect("lost", "0/1", "Unknown", "0"));
}

#[test]
fn finished_pods_carry_row_conditions() {
    for (phase, reason, message) in [
        (
            "Succeeded",
            "Succeeded",
            "The pod has completed successfully.",
        ),
        ("Failed", "Failed", "The pod failed."),
    ] {
        let p = pod(
            "done",
            2,
            Value::Null,
            json!({"phase": phase, "containerStatuses": [
            {"ready": true, "restartCount": 3, "state": running()}, {"restartCount": 3}]}),
        );
        let t = table_of("v1", "Pod", &p);
        assert_eq!(t["rows"][0]["cells"][2], json!(phase));
        assert_eq!(
            t["rows"][0]["conditions"],
            json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}])
        );
    }
    let p = pod("run", 1, Value::Null, json!({"phase": "Running"}));
    assert!(table_of("v1", "Pod", &p)["rows"][0]
        .get("conditions")
        .is_none());
}

#[test]
fn wide_cells_are_upstreams() {
    let gates = json!([{"conditionType": "condition1"}, {"conditionType": "condition2"}, {"conditionType": "condition3"}]);
    let mut p = pod(
        "test1",
        2,
        Value::Null,
        json!({
        "phase": "podPhase",
        "conditions": [{"type": "condition1", "status": "False"}, {"type": "condition2", "status": "True"}],
        "podIPs": [{"ip": "1.1.1.1"}, {"ip": "2001:db8::"}],
        "nominatedNodeName": "node1",
        "containerStatuses": [{"ready": true, "restartCount": 3, "state": running()}, {"restartCount": 3}]}),
    );
    p["spec"]["nodeName"] = json!("test1");
    p["spec"]["readinessGates"] = gates;
    assert_eq!(
        cells("v1", "Pod", &p),
        vec![
            json!("test1"),
            json!("1/2"),
            json!("podPhase"),
            json!("6"),
            json!("<unknown>"),
            json!("1.1.1.1"),
            json!("test1"),
            json!("node1"),
            json!("1/3")
        ]
    );
    let p = pod("test2", 2, Value::Null, json!({"phase": "podPhase"}));
    assert_eq!(
        cells("v1", "Pod", &p)[5..].to_vec(),
        vec![
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>")
        ]
    );
    // A v1 object with only `podIP` (upstream's conversion fills podIPs from it).
    let p = pod(
        "test3",
        1,
        Value::Null,
        json!({"phase": "Running", "podIP": "10.0.0.7"}),
    );
    assert_eq!(cells("v1", "Pod", &p)[5], json!("10.0.0.7"));
}

#[test]
fn age_is_time_since_creation() {
    let mut p = pod("aged", 1, Value::Null, json!({"phase": "Running"}));
    p["metadata"]["creationTimestamp"] = json!(ago(TimeDelta::minutes(5) + TimeDelta::seconds(30)));
    assert_eq!(cells("v1", "Pod", &p)[4], json!("5m30s"));
    p["metadata"]["creationTimestamp"] = json!(ago(TimeDelta::hours(50)));
    assert_eq!(cells("v1", "Pod", &p)[4], json!("2d2h"));
}
