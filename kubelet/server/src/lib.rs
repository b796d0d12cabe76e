//! The kubelet's streaming server: `kubectl logs`, `exec`, `attach` and `port-forward`
//! reach it through the controller, which proxies `pods/log`, `pods/exec`, `pods/attach`
//! and `pods/portforward` to the kubelet of the pod's node, as upstream's API server does.
//!
//! # Entry point (what the kubelet agent calls)
//!
//! ```text
//! let (cert, key) = bramble_kubelet_server::self_signed_serving_cert(node_name, &ips)?;
//! let tls = bramble_kubelet_server::server_config(cluster_ca_pem, &cert, &key)?;
//! let listener = tokio::net::TcpListener::bind(("0.0.0.0", 10250)).await?;
//! tokio::spawn(bramble_kubelet_server::serve(
//!     listener,
//!     tls,
//!     pods,            // Arc<dyn PodContainers>: the agent's pod table
//!     runtime,         // Arc<RuntimeClient> (any ContainerRuntime)
//!     ClientAuthorizer::default(),
//!     shutdown,
//! ));
//! ```
//! and the Node it registers must carry `status.addresses` (an `InternalIP`) and
//! `status.daemonEndpoints.kubeletEndpoint.port` = the listener's port: the controller
//! dials that.
//!
//! # Paths (upstream's kubelet paths)
//!
//! - `GET /containerLogs/{namespace}/{pod}/{container}`: `follow`, `tailLines`,
//!   `sinceSeconds`, `sinceTime`, `timestamps`, `previous`, `limitBytes` ([`logs`]).
//! - `GET|POST /exec/{namespace}/{pod}/{container}?command=..&input=1&output=1&error=1&tty=1`
//!   and `/attach/...`: WebSocket upgrade with `v5.channel.k8s.io` or `v4.channel.k8s.io`
//!   ([`ws`], [`session`]), or SPDY/3.1 with `v4.channel.k8s.io` ([`spdy_command`]) for
//!   kubectl before 1.30.
//!   Attach sessions go to the container's shim through its attach socket
//!   ([`bramble_runtime::attach`]): live output, stdin for `stdin: true` containers, the
//!   terminal of `tty: true` ones.
//! - `GET|POST /portForward/{namespace}/{pod}`: SPDY/3.1 (`portforward.k8s.io`), directly
//!   or tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+)
//!   ([`portforward`], [`spdy`]).
//!
//! # Authentication of the hop
//!
//! TLS requires a client certificate chaining to the cluster CA ([`server_config`]); the
//! identity (CN user, O groups) must be allowed by the [`ClientAuthorizer`]: the
//! controller's `kube-apiserver-kubelet-client` user and `system:masters` always, anyone
//! else when a SubjectAccessReview on the node's `nodes/<subresource>` allows it ([`authz`]). The serving
//! certificate is self-signed by the kubelet for now, so the controller does not verify it
//! (only that the peer holds its key) until kubelet serving certificates are signed through
//! CSRs.

pub mod authz;
mod containers;
mod error;
pub mod fdio;
pub mod logs;
pub mod netns;
pub mod portforward;
pub mod query;
mod server;
pub mod session;
pub mod spdy;
pub mod spdy_command;
pub mod stats;
mod tls;
pub mod ws;

use std::future::Future;
use std::sync::Arc;

use bramble_runtime::ContainerRuntime;
use tokio::net::TcpListener;

pub use authz::{AccessReviewer, ClientAuthorizer, RequestAttributes};
pub use containers::{ContainerTarget, LookupError, LookupFuture, PodContainers, PodSandbox};
pub use error::ServerError;
pub use server::{route, Body, Kubelet};
pub use tls::{
    client_identity, self_signed_serving_cert, server_config, server_config_with, ClientIdentity,
    ServingCert, APISERVER_KUBELET_CLIENT,
};

/// The kubelet's default streaming port (upstream's `--port`).
pub const DEFAULT_PORT: u16 = 10250;

/// Serves the streaming API on `listener` until `shutdown` resolves.
///
/// - `tls`: from [`server_config`] (client certificates required).
/// - `containers`: the kubelet's pod table ([`PodContainers`]).
/// - `runtime`: the container runtime exec and status calls go to.
/// - `authorizer`: which client identities may stream.
pub async fn serve<R: ContainerRuntime + 'static>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    containers: Arc<dyn PodContainers>,
    runtime: Arc<R>,
    authorizer: ClientAuthorizer,
    shutdown: impl Future<Output = ()>,
) {
    serve_with_stats(
        listener, tls, containers, runtime, authorizer, None, shutdown,
    )
    .await
}

/// [`serve`], plus `/stats/summary` and `/metrics/resource` from `stats`.
pub async fn serve_with_stats<R: ContainerRuntime + 'static>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    containers: Arc<dyn PodContainers>,
    runtime: Arc<R>,
    authorizer: ClientAuthorizer,
    stats: Option<Arc<dyn stats::StatsProvider>>,
    shutdown: impl Future<Output = ()>,
) {
    let kubelet = Arc::new(Kubelet {
        containers,
        runtime,
        authorizer,
        stats,
    });
    server::serve(listener, tls, kubelet, shutdown).await
}
