//! Remote command sessions over SPDY/3.1 (`v4.channel.k8s.io` and older names as stream
//! protocol), what kubectl before 1.30 speaks (and later ones fall back to): one SPDY stream
//! per standard stream, named by the `streamType` header; the status JSON on the `error`
//! stream, as on the WebSocket error channel.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::session::{Chunk, StreamOptions};
use crate::spdy::{self, Event, Out};
use crate::ws::channel;

/// Stream protocols accepted in `X-Stream-Protocol-Version`, preferred first.
pub const PROTOCOLS: [&str; 1] = ["v4.channel.k8s.io"];

/// How long the client has to open every stream it asked for (upstream: 30 s).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

fn stream_channel(kind: &str) -> Option<u8> {
    Some(match kind {
        "stdin" => channel::STDIN,
        "stdout" => channel::STDOUT,
        "stderr" => channel::STDERR,
        "error" => channel::ERROR,
        "resize" => channel::RESIZE,
        _ => return None,
    })
}

/// Bridges a SPDY connection to a session: waits for the streams `opts` implies, then
/// moves data between them and the session's channels until the session ends.
pub async fn bridge<T>(
    io: T,
    opts: StreamOptions,
    out: mpsc::Receiver<Chunk>,
    inbound: mpsc::Sender<Chunk>,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (tx, mut events) = spdy::serve(io);
    let mut wanted = vec![channel::ERROR];
    for (on, ch) in [
        (opts.stdin, channel::STDIN),
        (opts.stdout, channel::STDOUT),
        (opts.stderr && !opts.tty, channel::STDERR),
        (opts.tty, channel::RESIZE),
    ] {
        if on {
            wanted.push(ch);
        }
    }
    let mut ids: HashMap<u8, u32> = HashMap::new();
    let mut early: Vec<Event> = Vec::new();
    let collect = async {
        while ids.len() < wanted.len() {
            match events.recv().await {
                Some(Event::Stream { id, headers, .. }) => {
                    let kind = headers
                        .iter()
                        .find(|(k, _)| k == "streamtype")
                        .map(|(_, v)| v.as_str())
                        .unwrap_or_default();
                    match stream_channel(kind) {
                        Some(ch) => {
                            ids.insert(ch, id);
                        }
                        None => {
                            tx.send(Out::Reset { id, status: 1 });
                        }
                    }
                }
                Some(other) => early.push(other),
                None => return false,
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(STREAM_CREATION_TIMEOUT, collect).await,
        Ok(true)
    ) {
        tracing::debug!("spdy client did not open its streams");
        return;
    }
    let by_id: HashMap<u32, u8> = ids.iter().map(|(c, i)| (*i, *c)).collect();
    let input = tokio::spawn(async move {
        let mut resize_buf: Vec<u8> = Vec::new();
        let mut pending = early.into_iter();
        loop {
            let ev = match pending.next() {
                Some(e) => e,
                None => match events.recv().await {
                    Some(e) => e,
                    None => return,
                },
            };
            let Event::Data { id, data, fin } = ev else {
                continue;
            };
            match by_id.get(&id) {
                Some(&channel::STDIN) => {
                    if !data.is_empty() && inbound.send((channel::STDIN, data)).await.is_err() {
                        return;
                    }
                    if fin {
                        let close = Bytes::from_static(&[channel::STDIN]);
                        let _ = inbound.send((channel::CLOSE, close)).await;
                    }
                }
                Some(&channel::RESIZE) => {
                    // A stream of concatenated JSON objects.
                    resize_buf.extend_from_slice(&data);
                    let mut it = serde_json::Deserializer::from_slice(&resize_buf)
                        .into_iter::<serde_json::Value>();
                    let mut consumed = 0;
                    let mut sizes = Vec::new();
                    while let Some(Ok(v)) = it.next() {
                        consumed = it.byte_offset();
                        sizes.push(v);
                    }
                    resize_buf.drain(..consumed);
                    for v in sizes {
                        let b = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
                        let _ = inbound.send((channel::RESIZE, b)).await;
                    }
                }
                _ => {}
            }
        }
    });
    let mut out = out;
    while let Some((ch, data)) = out.recv().await {
        if let Some(&id) = ids.get(&ch) {
            if !tx.send(Out::Data {
                id,
                data,
                fin: false,
            }) {
                break;
            }
        }
    }
    for ch in [channel::STDOUT, channel::STDERR, channel::ERROR] {
        if let Some(&id) = ids.get(&ch) {
            tx.send(Out::Data {
                id,
                data: Bytes::new(),
                fin: true,
            });
        }
    }
    // The client closes the connection once it has read every stream to its end.
    let _ = tokio::time::timeout(Duration::from_secs(5), input).await;
}
