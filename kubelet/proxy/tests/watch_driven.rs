//! The proxy loop driven by real watches: an in-process API server, the netctl
//! EndpointSlice controller, and the proxy applying rules in a network namespace this test
//! creates; rules follow a pod's readiness.

use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use bramble_apiserver::{Controller, ControllerConfig};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn ruleset(ns: &Netns) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "nft",
            "list",
            "table",
            "ip",
            "bramble-proxy",
        ])
        .output()
        .expect("nft list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_for(ns: &Netns, what: impl Fn(&str) -> bool) -> bool {
    for _ in 0..200 {
        if what(&ruleset(ns)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[test]
fn rules_follow_services_and_ready_endpoints() -> anyhow::Result<()> {
    let ns = Netns(format!("bpxw-{}", std::process::id()));
    let _ = Command::new("ip").args(["netns", "del", &ns.0]).output();
    assert!(Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()?
        .success());
    let path = format!("/run/netns/{}", ns.0);
    // Every runtime thread (and so every `nft` the proxy starts) lives in the namespace.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            let f = std::fs::File::open(&path).expect("netns");
            rustix::thread::move_into_link_name_space(
                f.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
        })
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let cfg = ControllerConfig::new(dir.path().join("controller"), "127.0.0.1:0".parse()?);
        let controller = Controller::start(&cfg).await?;
        let admin = controller.in_process_client("test-admin");
        let netctl = controller.in_process_client("system:kube-controller-manager");
        let proxy = controller.in_process_client("system:node:n1");
        tokio::spawn(controller.serve(std::future::pending::<()>()));
        tokio::spawn(bramble_netctl::run(netctl, bramble_netctl::NetctlConfig::default()));
        bramble_proxy::spawn(proxy, bramble_proxy::ProxyConfig::new("n1"));

        let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web-a", "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}
            }))?,
        )
        .await?;
        let set_ready = |ready: bool| {
            let pods = pods.clone();
            async move {
                let status = json!({"status": {"phase": "Running", "podIP": "10.42.0.2",
                    "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
                pods.patch_status("web-a", &PatchParams::default(), &Patch::Merge(&status)).await
            }
        };
        set_ready(true).await?;
        let services: Api<Service> = Api::namespaced(admin.clone(), "default");
        let svc = services
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": "web"},
                    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
                }))?,
            )
            .await?;
        let cluster_ip = svc.spec.unwrap().cluster_ip.unwrap();
        let element = format!("{cluster_ip} . tcp . 80");
        assert!(
            wait_for(&ns, |r| r.contains(&element) && r.contains("dnat to 10.42.0.2:8080")).await,
            "service not programmed: {}",
            ruleset(&ns)
        );
        // Readiness lost: the service moves to the reject map, the endpoint chain goes.
        set_ready(false).await?;
        assert!(
            wait_for(&ns, |r| !r.contains("dnat to 10.42.0.2:8080") && r.contains("reject-chain")).await,
            "endpoint still programmed: {}",
            ruleset(&ns)
        );
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
