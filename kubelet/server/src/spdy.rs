//! A server-side SPDY/3.1 connection, as much of it as upstream's streaming protocols use
//! (the framing of moby/spdystream, which client-go speaks): SYN_STREAM from the client,
//! SYN_REPLY, DATA with FIN, RST_STREAM, PING echo, GOAWAY; no flow control (spdystream
//! does none) and no server-initiated streams.
//!
//! Header blocks are zlib streams over the whole connection (one context per direction)
//! with the SPDY/3 preset dictionary (`spdy3_dictionary.bin`, the 1423 bytes of the SPDY/3
//! draft, section 2.6.10.1).

use std::collections::HashMap;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The SPDY/3 header compression dictionary.
pub const DICTIONARY: &[u8] = include_bytes!("spdy3_dictionary.bin");

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const FLAG_FIN: u8 = 1;
/// Largest frame payload accepted (spdystream writes at most 16 MiB - 1).
const MAX_FRAME: usize = 1 << 24;

/// Errors of a SPDY connection.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    /// Socket failure.
    #[error("spdy i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A header block that does not inflate or parse.
    #[error("spdy header block: {0}")]
    Headers(String),
    /// A frame this side cannot read.
    #[error("spdy protocol: {0}")]
    Protocol(String),
}

/// What the client did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new stream (already answered with SYN_REPLY), with its lower-cased headers.
    Stream {
        /// Stream id.
        id: u32,
        /// Headers.
        headers: Vec<(String, String)>,
        /// The client sent FIN with it (it will send nothing on it).
        fin: bool,
    },
    /// Data on a stream; `fin` ends the client's side of it.
    Data {
        /// Stream id.
        id: u32,
        /// Bytes.
        data: Bytes,
        /// Last frame from the client on this stream.
        fin: bool,
    },
    /// The client reset a stream.
    Reset {
        /// Stream id.
        id: u32,
    },
}

/// Something to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// DATA on a stream (`fin` closes our side).
    Data {
        /// Stream id.
        id: u32,
        /// Bytes.
        data: Bytes,
        /// Close our side.
        fin: bool,
    },
    /// RST_STREAM with a status code.
    Reset {
        /// Stream id.
        id: u32,
        /// Status (5 = CANCEL).
        status: u32,
    },
}

enum Write {
    Out(Out),
    Reply(u32),
    Ping(u32),
}

/// Inflates header blocks (one context for the connection).
pub struct HeaderReader(Decompress);

impl Default for HeaderReader {
    fn default() -> Self {
        HeaderReader(Decompress::new(true))
    }
}

impl HeaderReader {
    /// Inflates and parses one header block.
    pub fn read(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
        let mut out = Vec::with_capacity(block.len() * 4 + 256);
        let mut input = block;
        loop {
            let before = self.0.total_in();
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(1024));
            }
            match self
                .0
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| SpdyError::Headers(e.to_string()))?;
                }
                Err(e) => return Err(SpdyError::Headers(e.to_string())),
            }
            let used = (self.0.total_in() - before) as usize;
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        parse_header_block(&out)
    }
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// Parses an inflated header block: count, then (name, value) length-prefixed pairs;
/// values holding several NUL-separated values become several pairs.
pub fn parse_header_block(b: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
    let bad = || SpdyError::Headers("truncated header block".into());
    let n = be32(b).ok_or_else(bad)? as usize;
    let mut off = 4;
    let mut out = Vec::new();
    let take = |off: &mut usize| -> Result<String, SpdyError> {
        let len = be32(&b[(*off).min(b.len())..]).ok_or_else(bad)? as usize;
        *off += 4;
        let s = b.get(*off..*off + len).ok_or_else(bad)?;
        *off += len;
        Ok(String::from_utf8_lossy(s).into_owned())
    };
    for _ in 0..n {
        let name = take(&mut off)?.to_ascii_lowercase();
        let value = take(&mut off)?;
        for v in value.split('\0') {
            out.push((name.clone(), v.to_string()));
        }
    }
    Ok(out)
}

/// Deflates header blocks (one context for the connection).
pub struct HeaderWriter(Compress, bool);

impl Default for HeaderWriter {
    fn default() -> Self {
        HeaderWriter(Compress::new(Compression::default(), true), false)
    }
}

impl HeaderWriter {
    /// Encodes and deflates a header block.
    pub fn write(&mut self, headers: &[(&str, &str)]) -> Result<Vec<u8>, SpdyError> {
        if !self.1 {
            self.0
                .set_dictionary(DICTIONARY)
                .map_err(|e| SpdyError::Headers(e.to_string()))?;
            self.1 = true;
        }
        let mut raw = (headers.len() as u32).to_be_bytes().to_vec();
        for (k, v) in headers {
            for s in [k.to_ascii_lowercase().as_bytes(), v.as_bytes()] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s);
            }
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            let before = self.0.total_in();
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            self.0
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Headers(e.to_string()))?;
            input = &input[(self.0.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    f.extend_from_slice(&kind.to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

fn data_frame(id: u32, fin: bool, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + data.len());
    f.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
    f.push(if fin { FLAG_FIN } else { 0 });
    f.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(data);
    f
}

/// The sending half handed to the protocol on top.
#[derive(Clone)]
pub struct Sender(mpsc::UnboundedSender<Write>);

impl Sender {
    /// Queues a frame; `false` once the connection is gone.
    pub fn send(&self, out: Out) -> bool {
        self.0.send(Write::Out(out)).is_ok()
    }
}

/// Runs a server connection over `io`: returns the sender for frames and the receiver of
/// client events; the receiver ends when the connection does.
pub fn serve<T>(io: T) -> (Sender, mpsc::UnboundedReceiver<Event>)
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (wtx, mut wrx) = mpsc::unbounded_channel::<Write>();
    let (etx, erx) = mpsc::unbounded_channel::<Event>();
    tokio::spawn(async move {
        let mut headers = HeaderWriter::default();
        while let Some(w) = wrx.recv().await {
            let frame = match w {
                Write::Out(Out::Data { id, data, fin }) => {
                    // spdystream reads at most 16 MiB per frame; keep frames modest.
                    let mut frames = Vec::new();
                    let mut chunks = data.chunks(32 * 1024).peekable();
                    if chunks.peek().is_none() {
                        frames.extend(data_frame(id, fin, &[]));
                    }
                    while let Some(c) = chunks.next() {
                        frames.extend(data_frame(id, fin && chunks.peek().is_none(), c));
                    }
                    frames
                }
                Write::Out(Out::Reset { id, status }) => {
                    let mut p = id.to_be_bytes().to_vec();
                    p.extend_from_slice(&status.to_be_bytes());
                    control(RST_STREAM, 0, &p)
                }
                Write::Reply(id) => match headers.write(&[]) {
                    Ok(block) => {
                        let mut p = id.to_be_bytes().to_vec();
                        p.extend_from_slice(&block);
                        control(SYN_REPLY, 0, &p)
                    }
                    Err(_) => return,
                },
                Write::Ping(id) => control(PING, 0, &id.to_be_bytes()),
            };
            if wr.write_all(&frame).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let reply = wtx.clone();
    tokio::spawn(async move {
        if let Err(e) = read_loop(&mut rd, &reply, &etx).await {
            tracing::debug!(error = %e, "spdy connection ended");
        }
    });
    (Sender(wtx), erx)
}

async fn read_loop<R: AsyncRead + Unpin>(
    rd: &mut R,
    reply: &mpsc::UnboundedSender<Write>,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<(), SpdyError> {
    let mut headers = HeaderReader::default();
    let mut open: HashMap<u32, ()> = HashMap::new();
    loop {
        let mut head = [0u8; 8];
        match rd.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let flags = head[4];
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        if len > MAX_FRAME {
            return Err(SpdyError::Protocol(format!("frame of {len} bytes")));
        }
        let mut payload = vec![0u8; len];
        rd.read_exact(&mut payload).await?;
        if head[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
            let _ = events.send(Event::Data {
                id,
                data: Bytes::from(payload),
                fin: flags & FLAG_FIN != 0,
            });
            continue;
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let id = be32(&payload).unwrap_or(0) & 0x7fff_ffff;
        match kind {
            SYN_STREAM => {
                let block = payload.get(10..).unwrap_or(&[]);
                let h = headers.read(block)?;
                open.insert(id, ());
                let _ = reply.send(Write::Reply(id));
                let _ = events.send(Event::Stream {
                    id,
                    headers: h,
                    fin: flags & FLAG_FIN != 0,
                });
            }
            SYN_REPLY | HEADERS => {
                // Keep the inflater in step even though this side does not use them.
                headers.read(payload.get(4..).unwrap_or(&[]))?;
            }
            RST_STREAM => {
                open.remove(&id);
                let _ = events.send(Event::Reset { id });
            }
            PING => {
                let _ = reply.send(Write::Ping(be32(&payload).unwrap_or(0)));
            }
            GOAWAY => return Ok(()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_spdy3s() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert!(DICTIONARY.starts_with(b"\0\0\0\x07options"));
    }

    #[test]
    fn header_blocks_round_trip_over_one_context() {
        let mut w = HeaderWriter::default();
        let mut r = HeaderReader::default();
        for i in 0..3 {
            let port = format!("80{i}");
            let block = w
                .write(&[("streamType", "data"), ("port", &port), ("requestID", "0")])
                .unwrap();
            let h = r.read(&block).unwrap();
            assert_eq!(
                h,
                vec![
                    ("streamtype".to_string(), "data".to_string()),
                    ("port".to_string(), port),
                    ("requestid".to_string(), "0".to_string()),
                ]
            );
        }
        assert_eq!(r.read(&w.write(&[]).unwrap()).unwrap(), vec![]);
    }

    #[tokio::test]
    async fn answers_syn_stream_and_ping_and_passes_data() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (tx, mut events) = serve(server);
        let (mut crd, mut cwr) = tokio::io::split(client);
        let mut hw = HeaderWriter::default();
        let block = hw.write(&[("streamtype", "error")]).unwrap();
        let mut p = 1u32.to_be_bytes().to_vec();
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&block);
        cwr.write_all(&control(SYN_STREAM, 0, &p)).await.unwrap();
        cwr.write_all(&control(PING, 0, &7u32.to_be_bytes()))
            .await
            .unwrap();
        cwr.write_all(&data_frame(1, true, b"hi")).await.unwrap();
        match events.recv().await.unwrap() {
            Event::Stream { id: 1, headers, .. } => {
                assert_eq!(headers, vec![("streamtype".into(), "error".into())])
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(
            events.recv().await.unwrap(),
            Event::Data {
                id: 1,
                data: Bytes::from_static(b"hi"),
                fin: true
            }
        );
        tx.send(Out::Data {
            id: 1,
            data: Bytes::from_static(b"yo"),
            fin: true,
        });
        // SYN_REPLY (with a deflated empty block), PING echo, DATA.
        let mut head = [0u8; 8];
        crd.read_exact(&mut head).await.unwrap();
        assert_eq!(&head[..4], &[0x80, 3, 0, 2]);
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        let mut body = vec![0u8; len];
        crd.read_exact(&mut body).await.unwrap();
        assert_eq!(be32(&body), Some(1));
        assert_eq!(HeaderReader::default().read(&body[4..]).unwrap(), vec![]);
        let mut ping = [0u8; 12];
        crd.read_exact(&mut ping).await.unwrap();
        assert_eq!(&ping[..4], &[0x80, 3, 0, 6]);
        assert_eq!(&ping[8..], &7u32.to_be_bytes());
        let mut data = [0u8; 10];
        crd.read_exact(&mut data).await.unwrap();
        assert_eq!(&data, &[0, 0, 0, 1, 1, 0, 0, 2, b'y', b'o']);
    }
}
