//! The kubelet's credentials when it joins with a bootstrap token: reused from its data
//! directory on restarts, obtained with [`crate::join::join`] when missing or expired, and
//! renewed at [`crate::certs::RENEW_FRACTION`] of their lifetime through a
//! [`kube::Client`] whose connections switch to the new certificate (requests already under
//! way, such as open watches, finish on the connection they started on).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use kube::client::Body;
use kube::Client;
use tracing::{info, warn};

use crate::certs::{renew_client_certificate, NodeCredentials};
use crate::join::{join, JoinConfig, JoinError};

/// File name of the kubelet's kubeconfig in its data directory.
pub const KUBECONFIG_FILE: &str = "kubeconfig";
/// How long one renewal waits for its certificate.
const RENEW_TIMEOUT: Duration = Duration::from_secs(300);

/// The kubeconfig path in `data_dir`.
pub fn kubeconfig_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KUBECONFIG_FILE)
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The credentials in `cfg.kubeconfig_path` when they are for `cfg.server` and not expired;
/// otherwise joins with the bootstrap token and returns the new ones.
#[tracing::instrument(skip_all, fields(node = %cfg.node_name))]
pub async fn load_or_join(cfg: &JoinConfig) -> Result<NodeCredentials, JoinError> {
    let path = &cfg.kubeconfig_path;
    if path.exists() {
        match NodeCredentials::read(path) {
            Ok(c) if c.server != cfg.server => {
                info!(path = %path.display(), was = %c.server, "credentials are for another server; joining again")
            }
            Ok(c) => match c.validity() {
                Ok((_, not_after)) if not_after > now_unix() => {
                    info!(path = %path.display(), "using the credentials from an earlier join");
                    return Ok(c);
                }
                Ok(_) => info!(path = %path.display(), "client certificate expired; joining again"),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "unreadable certificate; joining again")
                }
            },
            Err(e) => warn!(error = %e, "unreadable credentials; joining again"),
        }
    }
    join(cfg).await?;
    NodeCredentials::read(path)
}

/// A [`tower::Service`] that sends each request through the client of the newest
/// credentials.
#[derive(Clone)]
struct Current(Arc<RwLock<Client>>);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<http::Request<Body>> for Current {
    type Response = http::Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let client = self.0.read().expect("client slot").clone();
        Box::pin(async move { client.send(req).await })
    }
}

/// A client over `creds` that renews them before they expire (see the module docs).
/// Must be called inside a Tokio runtime; the renewal task runs as long as the runtime.
pub async fn rotating_client(creds: NodeCredentials, node_name: &str) -> Result<Client, JoinError> {
    let slot = Arc::new(RwLock::new(creds.client().await?));
    tokio::spawn(renew_loop(creds, node_name.to_string(), slot.clone()));
    Ok(Client::new(Current(slot), "default"))
}

async fn renew_loop(mut creds: NodeCredentials, node: String, slot: Arc<RwLock<Client>>) {
    let mut retry = Duration::from_secs(5);
    loop {
        let wait = match creds.renew_at() {
            Ok(at) => Duration::from_secs((at - now_unix()).max(0) as u64),
            Err(e) => {
                warn!(error = %e, "cannot read the client certificate's validity; not renewing");
                return;
            }
        };
        info!(
            in_seconds = wait.as_secs(),
            "client certificate renewal scheduled"
        );
        tokio::time::sleep(wait).await;
        let renewed = match renew_client_certificate(&creds, &node, RENEW_TIMEOUT).await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, retry_in = ?retry, "renewing the client certificate failed");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(300));
                continue;
            }
        };
        match renewed.client().await {
            Ok(c) => {
                *slot.write().expect("client slot") = c;
                creds = renewed;
                retry = Duration::from_secs(5);
                info!("client certificate rotated; new connections use it");
            }
            Err(e) => warn!(error = %e, "client from the renewed certificate"),
        }
    }
}

/// The kubelet's API client when it joins: `token` must be a bootstrap token and
/// `ca_cert_hashes` must pin the cluster CA. Returns the client (renewing its certificate)
/// and the cluster CA (PEM).
pub async fn kubelet_client(cfg: &JoinConfig) -> Result<(Client, String), JoinError> {
    let creds = load_or_join(cfg).await?;
    let ca = creds.ca_pem.clone();
    Ok((rotating_client(creds, &cfg.node_name).await?, ca))
}
