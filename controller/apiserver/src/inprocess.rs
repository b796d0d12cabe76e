//! An in-process API client: a `kube::Client` whose requests reach the router over an
//! in-memory HTTP/2 connection, not a socket. The controllers and the scheduler in the
//! `bramble controller` process use it, so they see exactly the REST and watch semantics
//! (validation, defaults, admission, resourceVersions, bookmarks) every external client sees,
//! with no TCP, TLS or token on the way.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Mutex;
use tracing::debug;

use bramble_pki::UserInfo;

use crate::auth::Authenticator;
use crate::state::ApiState;

/// Size of each direction's in-memory buffer.
const PIPE_BYTES: usize = 256 * 1024;

/// The tower service behind [`client`]: one HTTP/2 connection over `tokio::io::duplex`,
/// re-opened if it ever closes.
#[derive(Clone)]
pub struct InProcessService {
    state: Arc<ApiState>,
    authn: Arc<Authenticator>,
    user: Arc<UserInfo>,
    sender: Arc<Mutex<Option<http2::SendRequest<kube::client::Body>>>>,
}

/// Errors of the in-process connection.
#[derive(Debug, thiserror::Error)]
pub enum InProcessError {
    /// The in-memory HTTP/2 connection failed.
    #[error("in-process API connection: {0}")]
    Http(#[from] hyper::Error),
    /// The request URI could not be made absolute.
    #[error("in-process API request URI: {0}")]
    Uri(#[from] http::Error),
}

impl InProcessService {
    async fn connect(&self) -> Result<http2::SendRequest<kube::client::Body>, InProcessError> {
        let (client_io, server_io) = tokio::io::duplex(PIPE_BYTES);
        let state = self.state.clone();
        let authn = self.authn.clone();
        let user = self.user.clone();
        tokio::spawn(crate::server::serve_connection(
            TokioIo::new(server_io),
            state,
            authn,
            Some((*user).clone()),
        ));
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(client_io))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(error = %e, "in-process API connection closed");
            }
        });
        Ok(sender)
    }

    async fn send(
        self,
        req: Request<kube::client::Body>,
    ) -> Result<Response<Incoming>, InProcessError> {
        let (mut parts, body) = req.into_parts();
        if !parts.headers.contains_key(http::header::USER_AGENT) {
            if let Ok(ua) = http::HeaderValue::from_str(&user_agent(&self.user.name)) {
                parts.headers.insert(http::header::USER_AGENT, ua);
            }
        }
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        parts.uri = Uri::builder()
            .scheme("http")
            .authority("bramble.in-process")
            .path_and_query(path)
            .build()?;
        let req = Request::from_parts(parts, body);
        let mut sender = {
            let mut guard = self.sender.lock().await;
            match guard.as_ref() {
                Some(s) if !s.is_closed() => s.clone(),
                _ => {
                    let s = self.connect().await?;
                    *guard = Some(s.clone());
                    s
                }
            }
        };
        sender.ready().await?;
        Ok(sender.send_request(req).await?)
    }
}

impl tower::Service<Request<kube::client::Body>> for InProcessService {
    type Response = Response<Incoming>;
    type Error = InProcessError;
    type Future = BoxFuture<'static, Result<Response<Incoming>, InProcessError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        Box::pin(self.clone().send(req))
    }
}

/// The User-Agent upstream's component of `user` sends (`kube-scheduler/v1.33.0 (linux/arm64)
/// bramble/0.1.0`), so the field manager of its writes reads as upstream's: the scheduler, the
/// kubelet of a node, the controller manager (also for its per-controller service accounts).
pub fn user_agent(user: &str) -> String {
    let component = match user {
        "system:kube-scheduler" => "kube-scheduler",
        u if u.starts_with("system:node:") => "kubelet",
        "system:kube-controller-manager" => "kube-controller-manager",
        u if u.starts_with("system:serviceaccount:kube-system:") => "kube-controller-manager",
        u => u.strip_prefix("system:").unwrap_or("bramble"),
    };
    format!(
        "{component}/v1.33.0 ({}/{}) bramble/{}",
        std::env::consts::OS,
        upstream_arch(),
        env!("CARGO_PKG_VERSION")
    )
}

/// Go's name of this machine's architecture, as upstream's User-Agents carry it.
fn upstream_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

/// A `kube::Client` acting as `user` (name and groups as an authenticated client certificate
/// would give them), whose default namespace is `default`.
pub fn client(state: Arc<ApiState>, authn: Arc<Authenticator>, user: UserInfo) -> kube::Client {
    let service = InProcessService {
        state,
        authn,
        user: Arc::new(user),
        sender: Arc::new(Mutex::new(None)),
    };
    kube::Client::new(service, "default")
}

#[cfg(test)]
mod tests {
    use super::user_agent;

    #[test]
    fn components_send_upstream_user_agents() {
        let prefix = |u: &str| user_agent(u).split('/').next().unwrap().to_string();
        assert_eq!(prefix("system:kube-scheduler"), "kube-scheduler");
        assert_eq!(
            prefix("system:kube-controller-manager"),
            "kube-controller-manager"
        );
        assert_eq!(
            prefix("system:serviceaccount:kube-system:node-controller"),
            "kube-controller-manager"
        );
        assert_eq!(prefix("system:node:pi-1"), "kubelet");
        assert_eq!(prefix("system:bramble-dns"), "bramble-dns");
        assert_eq!(prefix("test-admin"), "bramble");
        assert!(user_agent("system:kube-scheduler").starts_with("kube-scheduler/v1.33.0 (linux/"));
    }
}
