//! grpc probes (upstream `pkg/probe/grpc`): one unary `grpc.health.v1.Health/Check` call
//! over HTTP/2 (h2c, no TLS, as upstream) on a connection made in the pod's network
//! namespace. The call is written by hand over hyper's HTTP/2 client: the request and
//! response are one-field protobuf messages, so a gRPC stack (tonic + prost + codegen) would
//! add a large dependency tree for ~40 lines of framing.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::run::{dial, ProbeTarget};
use super::ProbeResult;

/// The health service's method path.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// `HealthCheckResponse.ServingStatus` names.
fn serving_status_name(n: u64) -> &'static str {
    match n {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// gRPC status code names (for failure messages).
fn code_name(c: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES.get(c as usize).copied().unwrap_or("Unknown")
}

/// The length-prefixed gRPC message of `HealthCheckRequest { service }`.
pub fn encode_request(service: &str) -> Bytes {
    let mut msg = BytesMut::new();
    if !service.is_empty() {
        msg.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.put_slice(service.as_bytes());
    }
    let mut out = BytesMut::with_capacity(5 + msg.len());
    out.put_u8(0); // not compressed
    out.put_u32(msg.len() as u32);
    out.put_slice(&msg);
    out.freeze()
}

fn put_varint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The `status` of a length-prefixed `HealthCheckResponse` (0 when absent, as proto3).
pub fn decode_response(body: &[u8]) -> Option<u64> {
    if body.len() < 5 || body[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let msg = body.get(5..5 + len)?;
    let mut i = 0;
    let mut status = 0;
    while i < msg.len() {
        let key = varint(msg, &mut i)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = varint(msg, &mut i)?,
            (_, 0) => {
                varint(msg, &mut i)?;
            }
            (_, 2) => {
                let n = varint(msg, &mut i)? as usize;
                i = i.checked_add(n)?;
            }
            (_, 1) => i += 8,
            (_, 5) => i += 4,
            _ => return None,
        }
    }
    Some(status)
}

/// Runs a grpc probe against `addr` for `service`.
pub async fn probe(addr: SocketAddr, service: &str, t: &ProbeTarget) -> (ProbeResult, String) {
    match tokio::time::timeout(t.timeout, check(addr, service, t)).await {
        Ok(Ok(1)) => (ProbeResult::Success, String::new()),
        Ok(Ok(s)) => (
            ProbeResult::Failure,
            format!(
                "service unhealthy (responded with \"{}\")",
                serving_status_name(s)
            ),
        ),
        Ok(Err(m)) => (ProbeResult::Failure, m),
        Err(_) => (
            ProbeResult::Failure,
            format!(
                "timeout: health rpc did not complete within {:?}",
                t.timeout
            ),
        ),
    }
}

async fn check(addr: SocketAddr, service: &str, t: &ProbeTarget) -> Result<u64, String> {
    let stream = dial(t, addr).await.map_err(|e| {
        format!(
            "timeout: failed to connect service {addr:?} within {:?}: {e}",
            t.timeout
        )
    })?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("error: failed to connect service at {addr:?}: {e}"))?;
    let conn = tokio::spawn(conn);
    let req = http::Request::post(format!("http://{addr}{CHECK_PATH}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .header(http::header::USER_AGENT, super::http::USER_AGENT)
        .body(Full::new(encode_request(service)))
        .map_err(|e| e.to_string())?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("error: health rpc probe failed: {e}"))?;
        if resp.status() != http::StatusCode::OK {
            return Err(format!(
                "error: health rpc probe failed: HTTP status {}",
                resp.status()
            ));
        }
        let headers = resp.headers().clone();
        let collected = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("error: health rpc probe failed: {e}"))?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let grpc_status = trailers
            .get("grpc-status")
            .or_else(|| headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(2);
        if grpc_status != 0 {
            let msg = trailers
                .get("grpc-message")
                .or_else(|| headers.get("grpc-message"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            return Err(format!(
                "error: health rpc probe failed: rpc error: code = {} desc = {msg}",
                code_name(grpc_status)
            ));
        }
        decode_response(&collected.to_bytes())
            .ok_or_else(|| "error: health rpc probe failed: malformed response".to_string())
    }
    .await;
    conn.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_framing() {
        assert_eq!(&encode_request("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &encode_request("ab")[..],
            &[0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(decode_response(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(decode_response(&[0, 0, 0, 0, 9]), None);
    }
}
