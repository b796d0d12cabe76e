//! The controller process: store, PKI, default objects, background loops and the listener.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::info;

use bramble_api::registry::Registry;
use bramble_pki::{ClusterPki, PkiOptions, TokenAuthenticator, UserInfo};
use bramble_store::lmdb::{LmdbStore, StoreConfig};

use crate::auth::Authenticator;
use crate::errors::ServerError;
use crate::state::{ApiSettings, ApiState};

/// Settings of `bramble controller`.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Holds `db/` (the LMDB store) and `pki/` (CA, certificates, admin token).
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Address advertised in the `kubernetes` Service endpoints (and served by the cluster
    /// DNS); when unset, the listen address, or for a wildcard listen address the host's
    /// default-route interface address (see [`bramble_hostip::resolve_bind_address`]).
    pub advertise_address: Option<IpAddr>,
    /// Serve plain HTTP instead of TLS (tokens still required).
    pub plain_http: bool,
    /// Extra names and addresses for the serving certificate.
    pub tls_sans: Vec<String>,
    /// Events kept for watch resume.
    pub history_limit: u64,
    pub bookmark_interval: Duration,
    /// Longest validity of certificates signed for CSRs (`--cluster-signing-duration`).
    pub cluster_signing_duration: Duration,
    /// The audit log (off when `None`).
    pub audit: Option<crate::audit::AuditConfig>,
    /// Allow every authenticated request (`--authorization-mode=AlwaysAllow`).
    pub always_allow: bool,
}

impl ControllerConfig {
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        ControllerConfig {
            data_dir: data_dir.into(),
            listen,
            advertise_address: None,
            plain_http: false,
            tls_sans: Vec::new(),
            history_limit: StoreConfig::default().history_limit,
            bookmark_interval: Duration::from_secs(60),
            cluster_signing_duration: ApiSettings::default().cluster_signing_duration,
            audit: None,
            always_allow: false,
        }
    }
}

/// A started controller, bound to its address, not yet serving.
pub struct Controller {
    pub state: Arc<ApiState>,
    pub pki: ClusterPki,
    listener: TcpListener,
    authn: Arc<Authenticator>,
    tls: Option<Arc<rustls::ServerConfig>>,
    store: Arc<LmdbStore>,
}

impl Controller {
    /// Opens the store, loads or creates the PKI, creates the default objects and binds.
    pub async fn start(cfg: &ControllerConfig) -> Result<Controller, ServerError> {
        let t0 = std::time::Instant::now();
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| ServerError::Io {
            path: cfg.data_dir.clone(),
            source,
        })?;
        let store_config = StoreConfig {
            history_limit: cfg.history_limit,
            // LMDB's lock file, rewritten on every transaction, off the SD card.
            lock_dir: Some(bramble_store::lmdb::RAM_LOCK_DIR.into()),
            ..StoreConfig::default()
        };
        let store = LmdbStore::open(&cfg.data_dir.join("db"), store_config)?;
        let store_ms = t0.elapsed().as_millis();
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: cfg.listen,
            source,
        })?;
        // As kube-apiserver: the listen address, or for a wildcard one the address of the
        // interface holding the default route (127.0.0.1 with a warning when there is none).
        let advertise = cfg.advertise_address.unwrap_or_else(|| {
            bramble_hostip::host_ip_or_loopback(
                &bramble_hostip::System,
                local.ip(),
                "advertise address",
            )
        });
        info!(%advertise, "advertise address");
        let mut sans = cfg.tls_sans.clone();
        sans.push(advertise.to_string());
        let pki = ClusterPki::load_or_create(
            &cfg.data_dir.join("pki"),
            &PkiOptions::new("bramble", &sans),
        )?;
        let pki_ms = t0.elapsed().as_millis();
        let tls = if cfg.plain_http {
            None
        } else {
            Some(pki.server_tls_config()?)
        };
        let api_store = crate::auth_setup::encrypted_store(&cfg.data_dir, store.clone())?;
        let authn = Arc::new(crate::auth_setup::authenticator(&pki, api_store.clone())?);
        let settings = ApiSettings {
            advertise_address: advertise,
            port: local.port(),
            bookmark_interval: cfg.bookmark_interval,
            cluster_signing_duration: cfg.cluster_signing_duration,
            always_allow: cfg.always_allow,
            ..ApiSettings::default()
        };
        let registry = Arc::new(Registry::builtin());
        crate::metrics::register(&registry);
        let state = ApiState::new(api_store, registry, settings);
        let _ = state
            .kubelet_client
            .set(crate::streaming::kubelet_tls::client_config(&pki)?);
        if let Some(audit) = &cfg.audit {
            let log = crate::audit::AuditLog::start(audit.clone())?;
            let _ = state.audit.set(log);
        }
        let setup_ms = t0.elapsed().as_millis();
        crate::bootstrap::ensure_defaults(&state).await?;
        crate::auth_setup::ensure_defaults(&state, &pki).await?;
        // Where a board's boot goes (issue 9): milliseconds since start at each step's end.
        info!(
            store_ms,
            pki_ms,
            setup_ms,
            defaults_ms = t0.elapsed().as_millis(),
            "controller started"
        );
        Ok(Controller {
            state,
            pki,
            listener,
            authn,
            tls,
            store,
        })
    }

    /// The address advertised for this controller (the `kubernetes` Service endpoint).
    pub fn advertise_address(&self) -> IpAddr {
        self.state.settings.advertise_address
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// `https://127.0.0.1:6443` (or `http://` with plain HTTP).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let addr = self.local_addr();
        let host = if addr.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            addr.ip()
        };
        format!("{scheme}://{}", SocketAddr::new(host, addr.port()))
    }

    /// Writes (merging) an admin kubeconfig for this controller.
    pub fn write_admin_kubeconfig(&self, path: &Path) -> Result<(), ServerError> {
        self.pki
            .write_admin_kubeconfig(path, &self.url(), "bramble")?;
        Ok(())
    }

    /// A token authenticator for extra static tokens (tests, bench).
    pub fn tokens(&self) -> TokenAuthenticator {
        self.pki.token_authenticator()
    }

    /// A client for components in this process (controllers, scheduler) acting as `user` in
    /// `system:masters`; see [`crate::inprocess`].
    pub fn in_process_client(&self, user: &str) -> kube::Client {
        self.in_process_client_as(user.to_string(), "system:masters")
    }

    /// A client for the kubelet in this process (`bramble up`): `system:node:<node>` in
    /// `system:nodes`, so the Node authorizer and NodeRestriction hold it to its node as they
    /// hold a kubelet on another machine.
    pub fn in_process_node_client(&self, node: &str) -> kube::Client {
        self.in_process_client_as(bramble_pki::node_user_name(node), bramble_pki::NODES_GROUP)
    }

    fn in_process_client_as(&self, name: String, group: &str) -> kube::Client {
        crate::inprocess::client(
            self.state.clone(),
            self.authn.clone(),
            UserInfo {
                name,
                uid: String::new(),
                groups: vec![group.into(), "system:authenticated".into()],
            },
        )
    }

    pub fn store(&self) -> &Arc<LmdbStore> {
        &self.store
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        info!(url = %self.url(), "API server listening");
        tokio::spawn(crate::namespaces::run(self.state.clone()));
        crate::memory::track_store_map(&self.store);
        tokio::spawn(crate::quota_controller::run(self.state.clone()));
        tokio::spawn(crate::crds::run(self.state.clone()));
        crate::auth_setup::spawn_loops(&self.state, &self.authn, &self.pki);
        crate::server::serve(self.state, self.authn, self.listener, self.tls, shutdown).await;
    }
}
