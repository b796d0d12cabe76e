//! Routes computed from Node objects and installed with the real `ip` in a network
//! namespace this test creates; stale routes are pruned; the masquerade table is installed.

use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;

use bramble_routes::{desired_routes, enable_forwarding, installed_routes, sync_routes};
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

#[test]
fn routes_to_other_nodes_pod_cidrs_are_installed_and_pruned() -> anyhow::Result<()> {
    let name = format!("brt-{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "del", &name]).output();
    assert!(Command::new("ip")
        .args(["netns", "add", &name])
        .status()?
        .success());
    let guard = scopeguard(name.clone());
    let f = std::fs::File::open(format!("/run/netns/{name}"))?;
    rustix::thread::move_into_link_name_space(
        f.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    let sh = |s: &str| {
        Command::new("sh")
            .args(["-ec", s])
            .status()
            .unwrap()
            .success()
    };
    assert!(sh("ip link add lan0 type veth peer name lan1 && ip addr add 192.0.2.1/24 dev lan0 && ip link set lan1 up && ip link set lan0 up"));

    let nodes = vec![
        node("a", "192.0.2.1", "10.42.0.0/24"),
        node("b", "192.0.2.2", "10.42.1.0/24"),
        node("c", "192.0.2.3", "10.42.2.0/24"),
    ];
    let routes = desired_routes(&nodes, "a");
    assert_eq!(routes.len(), 2);
    sync_routes(&routes)?;
    enable_forwarding()?;
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?.trim(),
        "1"
    );
    assert_eq!(installed_routes()?, vec!["10.42.1.0/24", "10.42.2.0/24"]);
    let shown = Command::new("ip")
        .args(["route", "get", "10.42.2.7"])
        .output()?;
    assert!(String::from_utf8_lossy(&shown.stdout).contains("via 192.0.2.3"));

    // Node c leaves: its route goes, b's stays; a route someone else added stays too.
    assert!(sh("ip route add 10.99.0.0/24 via 192.0.2.9"));
    sync_routes(&desired_routes(&nodes[..2], "a"))?;
    assert_eq!(installed_routes()?, vec!["10.42.1.0/24"]);
    let all = Command::new("ip").args(["route"]).output()?;
    assert!(String::from_utf8_lossy(&all.stdout).contains("10.99.0.0/24"));

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
    drop(guard);
    Ok(())
}

struct Guard(String);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}
fn scopeguard(name: String) -> Guard {
    Guard(name)
}
