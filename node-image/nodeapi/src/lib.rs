//! The node API: how a board is managed without SSH (the way Talos does it), served by
//! `bramble init` over mutual TLS with the cluster CA (a cluster admin's client certificate,
//! e.g. the admin kubeconfig's; [`cluster_tls`]) or, before the node knows its cluster, over
//! HTTPS with the node's own certificate and a bearer token from the node config, and the
//! client `bramble node status|logs|reboot|poweroff|upgrade` uses.
//!
//! The server is plain threads (init has no async runtime): one per connection, one request per
//! connection. Token clients pin the node certificate's SHA-256 fingerprint, which init prints
//! on the console and writes next to the certificate.

pub mod client;
pub mod cluster_tls;
mod error;
pub mod http;
pub mod image;
pub mod server;
pub mod tls;
pub mod upgrade;

pub use client::NodeClient;
pub use error::NodeApiError;
pub use server::{spawn, LogEntry, NodeHandler, PowerRequest, ServerSettings};
pub use upgrade::{BundlePart, UpgradeManifest};

/// Default port (Talos uses 50000 for its node API too).
pub const DEFAULT_PORT: u16 = 50000;
