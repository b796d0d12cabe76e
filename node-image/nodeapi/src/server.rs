//! The node API server: a TLS listener with one thread per connection, and these routes for a
//! cluster admin's client certificate or the node's bearer token (see [`crate::cluster_tls`]):
//!
//! | route                              | answer                                          |
//! |------------------------------------|-------------------------------------------------|
//! | `GET /v1/status`                   | [`NodeHandler::status`] as JSON                 |
//! | `GET /v1/logs?since=N&source=S`    | ring-buffer lines after sequence `N` (JSON list) |
//! | `GET /v1/kubeconfig`               | the admin kubeconfig of a controller node       |
//! | `POST /v1/reboot`, `/v1/poweroff`  | 202, then init shuts down                       |
//! | `POST /v1/upgrade`                 | streamed bundle ([`crate::upgrade`]) written to the inactive root slot, verified; 202, then a trial boot of it |

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cluster_tls::admin_of;
use crate::error::NodeApiError;
use crate::http::{read_request_body, read_request_head, write_response, Request};
use crate::upgrade::{read_manifest, UpgradeManifest};

/// One log line as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Sequence number (pass the last one as `since` to follow).
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// `init`, `controller`, `kubelet`.
    pub source: String,
    /// Text.
    pub text: String,
}

/// Reboot or power off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerRequest {
    /// Reboot.
    Reboot,
    /// Power off.
    Poweroff,
}

/// What the server asks of the node (init implements it).
pub trait NodeHandler: Send + Sync + 'static {
    /// The node's status document.
    fn status(&self) -> serde_json::Value;
    /// Log lines after `since`, optionally of one source.
    fn logs(&self, since: u64, source: Option<&str>) -> Vec<LogEntry>;
    /// The cluster's admin kubeconfig, on a node that runs the controller.
    fn kubeconfig(&self) -> Option<String>;
    /// Start a reboot or power-off (returns before it happens).
    fn power(&self, action: PowerRequest) -> Result<(), String>;
    /// Write the bundle whose parts follow in `body` to the inactive slot, verify it and
    /// schedule a trial boot of it (then reboot). `Err((status, message))` on refusal.
    fn upgrade(
        &self,
        manifest: UpgradeManifest,
        body: &mut dyn std::io::Read,
    ) -> Result<serde_json::Value, (u16, String)> {
        let _ = (manifest, body);
        Err((404, "this node does not take upgrades".into()))
    }
}

/// Server settings.
#[derive(Clone)]
pub struct ServerSettings {
    /// TLS configuration (the node's certificate; with
    /// [`crate::cluster_tls::cluster_server_config`], client certificates of the cluster CA).
    pub tls: Arc<rustls::ServerConfig>,
    /// The bearer token clients without a client certificate must send (none: only cluster
    /// admins' client certificates are let in).
    pub token: Option<String>,
}

/// Binds `listen` and serves in a background thread; returns the bound address.
pub fn spawn(
    listen: SocketAddr,
    settings: ServerSettings,
    handler: Arc<dyn NodeHandler>,
) -> Result<SocketAddr, NodeApiError> {
    let listener = TcpListener::bind(listen).map_err(|source| NodeApiError::Net {
        peer: listen.to_string(),
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| NodeApiError::Net {
        peer: listen.to_string(),
        source,
    })?;
    std::thread::Builder::new()
        .name("node-api".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, h) = (settings.clone(), handler.clone());
                let _ = std::thread::Builder::new()
                    .name("node-api-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve_conn(conn, &s, h.as_ref()) {
                            tracing::debug!(error = %e, "node API connection");
                        }
                    });
            }
        })
        .map_err(|source| NodeApiError::Net {
            peer: listen.to_string(),
            source,
        })?;
    Ok(addr)
}

fn serve_conn(
    tcp: TcpStream,
    settings: &ServerSettings,
    handler: &dyn NodeHandler,
) -> Result<(), NodeApiError> {
    let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let net = |source| NodeApiError::Net {
        peer: peer.clone(),
        source,
    };
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(net)?;
    let mut tcp = tcp;
    let mut conn = rustls::ServerConnection::new(settings.tls.clone())?;
    let tls = rustls::Stream::new(&mut conn, &mut tcp);
    let mut r = std::io::BufReader::new(tls);
    let mut req = read_request_head(&mut r)?;
    let allowed = {
        let client_cert = r.get_ref().conn.peer_certificates().and_then(|c| c.first());
        authorize(&req, settings.token.as_deref(), client_cert)
    };
    let (status, body) = if let Err(refused) = allowed {
        refused
    } else if (req.method.as_str(), req.path.as_str()) == ("POST", "/v1/upgrade") {
        upgrade(&mut r, &req, handler)
    } else {
        read_request_body(&mut r, &mut req)?;
        route(&req, handler)
    };
    let tls = r.get_mut();
    write_response(tls, status, "application/json", &body).map_err(net)?;
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(tls.sock);
    Ok(())
}

/// `POST /v1/upgrade`: the body streams straight to the handler (it is far larger than any
/// other request).
fn upgrade<R: std::io::BufRead>(
    r: &mut R,
    req: &Request,
    handler: &dyn NodeHandler,
) -> (u16, Vec<u8>) {
    if req.header("content-length").is_none() {
        return json_error(411, "upgrade needs a Content-Length");
    }
    let manifest = match read_manifest(r) {
        Ok(m) => m,
        Err(e) => return json_error(400, &e),
    };
    let parts = manifest.body_len() - manifest.line().len() as u64;
    match handler.upgrade(manifest, r) {
        Ok(v) => (202, serde_json::to_vec(&v).unwrap_or_default()),
        Err((status, message)) => {
            // Read what the client is still sending, so it gets to see the answer.
            let _ = std::io::copy(&mut r.take(parts), &mut std::io::sink());
            json_error(status, &message)
        }
    }
}

/// A verified client certificate (it chains to the cluster CA, or the handshake failed) must
/// be a cluster admin's (403 otherwise); without one, the bearer token must match (401).
fn authorize(
    req: &Request,
    token: Option<&str>,
    client_cert: Option<&rustls::pki_types::CertificateDer<'_>>,
) -> Result<(), (u16, Vec<u8>)> {
    if let Some(cert) = client_cert {
        return match admin_of(cert) {
            Ok(_) => Ok(()),
            Err(why) => Err(json_error(403, &why)),
        };
    }
    match token {
        Some(token) if token_matches(req, token) => Ok(()),
        _ => Err(json_error(
            401,
            "missing or wrong bearer token (or no cluster admin client certificate)",
        )),
    }
}

/// Constant-time comparison of the presented token.
fn token_matches(req: &Request, token: &str) -> bool {
    let Some(got) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return false;
    };
    got.len() == token.len()
        && got
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn json_error(status: u16, message: &str) -> (u16, Vec<u8>) {
    (
        status,
        serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default(),
    )
}

/// Answers one authorized request.
fn route(req: &Request, handler: &dyn NodeHandler) -> (u16, Vec<u8>) {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v1/status") => ok_json(&handler.status()),
        ("GET", "/v1/logs") => {
            let since = match req.param("since").map(str::parse::<u64>) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => return json_error(400, "since must be a number"),
            };
            ok_json(&handler.logs(since, req.param("source")))
        }
        ("GET", "/v1/kubeconfig") => match handler.kubeconfig() {
            Some(k) => (200, k.into_bytes()),
            None => json_error(
                404,
                "no admin kubeconfig on this node (not a controller, or not started yet)",
            ),
        },
        ("POST", "/v1/reboot") | ("POST", "/v1/poweroff") => {
            let action = if req.path.ends_with("reboot") {
                PowerRequest::Reboot
            } else {
                PowerRequest::Poweroff
            };
            match handler.power(action) {
                Ok(()) => (
                    202,
                    serde_json::to_vec(&serde_json::json!({ "accepted": action }))
                        .unwrap_or_default(),
                ),
                Err(e) => json_error(500, &e),
            }
        }
        (
            _,
            "/v1/status" | "/v1/logs" | "/v1/kubeconfig" | "/v1/reboot" | "/v1/poweroff"
            | "/v1/upgrade",
        ) => json_error(405, "method not allowed"),
        _ => json_error(404, "no such route"),
    }
}

fn ok_json<T: Serialize>(v: &T) -> (u16, Vec<u8>) {
    (200, serde_json::to_vec(v).unwrap_or_default())
}
