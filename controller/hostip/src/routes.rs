//! Default routes from the kernel's route tables (`/proc/net/route`, `/proc/net/ipv6_route`).

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of `ip`.
    pub fn of(ip: std::net::IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// A default route: the interface it leaves through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    pub interface: String,
    pub family: Family,
    pub metric: u32,
}

/// `RTF_UP`: the route is usable.
const RTF_UP: u32 = 0x0001;
/// `RTF_REJECT`: an unreachable/prohibit route (the kernel lists `default unreachable` on lo).
const RTF_REJECT: u32 = 0x0200;

fn hex(field: &str) -> Option<u32> {
    u32::from_str_radix(field, 16).ok()
}

/// The default routes of a `/proc/net/route` text (`Iface Destination Gateway Flags RefCnt
/// Use Metric Mask ...`, addresses in host byte order), lowest metric first, file order
/// among equals. Malformed lines are skipped.
pub fn ipv4_default_routes(text: &str) -> Vec<DefaultRoute> {
    let mut routes: Vec<DefaultRoute> = text
        .lines()
        .filter(|l| !l.starts_with("Iface"))
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let (dest, flags, metric, mask) =
                (hex(f[1])?, hex(f[3])?, f[6].parse().ok()?, hex(f[7])?);
            let default = dest == 0 && mask == 0 && flags & RTF_UP != 0 && flags & RTF_REJECT == 0;
            default.then(|| DefaultRoute {
                interface: f[0].to_string(),
                family: Family::V4,
                metric,
            })
        })
        .collect();
    routes.sort_by_key(|r| r.metric);
    routes
}

/// The default routes (`::/0`) of a `/proc/net/ipv6_route` text (`dest dest_len src src_len
/// next_hop metric refcnt use flags iface`, hex), lowest metric first. Routes on `lo` (the
/// kernel's `default unreachable` entries) are skipped, as upstream does.
pub fn ipv6_default_routes(text: &str) -> Vec<DefaultRoute> {
    let mut routes: Vec<DefaultRoute> = text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[0].len() != 32 {
                return None;
            }
            let (metric, flags) = (hex(f[5])?, hex(f[8])?);
            let default = f[0].bytes().all(|b| b == b'0')
                && hex(f[1])? == 0
                && f[9] != "lo"
                && flags & RTF_UP != 0
                && flags & RTF_REJECT == 0;
            default.then(|| DefaultRoute {
                interface: f[9].to_string(),
                family: Family::V6,
                metric,
            })
        })
        .collect();
    routes.sort_by_key(|r| r.metric);
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A board with wired and wireless uplinks (the wireless one with a worse metric), a
    /// docker bridge and a link route, as `/proc/net/route` prints them.
    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
";

    #[test]
    fn ipv4_defaults_by_metric() {
        let routes = ipv4_default_routes(ROUTE);
        let names: Vec<&str> = routes.iter().map(|r| r.interface.as_str()).collect();
        assert_eq!(names, ["eth0", "wlan0"]);
        assert!(routes.iter().all(|r| r.family == Family::V4));
        assert_eq!(routes[0].metric, 100);
    }

    #[test]
    fn ipv4_without_default_route() {
        let only_link = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                         eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        assert!(ipv4_default_routes(only_link).is_empty());
        assert!(ipv4_default_routes("").is_empty());
        assert!(ipv4_default_routes("garbage line\n").is_empty());
    }

    #[test]
    fn ipv6_defaults_skip_lo_and_unreachable() {
        let text = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200     eth1
";
        let routes = ipv6_default_routes(text);
        assert_eq!(
            routes,
            [DefaultRoute {
                interface: "eth0".into(),
                family: Family::V6,
                metric: 0x400
            }]
        );
    }
}
