//! The data plane of one node: listeners first (a port in use is reported at once), then
//! watch caches of Ingresses and IngressClasses, and, once an Ingress is served, of Services,
//! EndpointSlices and TLS Secrets; every change rebuilds the routing and certificate tables
//! and swaps them in.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;

use bramble_netctl::cache::watch as cache;

use crate::backends::Cluster;
use crate::class::served;
use crate::error::IngressError;
use crate::proxy::Proxy;
use crate::routes::{by_age, RouteTable};
use crate::server::{self, IngressConfig};
use crate::tls::{self, CertCache, CertTable, SniResolver};

/// Serves Ingresses until the task is dropped; returns early only when a listener cannot be
/// opened or the default certificate cannot be made.
pub async fn run(client: Client, config: IngressConfig) -> Result<(), IngressError> {
    let default_cert = tls::default_certificate()?;
    let http = match config.http {
        Some(a) => Some(server::bind(a).await?),
        None => None,
    };
    let https = match config.https {
        Some(a) => Some(server::bind(a).await?),
        None => None,
    };
    let (routes_tx, routes_rx) = watch::channel(Arc::new(RouteTable::default()));
    let (certs_tx, certs_rx) = watch::channel(Arc::new(CertTable::empty(default_cert.clone())));
    let proxy = Arc::new(Proxy::new(routes_rx));
    if let Some(l) = http {
        tracing::info!(addr = ?l.local_addr().ok(), "ingress listening (HTTP)");
        tokio::spawn(server::serve_http(l, proxy.clone()));
    }
    if let Some(l) = https {
        tracing::info!(addr = ?l.local_addr().ok(), "ingress listening (HTTPS)");
        let acceptor = TlsAcceptor::from(tls::server_config(SniResolver::new(certs_rx)));
        tokio::spawn(server::serve_https(l, acceptor, proxy));
    }

    let notify = Arc::new(Notify::new());
    let all = watcher::Config::default;
    let ingresses = cache(Api::<Ingress>::all(client.clone()), all(), notify.clone());
    let classes = cache(
        Api::<IngressClass>::all(client.clone()),
        all(),
        notify.clone(),
    );
    let _ = ingresses.wait_until_ready().await;
    let _ = classes.wait_until_ready().await;
    let mut backing: Option<Backing> = None;
    let mut certs = CertCache::default();
    loop {
        let classes = classes.state();
        let mut ours: Vec<Arc<Ingress>> = ingresses
            .state()
            .into_iter()
            .filter(|i| served(i, &classes))
            .collect();
        by_age(&mut ours);
        if backing.is_none() && !ours.is_empty() {
            backing = Some(Backing::start(&client, &notify).await);
        }
        let (services, slices, secrets) = match &backing {
            Some(b) => (b.services.state(), b.slices.state(), b.secrets.state()),
            None => Default::default(),
        };
        let table = RouteTable::build(
            &ours,
            &Cluster {
                services: &services,
                slices: &slices,
            },
        );
        let cert_table = certs.table(&ours, &secrets, default_cert.clone());
        tracing::debug!(
            ingresses = ours.len(),
            hosts = table.hosts(),
            certificates = cert_table.len(),
            "ingress tables rebuilt"
        );
        routes_tx.send_replace(Arc::new(table));
        certs_tx.send_replace(Arc::new(cert_table));
        notify.notified().await;
        // Let a burst of events land before rebuilding.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How long the first start waits for the TLS Secrets before serving without them.
const SECRETS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The caches backends and certificates come from, started with the first served Ingress
/// (a node of a cluster without Ingresses keeps no second copy of the proxy's Services and
/// EndpointSlices).
struct Backing {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    secrets: Store<Secret>,
}

impl Backing {
    async fn start(client: &Client, notify: &Arc<Notify>) -> Backing {
        let all = watcher::Config::default;
        let b = Backing {
            services: cache(Api::all(client.clone()), all(), notify.clone()),
            slices: cache(Api::all(client.clone()), all(), notify.clone()),
            secrets: cache(
                Api::all(client.clone()),
                all().fields("type=kubernetes.io/tls"),
                notify.clone(),
            ),
        };
        let _ = b.services.wait_until_ready().await;
        let _ = b.slices.wait_until_ready().await;
        // Nodes may not read Secrets (the TLS role is bound only on request): serve with the
        // default certificate meanwhile instead of waiting for a list that is refused.
        if tokio::time::timeout(SECRETS_WAIT, b.secrets.wait_until_ready())
            .await
            .is_err()
        {
            tracing::warn!(
                role = bramble_auth::defaults::INGRESS_TLS_ROLE,
                "TLS Secrets not readable yet (bind the role to system:nodes for TLS); \
                 serving the default certificate"
            );
        }
        b
    }
}

/// Spawns [`run`] on the current runtime; after an error (a port in use) it is retried
/// every 10 s.
pub fn spawn(client: Client, config: IngressConfig) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run(client.clone(), config.clone()).await {
                tracing::error!(error = %e, "ingress controller stopped; retrying in 10 s");
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
}
