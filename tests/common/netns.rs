//! Test hosts in network namespaces this test creates: a bridge in the test's own namespace
//! (holding the gateway address), one veth pair per host into its own namespace with its
//! own address, and a TCP forwarder so hosts reach a [`TestController`] listening on
//! loopback. Everything is removed on drop.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::kubelet::TestKubelet;
use super::TestController;

static NEXT_NET: AtomicU32 = AtomicU32::new(0);

/// Runs a command; an error with its output when it fails.
pub fn sh(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One test host: a named network namespace with `eth0` on the test bridge.
pub struct NetHost {
    /// The namespace name (`ip netns`).
    pub netns: String,
    /// Its address on the bridge.
    pub ip: String,
    host_veth: String,
}

impl NetHost {
    /// `/run/netns/NAME`.
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.netns)
    }

    /// The command prefix running a program in this host's network namespace only (unlike
    /// `ip netns exec`, the mount namespace and so the cgroup mounts stay as they are).
    pub fn wrapper(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            format!("--net={}", self.netns_path().display()),
        ]
    }

    /// Runs `args` in this host's network namespace.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        let w = self.wrapper();
        Ok(Command::new(&w[0])
            .args(&w[1..])
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }
}

/// A bridge with hosts, and a forwarder from the gateway address to the controller.
pub struct TestNet {
    /// The bridge in the test's namespace.
    pub bridge: String,
    /// `A.B.C` of the /24 the hosts live in.
    pub prefix: String,
    /// The gateway (the bridge's address): hosts reach the controller here.
    pub gateway: String,
    /// The hosts, in creation order.
    pub hosts: Vec<NetHost>,
    tag: String,
    forwarders: Vec<Arc<TcpListener>>,
}

impl TestNet {
    /// A bridge and `n` hosts (`.10`, `.11`, ...), each with a default route via the bridge.
    pub fn new(n: usize) -> Result<TestNet> {
        let k = NEXT_NET.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{:x}{k}", pid % 0xfffff);
        // 172.31.X.0/24, X from the pid and the counter: parallel tests do not collide.
        let third = (pid as u32 * 7 + k * 31) % 250 + 1;
        let prefix = format!("172.31.{third}");
        let bridge = format!("bb{tag}");
        let gateway = format!("{prefix}.1");
        let mut net = TestNet {
            bridge: bridge.clone(),
            prefix: prefix.clone(),
            gateway: gateway.clone(),
            hosts: Vec::new(),
            tag,
            forwarders: Vec::new(),
        };
        sh("ip", &["link", "add", &bridge, "type", "bridge"])?;
        sh(
            "ip",
            &["addr", "add", &format!("{gateway}/24"), "dev", &bridge],
        )?;
        sh("ip", &["link", "set", &bridge, "up"])?;
        for i in 0..n {
            net.add_host(i)?;
        }
        Ok(net)
    }

    fn add_host(&mut self, i: usize) -> Result<()> {
        let netns = format!("bn{}h{i}", self.tag);
        let host_veth = format!("bv{}h{i}", self.tag);
        let ip = format!("{}.{}", self.prefix, 10 + i);
        let _ = sh("ip", &["netns", "del", &netns]);
        sh("ip", &["netns", "add", &netns])?;
        let host = NetHost {
            netns: netns.clone(),
            ip: ip.clone(),
            host_veth: host_veth.clone(),
        };
        self.hosts.push(host);
        sh(
            "ip",
            &[
                "link", "add", &host_veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ],
        )?;
        sh("ip", &["link", "set", &host_veth, "master", &self.bridge])?;
        sh("ip", &["link", "set", &host_veth, "up"])?;
        let n = |args: &[&str]| -> Result<String> {
            let mut full = vec!["netns", "exec", netns.as_str()];
            full.extend_from_slice(args);
            sh("ip", &full)
        };
        n(&["ip", "link", "set", "lo", "up"])?;
        n(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
        n(&["ip", "link", "set", "eth0", "up"])?;
        n(&["ip", "route", "add", "default", "via", &self.gateway])?;
        Ok(())
    }

    /// Forwards `gateway:port` to `127.0.0.1:port` (a server of the test listening on
    /// loopback, such as a registry) so the hosts reach it.
    pub fn forward(&mut self, port: u16) -> Result<()> {
        let listener = Arc::new(TcpListener::bind((self.gateway.as_str(), port))?);
        self.forwarders.push(listener.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(down) = conn else { break };
                let Ok(up) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                pipe(down, up);
            }
        });
        Ok(())
    }

    /// Forwards the controller's port (see [`TestNet::forward`]); returns a kubeconfig for
    /// the hosts, a copy of `ctrl`'s with the gateway as server.
    pub fn expose_controller(&mut self, ctrl: &TestController) -> Result<PathBuf> {
        self.forward(ctrl.port)?;
        self.host_kubeconfig(ctrl, &ctrl.kubeconfig)
    }

    /// A copy of `kubeconfig` (one of `ctrl`'s users, e.g. a node's from
    /// `common::auth::cert_kubeconfig`) with the gateway as server, for the hosts (after
    /// [`TestNet::expose_controller`]).
    pub fn host_kubeconfig(&self, ctrl: &TestController, kubeconfig: &Path) -> Result<PathBuf> {
        let port = ctrl.port;
        let text = std::fs::read_to_string(kubeconfig)?;
        let text = text.replace(
            &format!("127.0.0.1:{port}"),
            &format!("{}:{port}", self.gateway),
        );
        let file = kubeconfig
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("kubeconfig");
        let path = ctrl.data_dir().join(format!("{file}-{}", self.tag));
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// The node name of host `i`'s kubelet (unique per test).
    pub fn node_name(&self, i: usize) -> String {
        format!("node-{}-{i}", self.tag)
    }

    /// A kubelet in host `i`'s namespace with CNI networking (its own CNI config directory
    /// and the node name [`TestNet::node_name`]).
    pub fn start_kubelet(&self, kubeconfig: &Path, i: usize) -> Result<TestKubelet> {
        self.start_kubelet_with(kubeconfig, i, &[])
    }

    /// As [`TestNet::start_kubelet`] with extra networking flags.
    pub fn start_kubelet_with(
        &self,
        kubeconfig: &Path,
        i: usize,
        extra: &[&str],
    ) -> Result<TestKubelet> {
        let host = &self.hosts[i];
        let conf_dir = std::env::temp_dir().join(format!("bramble-cni-{}-{i}", self.tag));
        let _ = std::fs::remove_dir_all(&conf_dir);
        let mut network = vec!["--pod-network".to_string(), "cni".into()];
        if !extra.contains(&"--cni-conf-dir") {
            network.extend(["--cni-conf-dir".into(), conf_dir.display().to_string()]);
        }
        network.extend(extra.iter().map(|s| s.to_string()));
        TestKubelet::start_in(
            kubeconfig,
            &self.node_name(i),
            host.wrapper(),
            &host.ip,
            &network,
        )
    }
}

fn pipe(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    copy(a, b2);
    copy(b, a2);
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // The forwarder threads stay blocked in accept on an address that is gone.
        self.forwarders.clear();
        for (i, h) in self.hosts.iter().enumerate() {
            let _ = std::fs::remove_dir_all(
                std::env::temp_dir().join(format!("bramble-cni-{}-{i}", self.tag)),
            );
            let _ = sh("ip", &["link", "del", &h.host_veth]);
            let _ = sh("ip", &["netns", "del", &h.netns]);
        }
        let _ = sh("ip", &["link", "del", &self.bridge]);
    }
}

/// Polls `f` until it returns `Some`, or fails after `limit` with `what` and the last error.
pub fn poll<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{what} not reached after {limit:?}; last error: {last}")
}
