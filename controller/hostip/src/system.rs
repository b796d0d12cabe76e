//! What the choice reads from the host, behind a trait: the default routes and the
//! interfaces' addresses.

use std::net::IpAddr;
use std::path::Path;

use nix::net::if_::InterfaceFlags;

use crate::error::HostIpError;
use crate::routes::{ipv4_default_routes, ipv6_default_routes, DefaultRoute};

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    pub interface: String,
    /// The interface is administratively up (`IFF_UP`).
    pub up: bool,
    pub ip: IpAddr,
}

/// The host's routes and addresses.
pub trait HostNetwork {
    /// Default routes, IPv4 ones first, each family lowest metric first.
    fn default_routes(&self) -> Result<Vec<DefaultRoute>, HostIpError>;
    /// Every IPv4 and IPv6 address of every interface.
    fn addresses(&self) -> Result<Vec<InterfaceAddr>, HostIpError>;
}

/// This host, seen from the calling thread's network namespace: `/proc/net/route`,
/// `/proc/net/ipv6_route` and `getifaddrs(3)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

pub const IPV4_ROUTES: &str = "/proc/net/route";
pub const IPV6_ROUTES: &str = "/proc/net/ipv6_route";

fn read_table(path: &str) -> Result<Option<String>, HostIpError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        // No IPv6 in this kernel (or no /proc): no routes of that family.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HostIpError::ReadRoutes {
            path: Path::new(path).to_path_buf(),
            source,
        }),
    }
}

impl HostNetwork for System {
    fn default_routes(&self) -> Result<Vec<DefaultRoute>, HostIpError> {
        let mut routes = read_table(IPV4_ROUTES)?
            .map(|t| ipv4_default_routes(&t))
            .unwrap_or_default();
        routes.extend(
            read_table(IPV6_ROUTES)?
                .map(|t| ipv6_default_routes(&t))
                .unwrap_or_default(),
        );
        Ok(routes)
    }

    fn addresses(&self) -> Result<Vec<InterfaceAddr>, HostIpError> {
        Ok(nix::ifaddrs::getifaddrs()?
            .filter_map(|a| {
                let sa = a.address?;
                let ip = match (sa.as_sockaddr_in(), sa.as_sockaddr_in6()) {
                    (Some(v4), _) => IpAddr::V4(v4.ip()),
                    (_, Some(v6)) => IpAddr::V6(v6.ip()),
                    _ => return None,
                };
                Some(InterfaceAddr {
                    up: a.flags.contains(InterfaceFlags::IFF_UP),
                    interface: a.interface_name,
                    ip,
                })
            })
            .collect())
    }
}
