//! The choice itself, as upstream's `ChooseHostInterface` and `ResolveBindAddress`.

use std::net::{IpAddr, Ipv4Addr};

use crate::error::HostIpError;
use crate::routes::Family;
use crate::system::HostNetwork;

/// Go's `net.IP.IsGlobalUnicast`: not unspecified, loopback, multicast, link-local or the
/// IPv4 broadcast address.
pub fn is_global_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_multicast()
                || v4.is_link_local()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The first global unicast address of the first up interface holding a default route,
/// `prefer`'s routes first, then the other family's.
pub fn choose_host_ip(net: &dyn HostNetwork, prefer: Family) -> Result<IpAddr, HostIpError> {
    let routes = net.default_routes()?;
    if routes.is_empty() {
        return Err(HostIpError::NoDefaultRoute);
    }
    let addrs = net.addresses()?;
    let other = match prefer {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    };
    for family in [prefer, other] {
        for route in routes.iter().filter(|r| r.family == family) {
            let found = addrs.iter().find(|a| {
                a.interface == route.interface
                    && a.up
                    && Family::of(a.ip) == family
                    && is_global_unicast(a.ip)
            });
            if let Some(a) = found {
                tracing::debug!(interface = %route.interface, ip = %a.ip, "host address from the default route");
                return Ok(a.ip);
            }
        }
    }
    let mut interfaces: Vec<String> = routes.into_iter().map(|r| r.interface).collect();
    interfaces.sort();
    interfaces.dedup();
    Err(HostIpError::NoAddress { interfaces })
}

/// The address a daemon bound to `bind` is reached at: `bind` itself when it is a specific
/// address, else (the wildcard) the host's address of the same family first.
///
/// Upstream also replaces a loopback `bind`; Bramble keeps it, since a server listening on
/// loopback only is reachable at no other address.
pub fn resolve_bind_address(net: &dyn HostNetwork, bind: IpAddr) -> Result<IpAddr, HostIpError> {
    if !bind.is_unspecified() {
        return Ok(bind);
    }
    choose_host_ip(net, Family::of(bind))
}

/// [`resolve_bind_address`] of `bind` (the wildcard `0.0.0.0` for "any", IPv4 first), or
/// 127.0.0.1 with a warning naming `purpose` when the host has no usable default route (a network namespace with only lo, a board before
/// DHCP): everything keeps working on this machine, nothing reaches it from elsewhere.
pub fn host_ip_or_loopback(net: &dyn HostNetwork, bind: IpAddr, purpose: &str) -> IpAddr {
    match resolve_bind_address(net, bind) {
        Ok(ip) => ip,
        Err(e) => {
            let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
            tracing::warn!(error = %e, %ip, "{purpose}: no routable host address; using loopback");
            ip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{ipv4_default_routes, ipv6_default_routes, DefaultRoute};
    use crate::system::InterfaceAddr;

    /// A host described by route table texts and an address list.
    struct Fixture {
        route: &'static str,
        ipv6_route: &'static str,
        addrs: Vec<(&'static str, bool, &'static str)>,
    }

    impl HostNetwork for Fixture {
        fn default_routes(&self) -> Result<Vec<DefaultRoute>, HostIpError> {
            let mut r = ipv4_default_routes(self.route);
            r.extend(ipv6_default_routes(self.ipv6_route));
            Ok(r)
        }
        fn addresses(&self) -> Result<Vec<InterfaceAddr>, HostIpError> {
            Ok(self
                .addrs
                .iter()
                .map(|(i, up, ip)| InterfaceAddr {
                    interface: i.to_string(),
                    up: *up,
                    ip: ip.parse().unwrap(),
                })
                .collect())
        }
    }

    const HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
    const ETH0_DEFAULT: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
";
    const V6_DEFAULT: &str = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n";

    fn board() -> Vec<(&'static str, bool, &'static str)> {
        vec![
            ("lo", true, "127.0.0.1"),
            ("lo", true, "::1"),
            ("cni0", true, "10.42.0.1"),
            ("eth0", true, "fe80::fc:ff:fe00:1"),
            ("eth0", true, "fd00::2"),
            ("eth0", true, "169.254.3.3"),
            ("eth0", true, "192.0.2.2"),
        ]
    }

    #[test]
    fn ipv4_first_from_the_default_route_interface() {
        let host = Fixture {
            route: ETH0_DEFAULT,
            ipv6_route: V6_DEFAULT,
            addrs: board(),
        };
        assert_eq!(
            choose_host_ip(&host, Family::V4).unwrap(),
            "192.0.2.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            choose_host_ip(&host, Family::V6).unwrap(),
            "fd00::2".parse::<IpAddr>().unwrap()
        );
        // A wildcard bind resolves to the host address of its family; a specific one stays.
        let any4: IpAddr = "0.0.0.0".parse().unwrap();
        let any6: IpAddr = "::".parse().unwrap();
        assert_eq!(
            resolve_bind_address(&host, any4).unwrap().to_string(),
            "192.0.2.2"
        );
        assert_eq!(
            resolve_bind_address(&host, any6).unwrap().to_string(),
            "fd00::2"
        );
        for fixed in ["10.0.0.5", "127.0.0.1"] {
            let ip: IpAddr = fixed.parse().unwrap();
            assert_eq!(resolve_bind_address(&host, ip).unwrap(), ip);
        }
    }

    #[test]
    fn ipv6_only_host_and_down_interfaces() {
        // No IPv4 default route: the IPv6 one's interface is used.
        let host = Fixture {
            route: HEADER,
            ipv6_route: V6_DEFAULT,
            addrs: board(),
        };
        assert_eq!(
            choose_host_ip(&host, Family::V4).unwrap().to_string(),
            "fd00::2"
        );
        // The default route's interface is down: nothing to choose.
        let down = Fixture {
            route: ETH0_DEFAULT,
            ipv6_route: "",
            addrs: vec![("eth0", false, "192.0.2.2"), ("wlan0", true, "192.168.1.9")],
        };
        match choose_host_ip(&down, Family::V4) {
            Err(HostIpError::NoAddress { interfaces }) => assert_eq!(interfaces, ["eth0"]),
            other => panic!("expected NoAddress, got {other:?}"),
        }
    }

    #[test]
    fn no_default_route_falls_back_to_loopback() {
        let isolated = Fixture {
            route: HEADER,
            ipv6_route: "",
            addrs: vec![("lo", true, "127.0.0.1")],
        };
        assert!(matches!(
            choose_host_ip(&isolated, Family::V4),
            Err(HostIpError::NoDefaultRoute)
        ));
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(
            host_ip_or_loopback(&isolated, any, "test"),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
    }

    #[test]
    fn global_unicast() {
        for ip in ["192.0.2.2", "10.1.2.3", "fd00::2", "2001:db8::1"] {
            assert!(is_global_unicast(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "169.254.1.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(!is_global_unicast(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn this_host_yields_an_address() {
        // Whatever the machine's routes, the real reader answers without an I/O error.
        match choose_host_ip(&crate::System, Family::V4) {
            Ok(ip) => assert!(is_global_unicast(ip)),
            Err(e) => assert!(
                matches!(
                    e,
                    HostIpError::NoDefaultRoute | HostIpError::NoAddress { .. }
                ),
                "{e}"
            ),
        }
    }
}
