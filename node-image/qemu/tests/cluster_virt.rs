//! Slow (BRAMBLE_SLOW_TESTS=1): a single-board cluster on the qemu-virt guest. The image's node
//! config is `role: both`, so init starts `bramble controller` and `bramble kubelet`; the test
//! fetches the admin kubeconfig over the node API and runs the real kubectl on this machine
//! against the forwarded API port until the node reports Ready.
//! Needs the static aarch64 bramble (scripts/build-aarch64.sh) and /usr/bin/kubectl.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bramble_image_builder::{build_image, AptCache, BuildOptions};
use bramble_node_api::NodeClient;
use bramble_qemu::{Vm, VmOptions};

const TOKEN: &str = "cluster-test-node-api-token";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn single_board_cluster_node_becomes_ready_in_kubectl() {
    if std::env::var_os("BRAMBLE_SLOW_TESTS").is_none() {
        eprintln!("slow test: set BRAMBLE_SLOW_TESTS=1 to boot a controller+kubelet guest");
        return;
    }
    let bramble = std::env::var_os("BRAMBLE_AARCH64_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/aarch64-unknown-linux-musl/release/bramble"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bramble.yaml");
    std::fs::write(
        &cfg,
        format!(
            "role: both\nhostname: qemu-node\nntp:\n  servers: ['10.0.2.2:9']\n  timeout_seconds: 1\n\
             debug:\n  console_logs: true\napi:\n  token: {TOKEN}\n"
        ),
    )
    .unwrap();
    let image = dir.path().join("virt.img");
    build_image(
        &BuildOptions {
            board_dir: repo().join("board-configs"),
            board: "qemu-virt".into(),
            node_config: Some(cfg),
            output: image.clone(),
            bramble,
            data_files: Vec::new(),
        },
        &AptCache::new(&AptCache::default_dir(), false),
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let board = bramble_boards::load_board(&repo().join("board-configs"), "qemu-virt").unwrap();
    let (api_port, node_port) = (free_port(), free_port());
    let mut vm = Vm::start(
        &board,
        &VmOptions {
            image,
            api_port: Some(api_port),
            forwards: vec![(node_port, 50000)],
            memory_mib: Some(1024),
            cpus: Some(2),
            append: Vec::new(),
            isolated: false,
        },
    )
    .unwrap();
    let up = vm.wait_for("started kubelet", Duration::from_secs(300));
    up.unwrap_or_else(|e| panic!("{e}:\n{}", vm.console()));
    let fp = vm
        .console()
        .lines()
        .find_map(|l| {
            l.split_once("certificate sha256 ")
                .map(|(_, f)| f.trim().to_string())
        })
        .unwrap();
    let client = NodeClient::new(&format!("127.0.0.1:{node_port}"), TOKEN, Some(&fp)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let kubeconfig = loop {
        match client.kubeconfig() {
            Ok(k) => break k,
            Err(e) if Instant::now() > deadline => panic!("{e}:\n{}", vm.console()),
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    };
    let kc = dir.path().join("admin.kubeconfig");
    std::fs::write(&kc, kubeconfig).unwrap();
    let server = format!("https://127.0.0.1:{api_port}");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last;
    loop {
        let out = Command::new("/usr/bin/kubectl")
            .args(["--kubeconfig", &kc.to_string_lossy(), "--server", &server])
            .args(["get", "nodes", "-o"])
            .arg(r#"jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#)
            .output()
            .unwrap();
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if last.lines().any(|l| l.trim() == "qemu-node True") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node not Ready; kubectl said: {last}\nconsole:\n{}",
            vm.console()
        );
        std::thread::sleep(Duration::from_secs(3));
    }
    let wide = Command::new("/usr/bin/kubectl")
        .args(["--kubeconfig", &kc.to_string_lossy(), "--server", &server])
        .args(["get", "nodes", "-o", "wide"])
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&wide.stdout));
    eprintln!(
        "ready after {:.0} s of QEMU; {last}",
        vm.elapsed().as_secs_f64()
    );
}
