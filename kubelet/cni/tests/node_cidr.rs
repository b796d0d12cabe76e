//! The kubelet network follows the Node's podCIDRs from a real in-process API server and
//! writes the default configuration once they appear.

use std::time::Duration;

use bramble_apiserver::{Controller, ControllerConfig};
use bramble_cni::CniNetworkConfig;
use bramble_kubelet::network::PodNetwork;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_conflist_written_when_the_node_gets_its_pod_cidr() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = ControllerConfig::new(dir.path().join("controller"), "127.0.0.1:0".parse()?);
    let controller = Controller::start(&cfg).await?;
    let client = controller.in_process_client("test-admin");
    tokio::spawn(controller.serve(std::future::pending::<()>()));
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "n1"}}))?,
        )
        .await?;
    let mut net_cfg = CniNetworkConfig::new(dir.path().join("cni"));
    net_cfg.conf_dir = dir.path().join("net.d");
    let network = bramble_cni::kubelet_network(net_cfg, "n1", client.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        network.status().is_err(),
        "ready before the pod CIDR is known"
    );
    let patch = json!({"spec": {"podCIDR": "10.42.7.0/24", "podCIDRs": ["10.42.7.0/24"]}});
    nodes
        .patch("n1", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    for _ in 0..100 {
        if network.status().is_ok() {
            let text = std::fs::read_to_string(dir.path().join("net.d/10-bramble.conflist"))?;
            assert!(text.contains("10.42.7.0/24"), "{text}");
            assert!(text.contains("bramble0"), "{text}");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the network never became ready")
}
