//! Routes computed from Node objects and programmed over rtnetlink in network namespaces
//! these tests create (the test thread moves into its namespace, so the netlink socket and
//! the `ip`/`nft` commands checking the result see only it); stale routes are pruned, a
//! moved node's route follows it, other routes are left alone; the masquerade table is
//! installed.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;

use bramble_routes::{desired_routes, enable_forwarding, PodRoute, RouteTable};
use k8s_openapi::api::core::v1::Node;
use serde_json::json;

fn node(name: &str, ip: &str, cidr: &str) -> Arc<Node> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}
        }))
        .unwrap(),
    )
}

/// A network namespace holding a veth on 192.0.2.1/24, entered by this thread; deleted on drop.
struct Netns(String);

impl Netns {
    fn enter(tag: &str) -> anyhow::Result<Self> {
        let name = format!("brt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        anyhow::ensure!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()?
            .success());
        let ns = Netns(name);
        let f = std::fs::File::open(format!("/run/netns/{}", ns.0))?;
        rustix::thread::move_into_link_name_space(
            f.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        anyhow::ensure!(sh(
            "ip link add lan0 type veth peer name lan1 && ip addr add 192.0.2.1/24 dev lan0 \
             && ip link set lan1 up && ip link set lan0 up"
        ));
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn sh(s: &str) -> bool {
    Command::new("sh")
        .args(["-ec", s])
        .status()
        .unwrap()
        .success()
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tokio runtime on this thread (its netlink socket opens in the thread's namespace).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn route(dst: [u8; 4], len: u8, via: [u8; 4]) -> PodRoute {
    PodRoute {
        dst: Ipv4Addr::from(dst),
        prefix_len: len,
        via: Ipv4Addr::from(via),
    }
}

#[test]
fn routes_to_other_nodes_pod_cidrs_are_installed_and_pruned() -> anyhow::Result<()> {
    let _ns = Netns::enter("prune")?;
    let rt = runtime();
    let table = rt.block_on(async { RouteTable::connect() })?;

    let nodes = vec![
        node("a", "192.0.2.1", "10.42.0.0/24"),
        node("b", "192.0.2.2", "10.42.1.0/24"),
        node("c", "192.0.2.3", "10.42.2.0/24"),
    ];
    let routes = desired_routes(&nodes, "a");
    assert_eq!(routes.len(), 2);
    rt.block_on(table.sync(&routes))?;
    enable_forwarding()?;
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?.trim(),
        "1"
    );
    assert_eq!(
        rt.block_on(table.installed())?,
        vec![
            route([10, 42, 1, 0], 24, [192, 0, 2, 2]),
            route([10, 42, 2, 0], 24, [192, 0, 2, 3])
        ]
    );
    // The kernel's own view, through iproute2: marked with proto 193, used for lookups.
    let shown = ip(&["-4", "route", "show", "proto", "193"]);
    assert!(
        shown.contains("10.42.1.0/24 via 192.0.2.2 dev lan0")
            && shown.contains("10.42.2.0/24 via 192.0.2.3 dev lan0"),
        "{shown}"
    );
    assert!(ip(&["route", "get", "10.42.2.7"]).contains("via 192.0.2.3"));

    // Node c leaves: its route goes, b's stays; a route someone else added stays too.
    assert!(sh("ip route add 10.99.0.0/24 via 192.0.2.9"));
    rt.block_on(table.sync(&desired_routes(&nodes[..2], "a")))?;
    assert_eq!(
        rt.block_on(table.installed())?,
        vec![route([10, 42, 1, 0], 24, [192, 0, 2, 2])]
    );
    assert!(ip(&["route"]).contains("10.99.0.0/24 via 192.0.2.9"));

    // Traffic leaving the cluster CIDR is masqueraded, in the routes' own nftables table.
    bramble_routes::masq::install_masquerade("10.42.0.0/16")?;
    let table = Command::new("nft")
        .args(["list", "table", "ip", bramble_routes::masq::MASQ_TABLE])
        .output()?;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16")
            && table.contains("masquerade"),
        "{table}"
    );
    Ok(())
}

#[test]
fn a_node_that_moves_takes_its_route_along_and_a_lone_node_keeps_none() -> anyhow::Result<()> {
    let _ns = Netns::enter("move")?;
    let rt = runtime();
    let table = rt.block_on(async { RouteTable::connect() })?;
    // A route of the same destination put there by hand (not Bramble's) is replaced, as
    // `ip route replace` replaced it: the pod CIDR belongs to the cluster.
    assert!(sh("ip route add 10.42.1.0/24 via 192.0.2.50"));

    let mut nodes = vec![
        node("a", "192.0.2.1", "10.42.0.0/24"),
        node("b", "192.0.2.2", "10.42.1.0/24"),
    ];
    rt.block_on(table.sync(&desired_routes(&nodes, "a")))?;
    assert_eq!(
        ip(&["-4", "route", "show", "10.42.1.0/24"]).trim(),
        "10.42.1.0/24 via 192.0.2.2 dev lan0 proto 193"
    );

    // b comes back with another address: the same destination, a new gateway, one route.
    nodes[1] = node("b", "192.0.2.22", "10.42.1.0/24");
    rt.block_on(table.sync(&desired_routes(&nodes, "a")))?;
    assert_eq!(
        rt.block_on(table.installed())?,
        vec![route([10, 42, 1, 0], 24, [192, 0, 2, 22])]
    );
    assert!(ip(&["route", "get", "10.42.1.9"]).contains("via 192.0.2.22"));

    // Syncing the same set again changes nothing and does not fail.
    rt.block_on(table.sync(&desired_routes(&nodes, "a")))?;
    assert_eq!(rt.block_on(table.installed())?.len(), 1);

    // Alone in the cluster: no Bramble route is left; the connected route stays.
    rt.block_on(table.sync(&desired_routes(&nodes[..1], "a")))?;
    assert!(rt.block_on(table.installed())?.is_empty());
    assert_eq!(ip(&["-4", "route", "show", "proto", "193"]).trim(), "");
    assert!(ip(&["route"]).contains("192.0.2.0/24 dev lan0"));
    Ok(())
}
