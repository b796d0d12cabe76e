//! Connections (TLS with mandatory client certificates, HTTP/1.1 with upgrades) and routing
//! of the kubelet's streaming paths.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Method, Request, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, Instrument};

use bramble_runtime::{ContainerRuntime, ContainerStatusKind};

use crate::authz::{request_attributes, ClientAuthorizer};
use crate::containers::{LookupError, PodContainers};
use crate::logs::{self, LogOptions};
use crate::query::Params;
use crate::session::{self, Chunk, StreamOptions};
use crate::tls::{client_identity, ClientIdentity};
use crate::ws;

/// Response body of the server.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// What every request needs.
pub struct Kubelet<R> {
    /// Pod and container lookup.
    pub containers: Arc<dyn PodContainers>,
    /// The container runtime.
    pub runtime: Arc<R>,
    /// Who may stream.
    pub authorizer: ClientAuthorizer,
    /// Resource usage for `/stats/summary` and `/metrics/resource` (404 without).
    pub stats: Option<Arc<dyn crate::stats::StatsProvider>>,
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|n| match n {}).boxed()
}

/// A plain-text answer, as upstream's kubelet writes its errors.
fn text(code: u16, msg: impl Into<String>) -> http::Response<Body> {
    let mut msg = msg.into();
    if !msg.ends_with('\n') {
        msg.push('\n');
    }
    let mut r = http::Response::new(full(msg));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn lookup_error(e: &LookupError) -> http::Response<Body> {
    text(e.http_status(), e.to_string())
}

/// Accepts connections until `shutdown` resolves. Each connection must present a client
/// certificate that `tls` verifies; requests from identities `kubelet.authorizer` does not
/// allow get 403.
pub async fn serve<R: ContainerRuntime + 'static>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    kubelet: Arc<Kubelet<R>>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let kubelet = kubelet.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| client_identity(c.as_ref()));
            let identity = Arc::new(identity);
            let svc = service_fn(move |req: Request<Incoming>| {
                let kubelet = kubelet.clone();
                let identity = identity.clone();
                async move {
                    Ok::<_, Infallible>(route(&kubelet, identity.as_ref().as_ref(), req).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades()
                .await;
        });
    }
}

/// Routes one request.
pub async fn route<R: ContainerRuntime + 'static>(
    kubelet: &Kubelet<R>,
    identity: Option<&ClientIdentity>,
    req: Request<Incoming>,
) -> http::Response<Body> {
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("kubelet_request", method = %req.method(), %path);
    async move {
        let Some(id) = identity else {
            return text(401, "Unauthorized");
        };
        let attrs = request_attributes(req.method(), &path);
        if !kubelet.authorizer.authorize(id, &attrs).await {
            return text(
                403,
                format!(
                    "Forbidden (user={}, verb={}, resource=nodes, subresource={})",
                    id.user, attrs.verb, attrs.subresource
                ),
            );
        }
        let segs: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(str::to_string)
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let method = req.method().clone();
        let get_or_post = method == Method::GET || method == Method::POST;
        match segs.as_slice() {
            ["healthz"] => text(200, "ok"),
            ["stats", "summary"] if method == Method::GET && kubelet.stats.is_some() => {
                crate::stats::summary(kubelet.stats.as_deref(), req.uri().query())
            }
            ["metrics", "resource"] if method == Method::GET && kubelet.stats.is_some() => {
                crate::stats::resource_metrics(kubelet.stats.as_deref())
            }
            ["containerLogs", ns, pod, container] if method == Method::GET => {
                container_logs(kubelet, ns, pod, container, &req).await
            }
            ["exec", ns, pod, container] if get_or_post => {
                remote_command(kubelet, Command::Exec, ns, pod, container, req).await
            }
            ["attach", ns, pod, container] if get_or_post => {
                remote_command(kubelet, Command::Attach, ns, pod, container, req).await
            }
            ["portForward", ns, pod] if get_or_post => {
                crate::portforward::handle(kubelet, ns, pod, req).await
            }
            _ => text(404, "404 page not found"),
        }
    }
    .instrument(span)
    .await
}

async fn container_logs<R: ContainerRuntime + 'static>(
    kubelet: &Kubelet<R>,
    ns: &str,
    pod: &str,
    container: &str,
    req: &Request<Incoming>,
) -> http::Response<Body> {
    let q = Params::parse(req.uri().query());
    let opts = match LogOptions::parse(&q) {
        Ok(o) => o,
        Err(m) => return text(400, m),
    };
    let c = if opts.previous {
        kubelet
            .containers
            .previous_container(ns, pod, Some(container))
            .await
    } else {
        kubelet.containers.container(ns, pod, Some(container)).await
    };
    let target = match c {
        Ok(t) => t,
        Err(e) => return lookup_error(&e),
    };
    if !target.log_path.exists() {
        // Created but never started: nothing written yet.
        return text(200, "").map(|_| full(Bytes::new()));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let follow = (!opts.previous).then(|| (kubelet.runtime.clone(), target.container_id.clone()));
    let path = target.log_path.clone();
    tokio::spawn(async move {
        if let Err(e) = logs::stream(path.clone(), opts, follow, tx).await {
            debug!(path = %path.display(), error = %e, "log stream failed");
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let mut resp = http::Response::new(BodyExt::boxed(StreamBody::new(stream)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    resp
}

/// CRI's name of a container state (containerd's `criContainerStateToString`).
fn cri_state(s: ContainerStatusKind) -> &'static str {
    match s {
        ContainerStatusKind::Created => "CONTAINER_CREATED",
        ContainerStatusKind::Running => "CONTAINER_RUNNING",
        ContainerStatusKind::Exited => "CONTAINER_EXITED",
        ContainerStatusKind::Unknown => "CONTAINER_UNKNOWN",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Exec,
    Attach,
}

async fn remote_command<R: ContainerRuntime + 'static>(
    kubelet: &Kubelet<R>,
    which: Command,
    ns: &str,
    pod: &str,
    container: &str,
    req: Request<Incoming>,
) -> http::Response<Body> {
    let q = Params::parse(req.uri().query());
    let opts = StreamOptions {
        stdin: q.any_flag(&["input", "stdin"]),
        stdout: q.any_flag(&["output", "stdout"]),
        stderr: q.any_flag(&["error", "stderr"]),
        tty: q.flag("tty"),
    };
    let opts = StreamOptions {
        stderr: opts.stderr && !opts.tty,
        ..opts
    };
    let command = q.all("command");
    if which == Command::Exec && command.is_empty() {
        return text(
            400,
            "you must specify at least one command for the container",
        );
    }
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return text(400, "you must specify at least 1 of stdin, stdout, stderr");
    }
    let target = match kubelet.containers.container(ns, pod, Some(container)).await {
        Ok(t) => t,
        Err(e) => return lookup_error(&e),
    };
    if which == Command::Attach {
        // containerd's Attach: only a running container.
        match kubelet.runtime.container_status(&target.container_id).await {
            Ok(st) if st.status == ContainerStatusKind::Running => {}
            Ok(st) => {
                return text(
                    500,
                    format!("container is in {} state", cri_state(st.status)),
                )
            }
            Err(e) => return text(500, e.to_string()),
        }
    }
    if !ws::is_websocket(req.headers()) {
        return spdy_remote_command(kubelet, which, target, command, opts, req);
    }
    let Some(protocol) = ws::negotiate(req.headers(), &ws::REMOTE_COMMAND_PROTOCOLS) else {
        return text(
            400,
            format!(
                "unable to negotiate a WebSocket protocol: supported are {}",
                ws::REMOTE_COMMAND_PROTOCOLS.join(", ")
            ),
        );
    };
    let Some(resp) = ws::accept::<Body>(req.headers(), protocol) else {
        return text(400, "missing Sec-WebSocket-Key");
    };
    let runtime = kubelet.runtime.clone();
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => {
                debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let socket = ws::server_socket(upgraded).await;
        let (out_tx, out_rx) = mpsc::channel::<Chunk>(32);
        let (in_tx, in_rx) = mpsc::channel::<Chunk>(32);
        let pump = tokio::spawn(pump_websocket(socket, out_rx, in_tx));
        match which {
            Command::Exec => {
                session::exec(runtime, target.container_id, command, opts, out_tx, in_rx).await
            }
            Command::Attach => {
                session::attach(runtime, target.container_id, opts, out_tx, in_rx).await
            }
        }
        let _ = pump.await;
    });
    resp
}

fn spdy_remote_command<R: ContainerRuntime + 'static>(
    kubelet: &Kubelet<R>,
    which: Command,
    target: crate::containers::ContainerTarget,
    command: Vec<String>,
    opts: StreamOptions,
    req: Request<Incoming>,
) -> http::Response<Body> {
    let spdy = req
        .headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    if !spdy {
        return text(400, "Upgrade request required");
    }
    let offered: Vec<String> = req
        .headers()
        .get_all("X-Stream-Protocol-Version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .collect();
    let Some(protocol) = crate::spdy_command::PROTOCOLS
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
    else {
        return text(
            403,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {:?}",
                crate::spdy_command::PROTOCOLS
            ),
        );
    };
    let mut resp = http::Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("SPDY/3.1"),
    );
    h.insert(
        "X-Stream-Protocol-Version",
        http::HeaderValue::from_static(protocol),
    );
    let runtime = kubelet.runtime.clone();
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => {
                debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let (out_tx, out_rx) = mpsc::channel::<Chunk>(32);
        let (in_tx, in_rx) = mpsc::channel::<Chunk>(32);
        let bridge = tokio::spawn(crate::spdy_command::bridge(
            TokioIo::new(upgraded),
            opts,
            out_rx,
            in_tx,
        ));
        match which {
            Command::Exec => {
                session::exec(runtime, target.container_id, command, opts, out_tx, in_rx).await
            }
            Command::Attach => {
                session::attach(runtime, target.container_id, opts, out_tx, in_rx).await
            }
        }
        let _ = bridge.await;
    });
    resp
}

/// Moves chunks between the session and the WebSocket until the session ends (its sender
/// is dropped: then a normal close) or the client goes away.
pub async fn pump_websocket(
    socket: ws::Ws,
    mut out: mpsc::Receiver<Chunk>,
    inbound: mpsc::Sender<Chunk>,
) {
    let (mut sink, mut stream) = socket.split();
    let reader = tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(Message::Binary(b))
                    if !b.is_empty() && inbound.send((b[0], b.slice(1..))).await.is_err() =>
                {
                    return
                }
                Ok(Message::Close(_)) | Err(_) => return,
                _ => {}
            }
        }
    });
    while let Some((stream, data)) = out.recv().await {
        if sink
            .send(Message::Binary(Bytes::from(ws::frame(stream, &data))))
            .await
            .is_err()
        {
            reader.abort();
            return;
        }
    }
    // A normal-closure code: client-go reads it as end of stream (1005 "no status" is an
    // error to it).
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
    let _ = sink.flush().await;
    // Give the client a moment to answer the close, then drop the connection.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), reader).await;
}
