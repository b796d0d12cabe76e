//! What every request handler shares.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bramble_api::registry::Registry;
use bramble_store::Store;
use tokio::sync::Mutex;

/// Settings of the API server that handlers read.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Address the API is reachable at, advertised in the `kubernetes` Service endpoints.
    pub advertise_address: IpAddr,
    pub port: u16,
    /// Service CIDR for ClusterIP allocation, as (network, prefix length).
    pub service_cidr: (std::net::Ipv4Addr, u8),
    /// NodePort range, inclusive.
    pub node_port_range: (u16, u16),
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Longest a watch stays open when the client sets no `timeoutSeconds`.
    pub max_watch_timeout: Duration,
    /// Longest validity of certificates signed for CSRs (upstream
    /// `--cluster-signing-duration`, one year).
    pub cluster_signing_duration: Duration,
    /// `--authorization-mode=AlwaysAllow`: every authenticated request is allowed (for
    /// measuring authorization; never on a real cluster).
    pub always_allow: bool,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            advertise_address: IpAddr::from([127, 0, 0, 1]),
            port: 6443,
            service_cidr: (std::net::Ipv4Addr::new(10, 43, 0, 0), 16),
            node_port_range: (30000, 32767),
            bookmark_interval: Duration::from_secs(60),
            max_watch_timeout: Duration::from_secs(1800),
            cluster_signing_duration: Duration::from_secs(365 * 24 * 3600),
            always_allow: false,
        }
    }
}

/// Shared by every request.
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub settings: ApiSettings,
    /// Serialises ClusterIP and NodePort allocation (one controller; HA brings a store lock).
    pub service_allocation: Mutex<()>,
    /// OpenAPI documents, generated on first request and kept as bytes.
    pub openapi: bramble_api::openapi::OpenApiCache,
    /// TLS client configuration for the hop to kubelets (streaming subresources).
    pub kubelet_client: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
    /// The audit log, when it is on.
    pub audit: std::sync::OnceLock<crate::audit::AuditLog>,
}

impl ApiState {
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>, settings: ApiSettings) -> Arc<Self> {
        Arc::new(ApiState {
            store,
            registry,
            settings,
            service_allocation: Mutex::new(()),
            openapi: bramble_api::openapi::OpenApiCache::new(),
            kubelet_client: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
        })
    }

    pub fn api_endpoint(&self) -> SocketAddr {
        SocketAddr::new(self.settings.advertise_address, self.settings.port)
    }
}
