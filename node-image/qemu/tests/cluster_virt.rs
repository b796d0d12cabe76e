//! Slow (BRAMBLE_SLOW_TESTS=1): a single-board cluster on the qemu-virt guest. The image's node
//! config is `role: both`, so init starts `bramble controller` and `bramble kubelet`; the test
//! fetches the admin kubeconfig over the node API and runs the real kubectl on this machine
//! against the forwarded API port until the node reports Ready, then runs a pod whose aarch64
//! busybox image the guest pulls from a Debian docker-registry on this machine (QEMU user
//! networking: the host's loopback is 10.0.2.2 in the guest, allowed by the node config's
//! `registries.insecure`), and reads its logs back through kubectl.
//! Needs the static aarch64 bramble (scripts/build-aarch64.sh), /usr/bin/kubectl,
//! docker-registry and skopeo.

mod common;

use std::time::Duration;

use bramble_qemu::{Vm, VmOptions};
use common::registry::TestRegistry;
use common::{free_port, Kubectl};

const TOKEN: &str = "cluster-test-node-api-token";

#[test]
fn single_board_cluster_node_becomes_ready_and_runs_a_pod_from_a_registry() {
    if !common::slow_tests_enabled("boot a controller+kubelet guest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start().unwrap();
    registry
        .push_busybox_for("busybox", "arm64", &common::arm64_busybox(), "arm64")
        .unwrap();
    // The same registry as the guest sees it through QEMU's user networking.
    let guest_registry = format!("10.0.2.2:{}", registry.port);
    let image = common::virt_image(
        dir.path(),
        "virt",
        &format!(
            "role: both\nhostname: qemu-node\nntp:\n  servers: ['10.0.2.2:9']\n  timeout_seconds: 1\n\
             debug:\n  console_logs: true\napi:\n  token: {TOKEN}\n\
             registries:\n  insecure: ['{guest_registry}']\n"
        ),
    );
    let (api_port, node_port) = (free_port(), free_port());
    let mut vm = Vm::start(
        &common::board(),
        &VmOptions {
            image,
            api_port: Some(api_port),
            forwards: vec![(node_port, 50000)],
            memory_mib: Some(1024),
            cpus: Some(2),
            append: Vec::new(),
            isolated: false,
            lan: None,
        },
    )
    .unwrap();
    let kubeconfig = dir.path().join("admin.kubeconfig");
    common::fetch_admin_kubeconfig(
        &mut vm,
        &format!("127.0.0.1:{node_port}"),
        TOKEN,
        &kubeconfig,
    );
    let k = Kubectl {
        kubeconfig,
        server: format!("https://127.0.0.1:{api_port}"),
    };
    let ready = k.wait_node_ready("qemu-node", &vm, Duration::from_secs(900));
    eprintln!("{}", k.try_run(&["get", "nodes", "-o", "wide"]).1);
    eprintln!(
        "boot-to-Ready: qemu-node Ready after {:.0} s of QEMU",
        ready.as_secs_f64()
    );

    common::run_pod(
        &k,
        "hello",
        &format!("{guest_registry}/busybox:arm64"),
        None,
        "echo hello from $(uname -m) in $(cat /proc/self/cgroup)",
    );
    k.wait_pod_succeeded("hello", &[&vm], Duration::from_secs(600));
    let (ok, logs) = k.try_run(&["logs", "hello"]);
    assert!(ok, "kubectl logs: {logs}");
    // An aarch64 container in a cgroup v2 hierarchy (`0::/...`).
    assert!(
        logs.contains("hello from aarch64 in 0::/"),
        "logs: {logs}\nconsole:\n{}",
        vm.console()
    );
    eprintln!(
        "pod hello ran and logged `{}` after {:.0} s of QEMU",
        logs.trim(),
        vm.elapsed().as_secs_f64()
    );
}
