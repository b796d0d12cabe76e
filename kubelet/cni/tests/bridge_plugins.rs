//! Real reference plugins (bridge, host-local, portmap, loopback from Debian's
//! containernetworking-plugins) in network namespaces this test creates: a "node" namespace
//! holding the bridge, and pod namespaces attached to it.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use bramble_cni::{CniError, CniNetwork, CniNetworkConfig, DefaultNetwork, PodRef, PortMapping};

/// A named network namespace (`ip netns add`), deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> anyhow::Result<Self> {
        let name = format!("bcni-{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]))?;
        run(Command::new("ip").args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"]))?;
        Ok(Netns(name))
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
    /// Moves the calling thread (and the processes it starts) into this namespace.
    fn enter(&self) -> anyhow::Result<()> {
        let f = std::fs::File::open(self.path())?;
        rustix::thread::move_into_link_name_space(
            f.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        Ok(())
    }
    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

struct Setup {
    _dir: tempfile::TempDir,
    conf_dir: PathBuf,
    data_dir: PathBuf,
    ipam_dir: PathBuf,
    node: Netns,
}

fn setup(cidr: &str, bridge: &str, tag: &str) -> anyhow::Result<(Setup, CniNetwork)> {
    let dir = tempfile::tempdir()?;
    let node = Netns::new(&format!("{tag}-node"))?;
    node.enter()?;
    let s = Setup {
        conf_dir: dir.path().join("net.d"),
        data_dir: dir.path().join("cni"),
        ipam_dir: dir.path().join("ipam"),
        _dir: dir,
        node,
    };
    let net = network(&s, cidr, bridge);
    Ok((s, net))
}

fn network(s: &Setup, cidr: &str, bridge: &str) -> CniNetwork {
    let mut cfg = CniNetworkConfig::new(&s.data_dir);
    cfg.conf_dir = s.conf_dir.clone();
    let net = CniNetwork::new(cfg);
    let mut default = DefaultNetwork::new(vec![cidr.into()]);
    default.bridge = bridge.into();
    default.ipam_data_dir = Some(s.ipam_dir.clone());
    net.set_default_network(default);
    net
}

fn pod(name: &str, ns: &Netns) -> PodRef {
    PodRef {
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        sandbox_id: format!("sandbox{name}{}", std::process::id()),
        netns: ns.path(),
    }
}

fn allocated_ips(ipam_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(ipam_dir.join("bramble"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.parse::<IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn two_pods_ping_over_the_bridge_hostport_and_del_after_restart() -> anyhow::Result<()> {
    let (s, net) = setup("10.98.0.0/24", "bcnit0", "a")?;
    let (pa, pb) = (Netns::new("pa")?, Netns::new("pb")?);
    let (a, b) = (pod("a", &pa), pod("b", &pb));

    let ra = net.add(&a, &[])?;
    let ports = [PortMapping {
        host_port: 18080,
        container_port: 8080,
        protocol: "tcp".into(),
        host_ip: String::new(),
    }];
    let rb = net.add(&b, &ports)?;
    let ip_a = ra.pod_ips()[0];
    let ip_b = rb.pod_ips()[0];
    assert_ne!(ip_a, ip_b);
    for ip in [ip_a, ip_b] {
        assert!(
            ip.to_string().starts_with("10.98.0."),
            "{ip} not in the pod CIDR"
        );
    }
    assert!(s.conf_dir.join("10-bramble.conflist").exists());
    assert_eq!(allocated_ips(&s.ipam_dir).len(), 2);
    net.check(&a)?;

    // Pod to pod over the bridge.
    let ping = pa.exec(&["busybox", "ping", "-c", "1", "-W", "3", &ip_b.to_string()]);
    assert!(ping.status.success(), "ping a->b: {ping:?}");
    // lo came up through the loopback plugin.
    let lo = pa.exec(&["ip", "-o", "addr", "show", "lo"]);
    assert!(String::from_utf8_lossy(&lo.stdout).contains("127.0.0.1"));

    // hostPort: a listener in pod b, reached from the node at the bridge's address:18080.
    let (tx, rx) = std::sync::mpsc::channel();
    let pb_path = pb.path();
    let server = std::thread::spawn(move || -> anyhow::Result<()> {
        let f = std::fs::File::open(&pb_path)?;
        rustix::thread::move_into_link_name_space(
            f.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        let l = TcpListener::bind("0.0.0.0:8080")?;
        tx.send(())?;
        let (mut c, peer) = l.accept()?;
        c.write_all(format!("hello from b to {}", peer.ip()).as_bytes())?;
        Ok(())
    });
    rx.recv_timeout(Duration::from_secs(5))?;
    let gateway = ra.ips[0].gateway.clone().context("bridge gateway")?;
    let mut c =
        TcpStream::connect_timeout(&format!("{gateway}:18080").parse()?, Duration::from_secs(5))
            .context("connecting to the hostPort")?;
    let mut answer = String::new();
    c.read_to_string(&mut answer)?;
    assert!(answer.starts_with("hello from b"), "{answer}");
    server.join().unwrap()?;
    let nat = s.node.exec(&["iptables", "-t", "nat", "-S"]);
    assert!(String::from_utf8_lossy(&nat.stdout).contains("18080"));

    // A "restarted kubelet": a new CniNetwork over the same data dir, with the conf dir
    // emptied, still deletes both pods from the cached configuration and results.
    std::fs::remove_dir_all(&s.conf_dir)?;
    let restarted = network(&s, "10.98.0.0/24", "bcnit0");
    restarted.del(&a)?;
    restarted.del(&b)?;
    restarted.del(&b)?; // twice is fine
    assert!(allocated_ips(&s.ipam_dir).is_empty(), "IPs leaked");
    assert!(!pb.exec(&["ip", "link", "show", "eth0"]).status.success());
    let nat = s.node.exec(&["iptables", "-t", "nat", "-S"]);
    assert!(!String::from_utf8_lossy(&nat.stdout).contains("18080"));
    assert!(restarted.cached_result(&b.sandbox_id).is_none());
    Ok(())
}

#[test]
fn failing_plugin_reports_its_message_and_leaks_no_ip() -> anyhow::Result<()> {
    let (s, _net) = setup("10.97.0.0/24", "bcnit1", "f")?;
    let bin = s.data_dir.parent().unwrap().join("bin");
    std::fs::create_dir_all(&bin)?;
    let fail = bin.join("bramble-fail");
    std::fs::write(
        &fail,
        "#!/bin/sh\ncat >/dev/null\necho '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"quota exceeded\",\"details\":\"no more ports\"}'\nexit 1\n",
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fail, std::fs::Permissions::from_mode(0o755))?;
    std::fs::create_dir_all(&s.conf_dir)?;
    std::fs::write(
        s.conf_dir.join("10-fail.conflist"),
        serde_json_text(&s.ipam_dir),
    )?;
    let mut cfg = CniNetworkConfig::new(&s.data_dir);
    cfg.conf_dir = s.conf_dir.clone();
    cfg.bin_dirs = vec![bin.clone(), PathBuf::from("/usr/lib/cni")];
    let net = CniNetwork::new(cfg);
    let version = net.exec().version("bridge")?;
    assert!(
        version.supported_versions.contains(&"1.0.0".to_string()),
        "{version:?}"
    );

    let pns = Netns::new("fp")?;
    let p = pod("f", &pns);
    let err = net.add(&p, &[]).unwrap_err();
    match &err {
        CniError::Plugin {
            plugin,
            command,
            error,
        } => {
            assert_eq!(plugin, "bramble-fail");
            assert_eq!(command, "add");
            assert_eq!(error.code, 7);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("quota exceeded") && text.contains("no more ports"),
        "{text}"
    );
    assert!(
        allocated_ips(&s.ipam_dir).is_empty(),
        "IP leaked after a failed ADD"
    );
    assert!(net.cached_result(&p.sandbox_id).is_none());

    // A plugin type that exists nowhere is reported with the directories searched.
    let missing = net.exec().find("no-such-plugin").unwrap_err().to_string();
    assert!(missing.contains("no-such-plugin"), "{missing}");
    Ok(())
}

fn serde_json_text(ipam_dir: &Path) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"bramble","plugins":[
          {{"type":"bridge","bridge":"bcnit1","isGateway":true,
            "ipam":{{"type":"host-local","dataDir":"{}","ranges":[[{{"subnet":"10.97.0.0/24"}}]]}}}},
          {{"type":"bramble-fail"}}]}}"#,
        ipam_dir.display()
    )
}

#[test]
fn kubelet_seam_sets_up_and_tears_down_through_the_trait() -> anyhow::Result<()> {
    use bramble_kubelet::network::{NetworkError, PodNetwork, PodNetworkRequest};
    let (s, _) = setup("10.96.200.0/24", "bcnit2", "k")?;
    let mut cfg = CniNetworkConfig::new(&s.data_dir);
    cfg.conf_dir = s.conf_dir.clone();
    let cni = bramble_cni::CniPodNetwork::new(cfg);
    // Without a configuration or pod CIDR the network is not ready, as upstream reports it.
    assert!(matches!(cni.status(), Err(NetworkError::NotReady(_))));
    let mut default = DefaultNetwork::new(vec!["10.96.200.0/24".into()]);
    default.bridge = "bcnit2".into();
    default.ipam_data_dir = Some(s.ipam_dir.clone());
    cni.network().set_default_network(default);
    cni.status().map_err(|e| anyhow::anyhow!("{e}"))?;
    let pns = Netns::new("kp")?;
    let req = PodNetworkRequest {
        namespace: "default".into(),
        name: "k".into(),
        uid: "uid-k".into(),
        sandbox_id: format!("sandboxk{}", std::process::id()),
        netns_path: pns.path().into(),
    };
    let network: std::sync::Arc<dyn PodNetwork> = std::sync::Arc::new(cni);
    // The plugin calls run on tokio's blocking pool: its threads enter the node namespace
    // as they start, so nothing touches the host's own namespace.
    let node_path = s.node.path();
    let rt = tokio::runtime::Builder::new_current_thread()
        .on_thread_start(move || {
            let f = std::fs::File::open(&node_path).expect("node netns");
            rustix::thread::move_into_link_name_space(
                f.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("entering the node netns");
        })
        .build()?;
    let ips = rt.block_on(network.setup(&req));
    let ips = ips.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(ips.len(), 1);
    assert!(ips[0].to_string().starts_with("10.96.200."));
    rt.block_on(network.teardown(&req))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    rt.block_on(network.teardown(&req))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(allocated_ips(&s.ipam_dir).is_empty());
    Ok(())
}
