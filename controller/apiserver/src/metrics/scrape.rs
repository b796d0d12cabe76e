//! Reading a kubelet's Summary (`/stats/summary?only_cpu_and_memory=true`) over the same
//! authenticated TLS hop the streaming proxy uses.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::state::ApiState;
use crate::streaming::{dial, kubelet_addr, KubeletTarget};

/// How long one kubelet may take to answer (metrics-server's default scrape timeout).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The Summary of node `node`'s kubelet.
pub async fn summary(state: &ApiState, node: &str) -> Result<Value, String> {
    let target = KubeletTarget {
        addr: kubelet_addr(state, node).map_err(|s| s.message)?,
        path_and_query: "/stats/summary?only_cpu_and_memory=true".into(),
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, fetch(state, &target))
        .await
        .map_err(|_| format!("kubelet {}: scrape timed out", target.addr))?
}

async fn fetch(state: &ApiState, target: &KubeletTarget) -> Result<Value, String> {
    let tls = dial(state, target).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("kubelet {}: {e}", target.addr))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::builder()
        .method(http::Method::GET)
        .uri(target.path_and_query.as_str())
        .header(http::header::HOST, target.addr.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("kubelet {}: {e}", target.addr))?;
    let code = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("kubelet {}: {e}", target.addr))?
        .to_bytes();
    if !code.is_success() {
        return Err(format!(
            "kubelet {}: {code}: {}",
            target.addr,
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("kubelet {}: summary: {e}", target.addr))
}
