//! Which services the node config asks for, with their command lines, and the real spawner that
//! runs them as `/proc/self/exe <args>` with their output captured into the log ring.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use bramble_boards::NodeConfig;

use crate::logring::LogRing;
use crate::supervisor::{ServiceSpec, Spawner};

/// Where services keep their state on the data partition.
pub const STATE_DIR: &str = "/var/lib/bramble";
/// The controller's store (`<data-dir>/controller/db`).
pub const STORE_DIR: &str = "/var/lib/bramble/controller/db";
/// The admin kubeconfig the controller writes (the node API serves it).
pub const ADMIN_KUBECONFIG: &str = "/var/lib/bramble/admin.kubeconfig";

/// Written by init once the board's kernel modules are loaded and the sysctls that need them
/// (bridge netfilter) are set; the kubelet waits for it, the controller does not.
pub const MODULES_LOADED: &str = "/run/bramble/modules-loaded";

/// The services for `cfg`, in start order. `address` is the node's IPv4 address, if known.
///
/// Integration point with `bramble controller` and `bramble kubelet` (flags as in
/// src/cli/controller.rs and src/cli/kubelet.rs); `services.controller` / `services.kubelet` in
/// bramble.yaml are appended.
///
/// Role `both` without a join is one process: the controller with its kubelet in process
/// (`--kubelet`, the kubelet's flags as `--kubelet-arg`s), as `bramble up` runs them. The
/// kubelet then starts as soon as the API is set up and the modules are loaded (no wait for a
/// kubeconfig file, no second start of the binary, no TLS between them), and the board runs
/// one runtime and heap instead of two. A kubelet that fails ends the process, and init
/// restarts it as it restarts any service.
pub fn service_specs(cfg: &NodeConfig, address: Option<Ipv4Addr>) -> Vec<ServiceSpec> {
    let mut specs = Vec::new();
    let kubelet = cfg.role.runs_kubelet().then(|| kubelet_args(cfg, address));
    let in_process = cfg.role.runs_controller() && cfg.join.is_none();
    if cfg.role.runs_controller() {
        let mut args: Vec<String> = vec![
            "controller".into(),
            // The controller keeps <data-dir>/controller/{db,pki}.
            "--data-dir".into(),
            STATE_DIR.into(),
            "--tls-san".into(),
            cfg.hostname.clone(),
            "--write-kubeconfig".into(),
            ADMIN_KUBECONFIG.into(),
        ];
        if let Some(a) = address {
            args.extend(["--advertise-address".into(), a.to_string()]);
        }
        if let (Some(k), true) = (&kubelet, in_process) {
            // It waits for the modules (bridge, veth, nf_tables, ...) itself.
            args.extend([
                "--kubelet".into(),
                "--kubelet-after".into(),
                MODULES_LOADED.into(),
            ]);
            args.extend(k.iter().map(|a| format!("--kubelet-arg={a}")));
        }
        args.extend(cfg.services.controller.iter().cloned());
        specs.push(ServiceSpec {
            name: "controller".into(),
            args,
            after: Vec::new(),
        });
    }
    if let (Some(args), false) = (kubelet, in_process) {
        // A kubelet that joins a controller elsewhere starts once init loaded the modules.
        specs.push(ServiceSpec {
            name: "kubelet".into(),
            args: std::iter::once("kubelet".to_string()).chain(args).collect(),
            after: vec![std::path::PathBuf::from(MODULES_LOADED)],
        });
    }
    specs
}

/// The kubelet's flags (after `kubelet`): its node, state, cgroup parent, the join when the
/// node config has one, the node address, insecure registries, then `services.kubelet`.
fn kubelet_args(cfg: &NodeConfig, address: Option<Ipv4Addr>) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--node-name".into(),
        cfg.hostname.clone(),
        "--data-dir".into(),
        format!("{STATE_DIR}/kubelet"),
        // kubepods under /sys/fs/cgroup/bramble (the kubelet's empty default is rejected by
        // its PathBuf parser: "a value is required for '--cgroup-parent'").
        "--cgroup-parent".into(),
        "bramble".into(),
    ];
    if let Some(j) = &cfg.join {
        args.extend([
            "--server".into(),
            j.address.clone(),
            "--token".into(),
            j.token.clone(),
        ]);
        if let Some(h) = &j.ca_cert_hash {
            args.extend(["--discovery-token-ca-cert-hash".into(), h.clone()]);
        }
    }
    if let Some(a) = address {
        args.extend(["--node-ip".into(), a.to_string()]);
    }
    for r in &cfg.registries.insecure {
        args.extend(["--insecure-registry".into(), r.clone()]);
    }
    args.extend(cfg.services.kubelet.iter().cloned());
    args
}

/// Spawns `exe args...`, piping stdout and stderr line by line into the ring.
pub struct ProcessSpawner {
    /// Program (normally `/proc/self/exe`).
    pub exe: String,
    /// Log ring.
    pub ring: LogRing,
    /// Also copy service lines to the console.
    pub console: bool,
}

impl Spawner for ProcessSpawner {
    fn spawn(&mut self, spec: &ServiceSpec) -> std::io::Result<i32> {
        let mut child = Command::new(&self.exe)
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let pid = child.id() as i32;
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (ring, name, console) = (self.ring.clone(), spec.name.clone(), self.console);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    ring.push(&name, &line);
                    if console {
                        eprintln!("[{name}] {line}");
                    }
                }
            });
        }
        // PID 1 reaps with waitpid(-1); dropping the handle does not wait or kill.
        drop(child);
        Ok(pid)
    }

    fn signal(&mut self, pid: i32, signal: i32) {
        // SAFETY: kill(2) on a pid we started.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn roles_pick_services_and_flags() {
        let both = NodeConfig::parse(
            Path::new("b.yaml"),
            "hostname: pi-1\nservices:\n  kubelet: [--max-pods, '20']\n\
             registries:\n  insecure: ['10.0.2.2:5000', 192.168.1.0/24]\n",
        )
        .unwrap();
        let s = service_specs(&both, Some(Ipv4Addr::new(10, 0, 2, 15)));
        // one process: the controller with its kubelet in process
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["controller"]
        );
        let c = &s[0].args;
        assert!(c
            .windows(2)
            .any(|w| w == ["--advertise-address", "10.0.2.15"]));
        assert!(c.windows(2).any(|w| w == ["--data-dir", STATE_DIR]));
        assert!(c.iter().any(|a| a == "--kubelet"));
        // the kubelet's flags, in order, each its own --kubelet-arg
        let k: Vec<&str> = c
            .iter()
            .filter_map(|a| a.strip_prefix("--kubelet-arg="))
            .collect();
        assert_eq!(
            k,
            [
                "--node-name",
                "pi-1",
                "--data-dir",
                "/var/lib/bramble/kubelet",
                "--cgroup-parent",
                "bramble",
                "--node-ip",
                "10.0.2.15",
                // insecure registries go to the kubelet only, one flag each, before
                // `services.kubelet`
                "--insecure-registry",
                "10.0.2.2:5000",
                "--insecure-registry",
                "192.168.1.0/24",
                "--max-pods",
                "20",
            ]
        );
        assert!(!c.iter().any(|a| a == "--insecure-registry"));
        // the kubelet reaches the API in process as its node, never with the admin kubeconfig
        assert!(!c.iter().any(|a| a.contains("--kubeconfig")));
        // the controller starts at once; its kubelet waits for the modules
        assert!(s[0].after.is_empty(), "the controller needs no modules");
        assert!(c
            .windows(2)
            .any(|w| w == ["--kubelet-after", MODULES_LOADED]));
        let worker = NodeConfig::parse(
            Path::new("w.yaml"),
            &format!("role: worker\nhostname: pi-2\njoin:\n  address: https://10.0.0.1:6443\n  token: abcdef.0123456789abcdef\n  ca_cert_hash: sha256:{}\n", "ab".repeat(32)),
        )
        .unwrap();
        let s = service_specs(&worker, None);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "kubelet");
        assert_eq!(s[0].args[..3], ["kubelet", "--node-name", "pi-2"]);
        assert_eq!(
            s[0].after,
            [Path::new(MODULES_LOADED)],
            "a joining kubelet waits for the modules only"
        );
        assert!(!s[0].args.iter().any(|a| a == "--kubeconfig"));
        assert!(s[0]
            .args
            .windows(2)
            .any(|w| w == ["--token", "abcdef.0123456789abcdef"]));
        let hash = format!("sha256:{}", "ab".repeat(32));
        assert!(s[0]
            .args
            .windows(2)
            .any(|w| w == ["--discovery-token-ca-cert-hash", hash.as_str()]));
        let ctl =
            NodeConfig::parse(Path::new("c.yaml"), "role: controller\nhostname: c\n").unwrap();
        let s = service_specs(&ctl, None);
        assert_eq!(s.len(), 1);
        // no kubelet here
        assert!(!s[0].args.iter().any(|a| a.starts_with("--kubelet")));
    }

    #[test]
    fn spawner_captures_output_into_the_ring() {
        let ring = LogRing::new(4096);
        let mut sp = ProcessSpawner {
            exe: "/bin/sh".into(),
            ring: ring.clone(),
            console: false,
        };
        let pid = sp
            .spawn(&ServiceSpec {
                name: "svc".into(),
                args: vec!["-c".into(), "echo out; echo err >&2".into()],
                after: Vec::new(),
            })
            .unwrap();
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        for _ in 0..100 {
            if ring.since(0, Some("svc")).len() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut lines: Vec<String> = ring
            .since(0, Some("svc"))
            .into_iter()
            .map(|l| l.text)
            .collect();
        lines.sort();
        assert_eq!(lines, ["err", "out"]);
    }
}
