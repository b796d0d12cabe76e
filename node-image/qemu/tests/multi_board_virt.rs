//! Slow (BRAMBLE_SLOW_TESTS=1): two qemu-virt boards form one cluster on a virtual LAN of this
//! machine (a bridge holding the gateway address and a tap per board, each board's only NIC;
//! static addresses from their node configs, nothing routed beyond the bridge). Board 0 is
//! `role: both`; once it is Ready the test makes a bootstrap token (the Secret `bramble token
//! create` writes, through kubectl) and pins the cluster CA's hash in board 1's node config
//! (`role: worker`, `join:`), which joins over the LAN. Both nodes Ready in kubectl on this
//! machine, then a pod pinned to the worker pulls its aarch64 busybox image from a Debian
//! docker-registry on the bridge address and its logs come back through the controller (API
//! server to the worker's kubelet across the LAN). Then a busybox httpd pod on the worker
//! behind a ClusterIP Service, and a client pod on the controller board that fetches its page
//! by the web pod's IP (the host-gateway route to the worker's pod CIDR, over netlink) and
//! through the ClusterIP (the controller board's nftables DNAT, with the image's `nft`).
//! Prints each board's boot-to-Ready time.
//! Needs the static aarch64 bramble (scripts/build-aarch64.sh), /usr/bin/kubectl,
//! docker-registry, skopeo and /dev/net/tun.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use bramble_auth::bootstrap_token::{BootstrapToken, DEFAULT_EXTRA_GROUP};
use bramble_qemu::{Lan, Vm, VmOptions};
use common::registry::TestRegistry;
use common::Kubectl;

const TOKEN: &str = "multi-board-node-api-token";

fn node_yaml(lan: &Lan, i: usize, role_lines: &str, registry: &str) -> String {
    let gw = lan.gateway();
    format!(
        "{role_lines}hostname: qemu-b{i}\n\
         network:\n  mode: static\n  interface: eth0\n  address: {}/24\n  gateway: {gw}\n\
         ntp:\n  servers: ['{gw}:9']\n  timeout_seconds: 1\n\
         debug:\n  console_logs: true\napi:\n  token: {TOKEN}\n\
         registries:\n  insecure: ['{registry}']\n",
        lan.board_ip(i)
    )
}

fn boot(lan: &Lan, i: usize, image: std::path::PathBuf) -> Vm {
    Vm::start(
        &common::board(),
        &VmOptions {
            image,
            api_port: None,
            forwards: Vec::new(),
            memory_mib: Some(1024),
            cpus: Some(2),
            append: Vec::new(),
            isolated: false,
            lan: Some(lan.nic(i)),
        },
    )
    .unwrap()
}

#[test]
fn two_boards_on_a_lan_form_one_cluster_and_run_a_pod_on_the_worker() {
    if !common::slow_tests_enabled("boot a controller board and a worker board") {
        return;
    }
    let pid = std::process::id();
    let lan = Lan::create(
        &format!("bqm{}", pid % 100_000),
        Ipv4Addr::new(172, 30, (pid % 200) as u8 + 20, 0),
        2,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start_on(&lan.gateway().to_string()).unwrap();
    let image_ref = registry
        .push_busybox_for("busybox", "arm64", &common::arm64_busybox(), "arm64")
        .unwrap();

    let image0 = common::virt_image(
        dir.path(),
        "b0",
        &node_yaml(&lan, 0, "role: both\n", &registry.host()),
    );
    let mut b0 = boot(&lan, 0, image0);
    let kubeconfig = dir.path().join("admin.kubeconfig");
    let controller = lan.board_ip(0);
    common::fetch_admin_kubeconfig(&mut b0, &format!("{controller}:50000"), TOKEN, &kubeconfig);
    let k = Kubectl {
        kubeconfig,
        server: format!("https://{controller}:6443"),
    };
    let ready0 = k.wait_node_ready("qemu-b0", &b0, Duration::from_secs(900));

    // Join material, as `bramble token create --print-join-command` gives it.
    let token = BootstrapToken::generate();
    let secret = token.to_secret(
        None,
        &["signing", "authentication"],
        &[DEFAULT_EXTRA_GROUP],
        "qemu multi-board test",
    );
    k.run_with_input(&["create", "-f", "-"], &secret.to_string());
    let hash = k.ca_cert_hash();
    let image1 = common::virt_image(
        dir.path(),
        "b1",
        &node_yaml(
            &lan,
            1,
            &format!(
                "role: worker\njoin:\n  address: https://{controller}:6443\n  token: {token}\n  \
                 ca_cert_hash: {hash}\n"
            ),
            &registry.host(),
        ),
    );
    let b1 = boot(&lan, 1, image1);
    let ready1 = k.wait_node_ready("qemu-b1", &b1, Duration::from_secs(900));
    // Board 0 is still Ready with the worker beside it.
    k.wait_node_ready("qemu-b0", &b0, Duration::from_secs(120));
    let (_, wide) = k.try_run(&["get", "nodes", "-o", "wide"]);
    eprintln!("{wide}");
    for (name, ip) in [("qemu-b0", lan.board_ip(0)), ("qemu-b1", lan.board_ip(1))] {
        assert!(
            wide.lines()
                .any(|l| l.starts_with(name) && l.contains(&ip.to_string())),
            "{name} has not got INTERNAL-IP {ip}:\n{wide}"
        );
    }

    common::run_pod(
        &k,
        "on-worker",
        &image_ref,
        Some(r#"{"apiVersion":"v1","spec":{"nodeName":"qemu-b1"}}"#),
        "echo hello from $(hostname) on $(uname -m)",
    );
    k.wait_pod_succeeded("on-worker", &[&b0, &b1], Duration::from_secs(600));
    let (ok, logs) = k.try_run(&["logs", "on-worker"]);
    assert!(ok, "kubectl logs: {logs}");
    assert!(
        logs.contains("hello from on-worker on aarch64"),
        "logs: {logs}"
    );
    let (_, node) = k.try_run(&["get", "pod", "on-worker", "-o", "jsonpath={.spec.nodeName}"]);
    assert_eq!(node.trim(), "qemu-b1");
    let service = service_across_boards(&k, &image_ref, &[&b0, &b1]);
    eprintln!(
        "boot-to-Ready (QEMU start to Ready in kubectl, polled every 2 s): qemu-b0 (controller \
         + kubelet) {:.0} s; qemu-b1 (worker, joined with a bootstrap token) {:.0} s; pod on \
         the worker logged `{}`",
        ready0.as_secs_f64(),
        ready1.as_secs_f64(),
        logs.trim()
    );
    eprintln!("{service}");
}

/// Pods on different boards talk directly and through a ClusterIP Service: `web` (busybox
/// httpd on 8080) on the worker, Service `web` port 80 -> 8080, and `client` on the
/// controller board fetching the page both ways (retrying while routes, endpoints and rules
/// are programmed). Returns the client's log.
fn service_across_boards(k: &Kubectl, image: &str, vms: &[&Vm]) -> String {
    common::run_pod(
        k,
        "web",
        image,
        Some(r#"{"apiVersion":"v1","spec":{"nodeName":"qemu-b1"}}"#),
        "mkdir -p /www && echo served-by-$(hostname) > /www/index.html && \
         exec httpd -f -p 8080 -h /www",
    );
    let web_ip = k.wait_pod_ip("web", vms, Duration::from_secs(600));
    let (ok, text) = k.try_run(&[
        "expose",
        "pod",
        "web",
        "--port",
        "80",
        "--target-port",
        "8080",
    ]);
    assert!(ok, "kubectl expose: {text}");
    let (ok, cluster_ip) =
        k.try_run(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ok, "{cluster_ip}");
    let cluster_ip = cluster_ip.trim();
    // `timeout 10 wget`: busybox wget's own `-T 5` died with SIGSEGV on the board each time
    // a connection timed out.
    common::run_pod(
        k,
        "client",
        image,
        Some(r#"{"apiVersion":"v1","spec":{"nodeName":"qemu-b0"}}"#),
        &format!(
            "fetch() {{ for i in $(seq 60); do \
               if out=$(timeout 10 wget -q -O - \"$2\"); then echo \"$1: $out\"; return; fi; \
               sleep 2; done; echo \"$1: no answer from $2\"; }}; \
             fetch direct http://{web_ip}:8080/; fetch service http://{cluster_ip}/"
        ),
    );
    k.wait_pod_succeeded("client", vms, Duration::from_secs(1200));
    let (ok, logs) = k.try_run(&["logs", "client"]);
    assert!(ok, "kubectl logs client: {logs}");
    assert!(
        logs.contains("direct: served-by-web") && logs.contains("service: served-by-web"),
        "client on qemu-b0 did not reach web on qemu-b1 ({web_ip}, Service {cluster_ip}): {logs}"
    );
    format!(
        "pod on qemu-b0 reached pod web ({web_ip}) on qemu-b1 directly and through ClusterIP \
         {cluster_ip}: {}",
        logs.trim().replace('\n', "; ")
    )
}
