//! The WebSocket side of remote command streams: the handshake and upstream's channel
//! protocols (`v5.channel.k8s.io`, `v4.channel.k8s.io`): every binary message starts with
//! one byte naming its stream.

use http::{header, HeaderMap, HeaderValue, StatusCode};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// Stream ids of the channel protocols.
pub mod channel {
    /// The process's standard input (client to server).
    pub const STDIN: u8 = 0;
    /// Standard output.
    pub const STDOUT: u8 = 1;
    /// Standard error.
    pub const STDERR: u8 = 2;
    /// The final `Status` (JSON).
    pub const ERROR: u8 = 3;
    /// Terminal size changes (JSON `{"Width":..,"Height":..}`, client to server).
    pub const RESIZE: u8 = 4;
    /// v5 only: `[255, stream]` closes that stream (stdin end of file).
    pub const CLOSE: u8 = 255;
}

/// `v5.channel.k8s.io`: v4 plus the CLOSE signal (kubectl 1.30+).
pub const V5: &str = "v5.channel.k8s.io";
/// `v4.channel.k8s.io`: status JSON on the error channel, resize channel.
pub const V4: &str = "v4.channel.k8s.io";
/// Remote command protocols, preferred first.
pub const REMOTE_COMMAND_PROTOCOLS: [&str; 2] = [V5, V4];

/// A server-side WebSocket over a hyper-upgraded connection.
pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// Whether the request asks for a WebSocket upgrade.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The first protocol the client offers that `supported` has (clients list theirs by
/// preference in `Sec-WebSocket-Protocol`).
pub fn negotiate(headers: &HeaderMap, supported: &[&'static str]) -> Option<&'static str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| supported.iter().find(|s| **s == p).copied())
}

/// The `101 Switching Protocols` answer accepting the upgrade with `protocol`, or `None`
/// when the request lacks a key.
pub fn accept<B: Default>(headers: &HeaderMap, protocol: &str) -> Option<http::Response<B>> {
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let mut resp = http::Response::new(B::default());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&derive_accept_key(key.as_bytes())).ok()?,
    );
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(protocol).ok()?,
    );
    Some(resp)
}

/// Wraps the upgraded connection as a server WebSocket.
pub async fn server_socket(upgraded: Upgraded) -> Ws {
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await
}

/// A binary message on `stream`.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(stream);
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_clients_first_supported_protocol() {
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v5.channel.k8s.io, v4.channel.k8s.io, channel.k8s.io"),
        );
        assert_eq!(negotiate(&h, &REMOTE_COMMAND_PROTOCOLS), Some(V5));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("base64.channel.k8s.io, v4.channel.k8s.io"),
        );
        assert_eq!(negotiate(&h, &REMOTE_COMMAND_PROTOCOLS), Some(V4));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("channel.k8s.io"),
        );
        assert_eq!(negotiate(&h, &REMOTE_COMMAND_PROTOCOLS), None);
    }

    #[test]
    fn accept_key_as_rfc6455() {
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        let r: http::Response<()> = accept(&h, V5).unwrap();
        assert_eq!(r.status(), 101);
        assert_eq!(
            r.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
