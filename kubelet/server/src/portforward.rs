//! `/portForward/{namespace}/{pod}`: upstream's `portforward.k8s.io` protocol over SPDY/3.1,
//! either as a plain HTTP upgrade (`Upgrade: SPDY/3.1`) or tunnelled through a WebSocket
//! whose subprotocol is `SPDY/3.1+portforward.k8s.io` (kubectl 1.31+ tries that first).
//!
//! Per forwarded connection the client opens two streams with the same `requestID` and
//! `port`: `streamType: error` (the kubelet writes a message there if it cannot forward) and
//! `streamType: data` (the bytes, both ways). The kubelet connects to `127.0.0.1:<port>` in
//! the pod's network namespace ([`crate::netns`]).

use std::collections::HashMap;
use std::path::PathBuf;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{header, HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use bramble_runtime::ContainerRuntime;

use crate::server::{Body, Kubelet};
use crate::spdy::{self, Event, Out};
use crate::ws;

/// The port-forward subprotocol name.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of the SPDY tunnel.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

fn text(code: u16, msg: &str) -> http::Response<Body> {
    use http_body_util::BodyExt;
    let mut r = http::Response::new(
        http_body_util::Full::new(Bytes::from(format!("{msg}\n")))
            .map_err(|n| match n {})
            .boxed(),
    );
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

fn is_spdy_upgrade(h: &http::HeaderMap) -> bool {
    h.get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"))
}

/// Answers a port-forward request: validates the pod, upgrades, and serves the streams.
pub async fn handle<R: ContainerRuntime + 'static>(
    kubelet: &Kubelet<R>,
    ns: &str,
    pod: &str,
    req: Request<Incoming>,
) -> http::Response<Body> {
    let sandbox = match kubelet.containers.sandbox(ns, pod).await {
        Ok(s) => s,
        Err(e) => return text(e.http_status(), &e.to_string()),
    };
    let target = Target {
        netns: sandbox.netns_path,
        pod: pod.to_string(),
        uid: sandbox.pod_uid,
    };
    if ws::is_websocket(req.headers()) {
        if ws::negotiate(req.headers(), &[TUNNEL_PROTOCOL]).is_none() {
            return text(
                400,
                "unable to negotiate a WebSocket protocol: supported is SPDY/3.1+portforward.k8s.io",
            );
        }
        let Some(resp) = ws::accept::<Body>(req.headers(), TUNNEL_PROTOCOL) else {
            return text(400, "missing Sec-WebSocket-Key");
        };
        tokio::spawn(async move {
            let Ok(up) = hyper::upgrade::on(req).await else {
                return;
            };
            let socket = ws::server_socket(up).await;
            let (inner, outer) = tokio::io::duplex(256 * 1024);
            tokio::spawn(tunnel(socket, outer));
            forward(inner, target).await;
        });
        return resp;
    }
    if !is_spdy_upgrade(req.headers()) {
        return text(400, "Upgrade request required");
    }
    let offered = req
        .headers()
        .get_all("X-Stream-Protocol-Version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL);
    if !offered {
        return text(
            403,
            "unable to upgrade: unable to negotiate protocol: client supports [], server supports [portforward.k8s.io]",
        );
    }
    let mut resp = http::Response::new(<Body as Default>::default());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(
        "X-Stream-Protocol-Version",
        HeaderValue::from_static(PROTOCOL),
    );
    tokio::spawn(async move {
        let Ok(up) = hyper::upgrade::on(req).await else {
            return;
        };
        forward(TokioIo::new(up), target).await;
    });
    resp
}

/// Carries a byte stream in WebSocket binary messages, both ways.
async fn tunnel(socket: ws::Ws, bytes: tokio::io::DuplexStream) {
    let (mut sink, mut stream) = socket.split();
    let (mut rd, mut wr) = tokio::io::split(bytes);
    let up = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let msg = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                    if sink.send(msg).await.is_err() {
                        return;
                    }
                }
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
    };
    let down = async move {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Binary(b) if wr.write_all(&b).await.is_err() => return,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::join!(up, down);
}

struct Target {
    netns: PathBuf,
    pod: String,
    uid: String,
}

#[derive(Default)]
struct Pending {
    port: u16,
    error: Option<u32>,
    data: Option<(u32, mpsc::UnboundedReceiver<Option<Bytes>>)>,
}

/// Serves the port-forward streams of one SPDY connection.
async fn forward<T>(io: T, target: Target)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (tx, mut events) = spdy::serve(io);
    let target = std::sync::Arc::new(target);
    // Client data for each data stream, and requests waiting for their second stream.
    let mut inbound: HashMap<u32, mpsc::UnboundedSender<Option<Bytes>>> = HashMap::new();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    while let Some(ev) = events.recv().await {
        match ev {
            Event::Stream { id, headers, .. } => {
                let get = |k: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let kind = get("streamtype");
                let request = get("requestid");
                let Ok(port) = get("port").parse::<u16>() else {
                    tx.send(Out::Reset { id, status: 1 });
                    continue;
                };
                let p = pending.entry(request.clone()).or_default();
                p.port = port;
                match kind.as_str() {
                    "error" => p.error = Some(id),
                    "data" => {
                        let (itx, irx) = mpsc::unbounded_channel();
                        inbound.insert(id, itx);
                        p.data = Some((id, irx));
                    }
                    _ => {
                        tx.send(Out::Reset { id, status: 1 });
                        continue;
                    }
                }
                if p.error.is_some() && p.data.is_some() {
                    let p = pending.remove(&request).expect("present");
                    let (data_id, data_rx) = p.data.expect("data");
                    tokio::spawn(forward_one(
                        tx.clone(),
                        target.clone(),
                        p.port,
                        p.error.expect("error"),
                        data_id,
                        data_rx,
                    ));
                }
            }
            Event::Data { id, data, fin } => {
                if let Some(s) = inbound.get(&id) {
                    if !data.is_empty() {
                        let _ = s.send(Some(data));
                    }
                    if fin {
                        let _ = s.send(None);
                        inbound.remove(&id);
                    }
                }
            }
            Event::Reset { id } => {
                if let Some(s) = inbound.remove(&id) {
                    let _ = s.send(None);
                }
            }
        }
    }
}

/// One forwarded connection: pod port <-> data stream; failures on the error stream.
async fn forward_one(
    tx: spdy::Sender,
    target: std::sync::Arc<Target>,
    port: u16,
    error_id: u32,
    data_id: u32,
    mut data_rx: mpsc::UnboundedReceiver<Option<Bytes>>,
) {
    let conn = match crate::netns::connect(&target.netns, port).await {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "error forwarding port {port} to pod {}, uid {}: failed to connect to localhost:{port} inside namespace {:?}: {e}",
                target.pod, target.uid, target.netns
            );
            tx.send(Out::Data {
                id: error_id,
                data: Bytes::from(msg),
                fin: true,
            });
            tx.send(Out::Data {
                id: data_id,
                data: Bytes::new(),
                fin: true,
            });
            return;
        }
    };
    let (mut rd, mut wr) = conn.into_split();
    let up = {
        let tx = tx.clone();
        async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if !tx.send(Out::Data {
                            id: data_id,
                            data: Bytes::copy_from_slice(&buf[..n]),
                            fin: false,
                        }) {
                            return;
                        }
                    }
                }
            }
            tx.send(Out::Data {
                id: data_id,
                data: Bytes::new(),
                fin: true,
            });
        }
    };
    let down = async move {
        while let Some(Some(b)) = data_rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::join!(up, down);
    tx.send(Out::Data {
        id: error_id,
        data: Bytes::new(),
        fin: true,
    });
}
