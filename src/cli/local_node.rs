//! The start-up order of a controller that runs its machine's kubelet in the same process.
//!
//! On a board's two cores, every controller's informers listing and watching at once took the
//! CPU the kubelet needed to register its node and report it Ready (about 1 s of a reboot under
//! emulation). So the kubelet starts first, and the other controllers and the node's services
//! its Ready does not wait for (service proxy, NetworkPolicy agent, routes, ingress) once the
//! kubelet has written its Node (registered it, or reported its status after adopting it on a
//! restart), or after [`LIMIT`] when it does not (a kubelet waiting for its modules, or
//! failing).

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

/// The longest the controllers wait for the kubelet's first write.
pub const LIMIT: Duration = Duration::from_secs(10);

/// How often the Node is read while waiting (one in-process read of one object).
const POLL: Duration = Duration::from_millis(50);

/// The Node as it was before the kubelet started, to tell its writes from the last run's.
pub struct NodeWrites {
    nodes: Api<Node>,
    name: String,
    resource_version: Option<String>,
}

impl NodeWrites {
    /// Reads the Node `name`'s resourceVersion (none when it does not exist yet).
    pub async fn mark(client: kube::Client, name: &str) -> Result<NodeWrites, kube::Error> {
        let nodes: Api<Node> = Api::all(client);
        let resource_version = nodes
            .get_opt(name)
            .await?
            .and_then(|n| n.metadata.resource_version);
        Ok(NodeWrites {
            nodes,
            name: name.to_string(),
            resource_version,
        })
    }

    /// Completes when the Node was created or changed since [`NodeWrites::mark`], or after
    /// `limit`; says which.
    pub async fn next(self, limit: Duration) -> Result<bool, kube::Error> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let now = self
                .nodes
                .get_opt(&self.name)
                .await?
                .and_then(|n| n.metadata.resource_version);
            if now != self.resource_version {
                return Ok(true);
            }
            if tokio::time::Instant::now() + POLL > deadline {
                return Ok(false);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_apiserver::{Controller, ControllerConfig};
    use kube::api::{Patch, PatchParams, PostParams};

    const SHORT: Duration = Duration::from_millis(300);

    fn node(name: &str) -> Node {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_kubelets_writes_after_the_mark_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ControllerConfig::new(dir.path().join("c"), "127.0.0.1:0".parse().unwrap());
        let controller = Controller::start(&cfg).await.unwrap();
        let watcher = controller.in_process_client("system:kube-controller-manager");
        let kubelet: Api<Node> = Api::all(controller.in_process_node_client("pi-1"));
        let other: Api<Node> = Api::all(controller.in_process_node_client("pi-2"));

        // First boot: no Node yet, and another node's registration is not this kubelet's.
        let writes = NodeWrites::mark(watcher.clone(), "pi-1").await.unwrap();
        other
            .create(&PostParams::default(), &node("pi-2"))
            .await
            .unwrap();
        assert!(!writes.next(SHORT).await.unwrap());
        // Its registration is.
        let writes = NodeWrites::mark(watcher.clone(), "pi-1").await.unwrap();
        kubelet
            .create(&PostParams::default(), &node("pi-1"))
            .await
            .unwrap();
        assert!(writes.next(LIMIT).await.unwrap());

        // A restart: the Node from before the mark is not a write of this run...
        let writes = NodeWrites::mark(watcher.clone(), "pi-1").await.unwrap();
        assert!(!writes.next(SHORT).await.unwrap());
        // ... its first status report is, also when it comes while the controllers wait.
        let writes = NodeWrites::mark(watcher, "pi-1").await.unwrap();
        let waiting = tokio::spawn(writes.next(LIMIT));
        tokio::time::sleep(SHORT).await;
        let status =
            serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        kubelet
            .patch_status("pi-1", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        assert!(waiting.await.unwrap().unwrap());
    }
}
