//! One proxied request: route by host and path, pick a ready endpoint, forward over
//! HTTP/1.1 with the `X-Forwarded-*` headers (and connection upgrades such as WebSocket), and
//! answer 404 (no rule, no default backend), 503 (no ready endpoint) or 502 (the endpoint
//! failed) otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

use crate::routes::RouteTable;

/// Response bodies: the backend's, or a short error text.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Headers of one hop only (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Where a request came in.
#[derive(Debug, Clone, Copy)]
pub struct Inbound {
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener's port.
    pub port: u16,
    /// Whether it came over TLS.
    pub tls: bool,
}

/// The request handler shared by all connections.
pub struct Proxy {
    routes: watch::Receiver<Arc<RouteTable>>,
    client: Client<HttpConnector, Incoming>,
}

fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The protocol a request asks to switch to (`Connection: upgrade` with `Upgrade`, e.g.
/// WebSocket), forwarded to the backend as upstream proxies do.
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// Copies bytes both ways between the client's and the backend's upgraded connections.
async fn splice(client: hyper::upgrade::OnUpgrade, backend: hyper::upgrade::OnUpgrade) {
    match tokio::try_join!(client, backend) {
        Ok((c, b)) => {
            let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
            if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut b).await {
                tracing::trace!(error = %e, "upgraded connection ended");
            }
        }
        Err(e) => tracing::debug!(error = %e, "connection upgrade failed"),
    }
}

impl Proxy {
    /// A handler routing through the current table of `routes`.
    pub fn new(routes: watch::Receiver<Arc<RouteTable>>) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Proxy { routes, client }
    }

    /// Routes and forwards one request.
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
        inbound: Inbound,
    ) -> Response<ProxyBody> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let table = self.routes.borrow().clone();
        let Some(backend) = table.route(&host, req.uri().path()) else {
            return text(StatusCode::NOT_FOUND, "default backend - 404\n");
        };
        let Some(addr) = backend.pick() else {
            tracing::debug!(backend = %backend.name, "no ready endpoints");
            return text(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable\n");
        };
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let Ok(uri) = format!("http://{addr}{path}").parse::<Uri>() else {
            return text(StatusCode::BAD_REQUEST, "400 Bad Request\n");
        };
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        let upgrade = upgrade_protocol(req.headers());
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let headers = req.headers_mut();
        strip_hop_by_hop(headers);
        if let Some(protocol) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol.clone());
        }
        if let Ok(h) = HeaderValue::from_str(&host) {
            headers.insert(header::HOST, h.clone());
            headers.insert("x-forwarded-host", h);
        }
        let client_ip = inbound.peer.ip().to_string();
        let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {client_ip}"),
            None => client_ip.clone(),
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
            headers.insert("x-forwarded-for", v);
        }
        if let Ok(v) = HeaderValue::from_str(&client_ip) {
            headers.insert("x-real-ip", v);
        }
        headers.insert(
            "x-forwarded-proto",
            HeaderValue::from_static(if inbound.tls { "https" } else { "http" }),
        );
        headers.insert("x-forwarded-port", HeaderValue::from(inbound.port));
        match self.client.request(req).await {
            Ok(mut resp) => {
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(client_side) = client_upgrade {
                        tokio::spawn(splice(client_side, hyper::upgrade::on(&mut resp)));
                        let (parts, body) = resp.into_parts();
                        return Response::from_parts(parts, body.boxed());
                    }
                }
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => {
                tracing::debug!(backend = %backend.name, %addr, error = %e, "backend request failed");
                text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n")
            }
        }
    }
}
