//! Errors of the host address choice.

use std::path::PathBuf;

/// Why no host address could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum HostIpError {
    /// A route table could not be read.
    #[error("reading {path}: {source}")]
    ReadRoutes {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The interface addresses could not be listed.
    #[error("listing interface addresses: {0}")]
    Interfaces(#[from] nix::Error),
    /// Neither route table has a default route.
    #[error("no default routes found in /proc/net/route or /proc/net/ipv6_route")]
    NoDefaultRoute,
    /// Default routes exist, but their interfaces are down or hold no global unicast address.
    #[error("no global unicast address on the default-route interfaces {interfaces:?}")]
    NoAddress { interfaces: Vec<String> },
}
