//! The host's routable IP address, chosen as upstream's `k8s.io/apimachinery/pkg/util/net`
//! does (`ChooseHostInterface`, `ResolveBindAddress`): the first global unicast address of
//! the interface holding a default route, IPv4 routes first.
//!
//! Shared by the controller (the advertise address of a wildcard listener: the `kubernetes`
//! Service endpoint and the cluster DNS) and the kubelet (the node's InternalIP). The route
//! tables are read from `/proc/net/route` and `/proc/net/ipv6_route`, the addresses from
//! `getifaddrs(3)`, both behind [`HostNetwork`] so the choice is tested on fixtures.

pub mod choose;
pub mod error;
pub mod routes;
pub mod system;

pub use choose::{choose_host_ip, host_ip_or_loopback, is_global_unicast, resolve_bind_address};
pub use error::HostIpError;
pub use routes::{ipv4_default_routes, ipv6_default_routes, DefaultRoute, Family};
pub use system::{HostNetwork, InterfaceAddr, System};
