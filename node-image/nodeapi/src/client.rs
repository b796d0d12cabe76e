//! The node API client (`bramble node ...`).

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::cluster_tls::cluster_client_config;
use crate::error::NodeApiError;
use crate::http::{read_response, write_request, write_request_head};
use crate::server::{LogEntry, PowerRequest};
use crate::tls::client_config;
use crate::upgrade::UpgradeManifest;

/// A connection target: address and credentials (a token with a pinned certificate, or a
/// cluster admin's client certificate with the cluster CA).
pub struct NodeClient {
    addr: String,
    token: String,
    tls: Arc<rustls::ClientConfig>,
}

impl NodeClient {
    /// A client for `addr` (`host:port`). `fingerprint` pins the node's certificate (SHA-256
    /// hex, as init prints it); `None` accepts any certificate.
    pub fn new(addr: &str, token: &str, fingerprint: Option<&str>) -> Result<Self, NodeApiError> {
        Ok(NodeClient {
            addr: addr.to_string(),
            token: token.to_string(),
            tls: client_config(fingerprint)?,
        })
    }

    /// A client for `addr` that verifies the node against the cluster CA `ca_pem` and presents
    /// a cluster admin's client certificate (`cert_pem`, `key_pem`: an admin kubeconfig's).
    pub fn with_client_cert(
        addr: &str,
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<Self, NodeApiError> {
        Ok(NodeClient {
            addr: addr.to_string(),
            token: String::new(),
            tls: cluster_client_config(ca_pem, cert_pem, key_pem)?,
        })
    }

    fn call(&self, method: &str, target: &str) -> Result<Vec<u8>, NodeApiError> {
        self.exchange(Duration::from_secs(30), |tls, addr, token| {
            write_request(tls, method, addr, target, token, b"")
        })
    }

    /// One request: `send` writes it on the TLS stream; the response is read with `timeout`.
    fn exchange(
        &self,
        timeout: Duration,
        send: impl FnOnce(&mut dyn std::io::Write, &str, &str) -> std::io::Result<()>,
    ) -> Result<Vec<u8>, NodeApiError> {
        let net = |source| NodeApiError::Net {
            peer: self.addr.clone(),
            source,
        };
        let mut tcp = TcpStream::connect(&self.addr).map_err(net)?;
        tcp.set_read_timeout(Some(timeout)).map_err(net)?;
        let host = self
            .addr
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']))
            .unwrap_or(&self.addr)
            .to_string();
        let name = ServerName::try_from(host.clone())
            .map_err(|e| NodeApiError::Http(format!("server name {host}: {e}")))?;
        let mut conn = rustls::ClientConnection::new(self.tls.clone(), name)?;
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        send(&mut tls, &self.addr, &self.token).map_err(net)?;
        let (status, body) = read_response(&mut tls)?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(NodeApiError::Status { status, message });
        }
        Ok(body)
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<serde_json::Value, NodeApiError> {
        Ok(serde_json::from_slice(&self.call("GET", "/v1/status")?)?)
    }

    /// `GET /v1/logs`: lines after `since`, optionally of one source.
    pub fn logs(&self, since: u64, source: Option<&str>) -> Result<Vec<LogEntry>, NodeApiError> {
        let mut target = format!("/v1/logs?since={since}");
        if let Some(s) = source {
            target.push_str("&source=");
            target.push_str(s);
        }
        Ok(serde_json::from_slice(&self.call("GET", &target)?)?)
    }

    /// `GET /v1/kubeconfig`: the admin kubeconfig of a controller node.
    pub fn kubeconfig(&self) -> Result<String, NodeApiError> {
        Ok(String::from_utf8_lossy(&self.call("GET", "/v1/kubeconfig")?).into_owned())
    }

    /// `POST /v1/reboot` or `/v1/poweroff`.
    pub fn power(&self, action: PowerRequest) -> Result<(), NodeApiError> {
        let path = match action {
            PowerRequest::Reboot => "/v1/reboot",
            PowerRequest::Poweroff => "/v1/poweroff",
        };
        self.call("POST", path).map(|_| ())
    }

    /// `POST /v1/upgrade`: stream the bundle (`manifest`, then each part's bytes from `parts`
    /// in manifest order: boot files, then the root). Returns the node's answer (slot written).
    pub fn upgrade(
        &self,
        manifest: &UpgradeManifest,
        parts: &mut [&mut dyn std::io::Read],
    ) -> Result<serde_json::Value, NodeApiError> {
        let len = manifest.body_len();
        let body = self.exchange(
            // Writing and read-back verification of the slot on an SD card take a while.
            Duration::from_secs(900),
            |tls, addr, token| {
                write_request_head(tls, "POST", addr, "/v1/upgrade", token, len)?;
                tls.write_all(&manifest.line())?;
                let sizes = manifest.files.iter().chain([&manifest.root]);
                for (part, size) in parts.iter_mut().zip(sizes.map(|p| p.size)) {
                    let n = std::io::copy(&mut part.take(size), tls)?;
                    if n != size {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("a bundle part ended after {n} of {size} bytes"),
                        ));
                    }
                }
                tls.flush()
            },
        )?;
        Ok(serde_json::from_slice(&body)?)
    }
}
