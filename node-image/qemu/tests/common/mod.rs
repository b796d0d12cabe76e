//! Helpers of the QEMU cluster tests: board images with a node config, the node API's admin
//! kubeconfig, the real kubectl on this machine against a board, and (shared with the root
//! package's tests) the Debian docker-registry that serves the pods' busybox image.
#![allow(dead_code)]

#[path = "../../../../tests/common/registry.rs"]
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bramble_image_builder::{build_image, AptCache, BuildOptions, PackageSource};
use bramble_node_api::NodeClient;
use bramble_qemu::Vm;

pub const KUBECTL: &str = "/usr/bin/kubectl";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn slow_tests_enabled(what: &str) -> bool {
    let on = std::env::var_os("BRAMBLE_SLOW_TESTS").is_some();
    if !on {
        eprintln!("slow test: set BRAMBLE_SLOW_TESTS=1 to {what}");
    }
    on
}

pub fn aarch64_binary() -> PathBuf {
    let p = std::env::var_os("BRAMBLE_AARCH64_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/aarch64-unknown-linux-musl/release/bramble"));
    assert!(
        p.is_file(),
        "{} missing: run scripts/build-aarch64.sh",
        p.display()
    );
    p
}

pub fn apt_cache() -> AptCache {
    AptCache::new(&AptCache::default_dir(), false)
}

/// Debian's arm64 busybox-static (the guest is aarch64), from the image builder's apt cache.
pub fn arm64_busybox() -> PathBuf {
    apt_cache()
        .fetch("bookworm", "busybox-static")
        .unwrap()
        .root
        .join("bin/busybox")
}

pub fn board() -> bramble_boards::BoardConfig {
    bramble_boards::load_board(&repo().join("board-configs"), "qemu-virt").unwrap()
}

/// A qemu-virt image at `dir/<name>.img` with `node_yaml` as its bramble.yaml, on a 1 GiB
/// "card" (first boot grows the data partition over it).
pub fn virt_image(dir: &Path, name: &str, node_yaml: &str) -> PathBuf {
    let cfg = dir.join(format!("{name}.yaml"));
    std::fs::write(&cfg, node_yaml).unwrap();
    let image = dir.join(format!("{name}.img"));
    build_image(
        &BuildOptions {
            board_dir: repo().join("board-configs"),
            board: "qemu-virt".into(),
            node_config: Some(cfg),
            output: image.clone(),
            bramble: aarch64_binary(),
            data_files: Vec::new(),
        },
        &apt_cache(),
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    image
}

/// The node API's certificate fingerprint, as the board prints it at boot.
pub fn node_api_fingerprint(vm: &mut Vm) -> String {
    vm.wait_for("certificate sha256 ", Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{e}"));
    vm.console()
        .lines()
        .find_map(|l| {
            l.split_once("certificate sha256 ")
                .map(|(_, f)| f.trim().to_string())
        })
        .unwrap()
}

/// Fetches the admin kubeconfig over the node API at `addr` (retrying until the controller
/// has written it) into `path`.
pub fn fetch_admin_kubeconfig(vm: &mut Vm, addr: &str, token: &str, path: &Path) {
    let fp = node_api_fingerprint(vm);
    let client = NodeClient::new(addr, token, Some(&fp)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let text = loop {
        match client.kubeconfig() {
            Ok(k) => break k,
            Err(e) if Instant::now() > deadline => panic!("{e}:\n{}", vm.console()),
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    };
    std::fs::write(path, text).unwrap();
}

/// The real kubectl with a kubeconfig and a server URL.
pub struct Kubectl {
    pub kubeconfig: PathBuf,
    pub server: String,
}

impl Kubectl {
    fn command(&self) -> Command {
        let mut c = Command::new(KUBECTL);
        c.arg("--kubeconfig").arg(&self.kubeconfig).args([
            "--server",
            &self.server,
            "--request-timeout",
            "60s",
        ]);
        c
    }

    /// Runs kubectl: (success, stdout + stderr).
    pub fn try_run(&self, args: &[&str]) -> (bool, String) {
        let out = self.command().args(args).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Runs kubectl with `stdin` as its input: stdout, panicking on failure.
    pub fn run_with_input(&self, args: &[&str], stdin: &str) -> String {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls until `node` is Ready (`vm` for the console on failure); returns QEMU's elapsed
    /// time at that moment.
    pub fn wait_node_ready(&self, node: &str, vm: &Vm, limit: Duration) -> Duration {
        let deadline = Instant::now() + limit;
        loop {
            let (_, text) = self.try_run(&[
                "get",
                "nodes",
                "-o",
                r#"jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
            ]);
            if text.lines().any(|l| l.trim() == format!("{node} True")) {
                return vm.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "node {node} not Ready; kubectl said: {text}\nconsole:\n{}",
                vm.console()
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Polls until pod `name` is in phase Succeeded (panics on Failed or after `limit`, with
    /// `kubectl describe` and the consoles of `vms`).
    pub fn wait_pod_succeeded(&self, name: &str, vms: &[&Vm], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let (_, phase) = self.try_run(&["get", "pod", name, "-o", "jsonpath={.status.phase}"]);
            if phase.trim() == "Succeeded" {
                return;
            }
            if phase.trim() == "Failed" || Instant::now() > deadline {
                let (_, describe) = self.try_run(&["describe", "pod", name]);
                let consoles: Vec<String> = vms.iter().map(|v| v.console()).collect();
                panic!(
                    "pod {name} phase `{phase}`:\n{describe}\nconsoles:\n{}",
                    consoles.join("\n----\n")
                );
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// Polls until pod `name` is Running with a pod IP (panics after `limit`, with `kubectl
    /// describe` and the consoles of `vms`); returns the IP.
    pub fn wait_pod_ip(&self, name: &str, vms: &[&Vm], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let (_, text) = self.try_run(&[
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={.status.phase} {.status.podIP}",
            ]);
            if let Some(("Running", ip)) = text.trim().split_once(' ') {
                return ip.to_string();
            }
            if Instant::now() > deadline {
                let (_, describe) = self.try_run(&["describe", "pod", name]);
                let consoles: Vec<String> = vms.iter().map(|v| v.console()).collect();
                panic!(
                    "pod {name} not Running with an IP (`{text}`):\n{describe}\nconsoles:\n{}",
                    consoles.join("\n----\n")
                );
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// The cluster CA's public-key hash (`sha256:<hex>`) a joining node pins.
    pub fn ca_cert_hash(&self) -> String {
        let (ok, data) = self.try_run(&[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ]);
        assert!(ok, "{data}");
        let mut b64 = Command::new("base64")
            .arg("-d")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            b64.stdin
                .take()
                .unwrap()
                .write_all(data.trim().as_bytes())
                .unwrap();
        }
        let pem = b64.wait_with_output().unwrap();
        bramble_pki::ca_cert_hash(&String::from_utf8(pem.stdout).unwrap()).unwrap()
    }
}

/// `kubectl run NAME --image IMAGE --restart=Never [--overrides SPEC] --command -- sh -c SCRIPT`.
pub fn run_pod(k: &Kubectl, name: &str, image: &str, overrides: Option<&str>, script: &str) {
    let mut args = vec![
        "run",
        name,
        "--image",
        image,
        "--restart=Never",
        "--image-pull-policy=IfNotPresent",
    ];
    if let Some(o) = overrides {
        args.extend(["--overrides", o]);
    }
    args.extend(["--command", "--", "sh", "-c", script]);
    let (ok, text) = k.try_run(&args);
    assert!(ok, "kubectl run {name}: {text}");
}
