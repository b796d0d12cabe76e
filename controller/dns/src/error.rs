//! Errors of the cluster DNS.

use std::net::SocketAddr;

/// What can go wrong starting or feeding the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A listener could not be bound.
    #[error("binding DNS on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the kube-dns Service or its EndpointSlice failed.
    #[error("publishing the kube-dns Service: {0}")]
    Api(#[from] kube::Error),
}
