//! `bramble kubelet` registers its Node and heartbeats with a Lease, against a real
//! controller, read back with the real kubectl.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::kubelet::TestKubelet;
use common::{ok, TestController};
use serde_json::Value;

const SECS_30: Duration = Duration::from_secs(30);
const MS_100: Duration = Duration::from_millis(100);
const MS_200: Duration = Duration::from_millis(200);

#[test]
fn node_registers_with_capacity_labels_conditions_and_lease() -> Result<()> {
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "kn-node")?;
    let node: Value = k.wait_for(SECS_30, MS_100, "node registered with status", || {
        let out = ctrl
            .kubectl(&["get", "node", "kn-node", "-o", "json"])
            .ok()?;
        let n: Value = serde_json::from_slice(&out.stdout).ok()?;
        (out.status.success() && n["status"]["conditions"].is_array()).then_some(n)
    })?;
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/hostname"], "kn-node");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert!(labels["kubernetes.io/arch"].is_string());
    let st = &node["status"];
    for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(st["capacity"][r].is_string(), "capacity.{r}: {st}");
        assert!(st["allocatable"][r].is_string(), "allocatable.{r}: {st}");
    }
    assert_eq!(st["capacity"]["pods"], "110");
    let types: Vec<&str> = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    );
    let ready = &st["conditions"][3];
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "KubeletReady");
    assert!(st["nodeInfo"]["kubeletVersion"]
        .as_str()
        .unwrap()
        .starts_with("v1.33."));
    assert!(st["nodeInfo"]["containerRuntimeVersion"]
        .as_str()
        .unwrap()
        .starts_with("bramble://"));
    assert!(!st["nodeInfo"]["kernelVersion"].as_str().unwrap().is_empty());
    assert_eq!(st["addresses"][0]["type"], "InternalIP");
    assert_eq!(st["addresses"][0]["address"], "127.0.0.1");
    assert_eq!(st["addresses"][1]["type"], "Hostname");
    assert_eq!(st["daemonEndpoints"]["kubeletEndpoint"]["Port"], k.port);

    // kubectl's table: Ready, version.
    let table = ok(ctrl.kubectl(&["get", "node", "kn-node", "--no-headers"])?)?;
    assert!(table.contains(" Ready "), "{table}");
    assert!(table.contains("v1.33.0-bramble"), "{table}");

    // The lease is renewed: two reads 11 s apart show different renewTimes.
    let lease = |ctrl: &TestController| -> Result<Value> {
        Ok(serde_json::from_str(&ok(ctrl.kubectl(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            "kn-node",
            "-o",
            "json",
        ])?)?)?)
    };
    let first = k.wait_for(Duration::from_secs(20), MS_200, "the node's lease", || {
        lease(&ctrl).ok()
    })?;
    assert_eq!(first["spec"]["holderIdentity"], "kn-node");
    assert_eq!(first["spec"]["leaseDurationSeconds"], 40);
    std::thread::sleep(Duration::from_secs(11));
    let second = lease(&ctrl)?;
    assert_ne!(first["spec"]["renewTime"], second["spec"]["renewTime"]);
    // Owned by the Node (set once the Node exists).
    assert_eq!(second["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(
        second["metadata"]["ownerReferences"][0]["uid"],
        node["metadata"]["uid"]
    );
    Ok(())
}

/// A restarted kubelet adopts its existing Node: its labels stay, and one of its own labels
/// that was taken off meanwhile is put back (upstream's `updateDefaultLabels`).
#[test]
fn a_restarted_kubelet_adopts_its_node_and_restores_its_labels() -> Result<()> {
    let ctrl = TestController::start()?;
    let mut k = TestKubelet::start(&ctrl, "kn-adopt")?;
    let node = |ctrl: &TestController| -> Result<Value> {
        Ok(serde_json::from_str(&ok(
            ctrl.kubectl(&["get", "node", "kn-adopt", "-o", "json"])?
        )?)?)
    };
    let first = k.wait_for(SECS_30, MS_100, "node registered", || node(&ctrl).ok())?;
    ok(ctrl.kubectl(&["label", "node", "kn-adopt", "kubernetes.io/os-", "team=a"])?)?;
    k.restart()?;
    let n = k.wait_for(SECS_30, MS_200, "kubernetes.io/os label restored", || {
        node(&ctrl)
            .ok()
            .filter(|n| n["metadata"]["labels"]["kubernetes.io/os"] == "linux")
    })?;
    let labels = &n["metadata"]["labels"];
    assert_eq!(labels["team"], "a", "a user's label stays: {labels}");
    assert_eq!(
        n["metadata"]["uid"], first["metadata"]["uid"],
        "the same Node"
    );
    assert!(k.log().contains("node already registered, adopted"));
    Ok(())
}
