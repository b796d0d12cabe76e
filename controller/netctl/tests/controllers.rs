//! The network controllers against a real in-process API server (LMDB store in a temp dir).

use std::time::Duration;

use anyhow::Context;
use bramble_apiserver::{Controller, ControllerConfig};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = f().await {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("timed out waiting for {what}")
}

async fn node(client: &Client, name: &str, ip: &str) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await?;
    let status = json!({"status": {"addresses": [{"type": "InternalIP", "address": ip}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

async fn pod(client: &Client, name: &str, ip: &str, ready: bool) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox",
                "ports": [{"name": "http", "containerPort": 8080}]}]}
        }))?,
    )
    .await?;
    set_ready(client, name, ip, ready).await
}

async fn set_ready(client: &Client, name: &str, ip: &str, ready: bool) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

fn ready_ips(slices: &[EndpointSlice]) -> Vec<String> {
    let mut v: Vec<String> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .flat_map(|e| e.addresses.clone())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_endpoint_slices_endpoints_and_load_balancer_status() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = ControllerConfig::new(dir.path().join("controller"), "127.0.0.1:0".parse()?);
    let controller = Controller::start(&cfg).await?;
    let admin = controller.in_process_client("test-admin");
    let netctl = controller.in_process_client("system:kube-controller-manager");
    tokio::spawn(controller.serve(std::future::pending::<()>()));
    tokio::spawn(bramble_netctl::run(
        netctl,
        bramble_netctl::NetctlConfig::default(),
    ));

    // Node IPAM: distinct /24s from 10.42.0.0/16, persisted on the Node objects.
    node(&admin, "n1", "192.0.2.11").await?;
    node(&admin, "n2", "192.0.2.12").await?;
    let nodes: Api<Node> = Api::all(admin.clone());
    let cidrs = eventually("pod CIDRs", || {
        let nodes = nodes.clone();
        async move {
            let list = nodes.list(&ListParams::default()).await.ok()?;
            let mut c: Vec<String> = list
                .items
                .iter()
                .filter_map(|n| n.spec.as_ref()?.pod_cidr.clone())
                .collect();
            c.sort();
            (c.len() == 2).then_some(c)
        }
    })
    .await?;
    assert_eq!(cidrs, vec!["10.42.0.0/24", "10.42.1.0/24"]);
    let n1 = nodes.get("n1").await?;
    assert_eq!(
        n1.spec.as_ref().unwrap().pod_cidrs.as_ref().unwrap().len(),
        1
    );

    // EndpointSlices and Endpoints follow Ready pods.
    pod(&admin, "web-a", "10.42.0.2", true).await?;
    pod(&admin, "web-b", "10.42.0.3", false).await?;
    let services: Api<Service> = Api::namespaced(admin.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
            }))?,
        )
        .await?;
    let slices: Api<EndpointSlice> = Api::namespaced(admin.clone(), "default");
    let by_service = ListParams::default().labels("kubernetes.io/service-name=web");
    let wait_ready = |want: Vec<&'static str>| {
        let slices = slices.clone();
        let by_service = by_service.clone();
        eventually("ready endpoints", move || {
            let slices = slices.clone();
            let by_service = by_service.clone();
            let want = want.clone();
            async move {
                let list = slices.list(&by_service).await.ok()?;
                (ready_ips(&list.items) == want).then_some(list.items)
            }
        })
    };
    let items = wait_ready(vec!["10.42.0.2"]).await?;
    let s = &items[0];
    assert_eq!(
        s.metadata.labels.as_ref().unwrap()["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(s.ports.as_ref().unwrap()[0].port, Some(8080));
    assert_eq!(
        s.endpoints.len(),
        2,
        "the unready pod is listed as not ready"
    );
    let eps: Api<Endpoints> = Api::namespaced(admin.clone(), "default");
    let ep = eventually("Endpoints", || {
        let eps = eps.clone();
        async move { eps.get("web").await.ok().filter(|e| e.subsets.is_some()) }
    })
    .await?;
    let subset = &ep.subsets.as_ref().unwrap()[0];
    assert_eq!(subset.addresses.as_ref().unwrap()[0].ip, "10.42.0.2");
    assert_eq!(
        subset.not_ready_addresses.as_ref().unwrap()[0].ip,
        "10.42.0.3"
    );

    // Readiness flips move endpoints in and out.
    set_ready(&admin, "web-b", "10.42.0.3", true).await?;
    wait_ready(vec!["10.42.0.2", "10.42.0.3"]).await?;
    set_ready(&admin, "web-a", "10.42.0.2", false).await?;
    wait_ready(vec!["10.42.0.3"]).await?;

    // LoadBalancer status: the Ready nodes' InternalIPs.
    let ingress = eventually("load balancer ingress", || {
        let services = services.clone();
        async move {
            let svc = services.get("web").await.ok()?;
            let ing = svc.status?.load_balancer?.ingress?;
            (ing.len() == 2).then_some(ing)
        }
    })
    .await?;
    let ips: Vec<_> = ingress
        .iter()
        .map(|i| i.ip.clone().unwrap_or_default())
        .collect();
    assert_eq!(ips, vec!["192.0.2.11", "192.0.2.12"]);

    // Deleting the Service removes its slices and Endpoints.
    services.delete("web", &DeleteParams::default()).await?;
    eventually("slices gone", || {
        let slices = slices.clone();
        let by_service = by_service.clone();
        async move {
            slices
                .list(&by_service)
                .await
                .ok()
                .filter(|l| l.items.is_empty())
                .map(|_| ())
        }
    })
    .await
    .context("slices of a deleted Service")?;
    eventually("endpoints gone", || {
        let eps = eps.clone();
        async move {
            eps.get_opt("web")
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        }
    })
    .await?;
    Ok(())
}
