//! The hop to the kubelet: one TLS connection per request, the request re-issued with the
//! upgrade headers kept, and either the streamed response body relayed or, after the
//! kubelet's `101 Switching Protocols`, both upgraded connections joined byte for byte.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderName, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tracing::debug;

use bramble_api::Status;

use super::KubeletTarget;
use crate::body::{self, Response};
use crate::state::ApiState;

/// Request headers the kubelet needs for upgrades (WebSocket and SPDY negotiation).
const FORWARDED: [&str; 8] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
    "accept",
];

fn unavailable(msg: String) -> Response {
    body::status(&Status::new(bramble_api::Reason::ServiceUnavailable, msg))
}

/// A TLS connection to the kubelet with the controller's kubelet client certificate.
pub(crate) async fn dial(
    state: &ApiState,
    target: &KubeletTarget,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tls = state
        .kubelet_client
        .get()
        .cloned()
        .ok_or_else(|| "no kubelet client credentials configured".to_string())?;
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect(&target.addr),
    )
    .await
    .map_err(|_| format!("dial tcp {}: i/o timeout", target.addr))?
    .map_err(|e| format!("dial tcp {}: {e}", target.addr))?;
    let _ = tcp.set_nodelay(true);
    let host = target
        .addr
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']))
        .unwrap_or(&target.addr);
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("kubelet address {host}: {e}"))?;
    tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls handshake with kubelet {}: {e}", target.addr))
}

/// A kubelet's error answer (plain text) as the Status kubectl prints.
async fn kubelet_error(resp: http::Response<Incoming>) -> Response {
    let code = resp.status().as_u16();
    let text = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
        .unwrap_or_default();
    let reason = match code {
        400 => bramble_api::Reason::BadRequest,
        401 => bramble_api::Reason::Unauthorized,
        403 => bramble_api::Reason::Forbidden,
        404 => bramble_api::Reason::NotFound,
        _ => bramble_api::Reason::InternalError,
    };
    let mut s = Status::new(reason, text);
    if code >= 500 {
        s = Status::internal(s.message);
    }
    body::status(&s)
}

/// Relays the request to the kubelet.
pub async fn forward(
    state: &Arc<ApiState>,
    target: KubeletTarget,
    mut req: Request<Incoming>,
) -> Response {
    let tls = match dial(state, &target).await {
        Ok(t) => t,
        Err(e) => return unavailable(e),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tls)).await {
        Ok(x) => x,
        Err(e) => return unavailable(format!("kubelet {}: {e}", target.addr)),
    };
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            debug!(error = %e, "kubelet connection ended");
        }
    });
    let mut out = Request::builder()
        .method(req.method().clone())
        .uri(target.path_and_query.as_str())
        .header(header::HOST, target.addr.as_str());
    for name in FORWARDED {
        let name = HeaderName::from_static(name);
        for v in req.headers().get_all(&name) {
            out = out.header(&name, v);
        }
    }
    let Ok(out) = out.body(Empty::<Bytes>::new()) else {
        return body::status(&Status::internal("building the kubelet request"));
    };
    let upgrading = req.headers().contains_key(header::UPGRADE);
    let client_upgrade = upgrading.then(|| hyper::upgrade::on(&mut req));
    let mut resp = match sender.send_request(out).await {
        Ok(r) => r,
        Err(e) => return unavailable(format!("kubelet {}: {e}", target.addr)),
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return body::status(&Status::internal("kubelet switched protocols unasked"));
        };
        let kubelet_upgrade = hyper::upgrade::on(&mut resp);
        let mut answer = http::Response::new(body::empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *answer.headers_mut() = resp.headers().clone();
        tokio::spawn(async move {
            let (client, kubelet) = match tokio::join!(client_upgrade, kubelet_upgrade) {
                (Ok(c), Ok(k)) => (c, k),
                (c, k) => {
                    debug!(client = c.is_ok(), kubelet = k.is_ok(), "upgrade failed");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut kubelet = TokioIo::new(kubelet);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await;
        });
        return answer;
    }
    if !resp.status().is_success() {
        return kubelet_error(resp).await;
    }
    let (parts, incoming) = resp.into_parts();
    let mut answer = http::Response::new(
        incoming
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed(),
    );
    *answer.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        answer
            .headers_mut()
            .insert(header::CONTENT_TYPE, ct.clone());
    }
    answer
}
