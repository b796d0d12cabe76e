//! Length-prefixed JSON frames over a Unix stream socket, with file descriptors passed as
//! `SCM_RIGHTS` alongside the first bytes of a frame (exec stdio, exec exit pipes).
//!
//! A frame is a 4-byte big-endian length then that many bytes of JSON. The same primitives
//! serve the blocking helper and the non-blocking async client.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest frame accepted (a `List` of a few thousand containers fits).
pub const MAX_FRAME: usize = 16 << 20;
/// Most descriptors one frame may carry.
pub const MAX_FDS: usize = 4;

/// Errors of frame encoding and transport.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("runtime socket: {0}")]
    Io(#[from] std::io::Error),
    /// The JSON did not match the protocol.
    #[error("runtime protocol: {0}")]
    Json(#[from] serde_json::Error),
    /// A frame announced more than [`MAX_FRAME`] bytes.
    #[error("runtime frame of {0} bytes is too large")]
    TooLarge(usize),
    /// The peer closed the connection in the middle of a frame.
    #[error("runtime peer closed the connection mid-frame")]
    Truncated,
}

/// A received frame: its JSON body and the descriptors that came with it.
pub type Frame = (Vec<u8>, Vec<OwnedFd>);

/// Serializes a message into a frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parses a frame body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    Ok(serde_json::from_slice(body)?)
}

/// One `sendmsg`: the bytes, and `fds` when non-empty. Returns how many bytes went out.
pub fn send_some(fd: RawFd, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<usize> {
    let iov = [IoSlice::new(bytes)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).map_err(std::io::Error::from)
}

/// One `recvmsg` into `buf`, collecting passed descriptors (close-on-exec) into `fds`.
/// Returns the byte count (0 at end of stream).
pub fn recv_some(fd: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> std::io::Result<usize> {
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        fd,
        &mut iov,
        Some(&mut cmsg_space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = c {
            for raw in received {
                // SAFETY: the kernel just installed `raw` in our table for us alone.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    Ok(msg.bytes)
}

/// Reassembles frames from `recv_some` chunks (shared by the blocking and async readers),
/// giving each frame the descriptors that were sent with it, also when several frames are
/// in flight on the connection.
///
/// A Unix stream read ends right after a message that carries descriptors (Linux's
/// `unix_stream_read_generic` stops after the skb whose descriptors it detached, and hands
/// them over with the first read that reaches that skb). Descriptors go out with the first
/// bytes of their frame, so the descriptors of a read belong to the frame that holds the
/// last byte of that read.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    start: u64,
    /// Descriptors received, each with the stream offset of the last byte of its read.
    fds: Vec<(u64, OwnedFd)>,
}

impl FrameReader {
    /// Takes a complete frame out of the buffer, with the descriptors sent with it.
    pub fn take_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        self.start += (4 + len) as u64;
        let end = self.start;
        let mine = self.fds.iter().take_while(|(at, _)| *at < end).count();
        let fds = self.fds.drain(..mine).map(|(_, fd)| fd).collect();
        Ok(Some((body, fds)))
    }

    /// Reads once from `fd` (blocking or not); `Ok(false)` at end of stream.
    pub fn fill(&mut self, fd: RawFd) -> std::io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let mut got = Vec::new();
        let n = recv_some(fd, &mut chunk, &mut got)?;
        self.buf.extend_from_slice(&chunk[..n]);
        if !got.is_empty() {
            let last = self.start + self.buf.len() as u64 - 1;
            self.fds.extend(got.into_iter().map(|f| (last, f)));
        }
        Ok(n > 0)
    }

    /// Whether a complete frame is buffered.
    pub fn has_frame(&self) -> bool {
        self.buf.len() >= 4
            && self.buf.len()
                >= 4 + u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize
    }

    /// Whether a partial frame is buffered.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// Blocking: sends a whole frame, descriptors with its first bytes.
pub fn send_blocking(fd: &impl AsRawFd, frame: &[u8], fds: &[RawFd]) -> Result<(), FrameError> {
    let mut off = 0;
    let mut pass = fds;
    while off < frame.len() {
        match send_some(fd.as_raw_fd(), &frame[off..], pass) {
            Ok(n) => {
                off += n;
                pass = &[];
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Blocking: receives one frame; `None` when the peer closed cleanly between frames.
pub fn recv_blocking(
    fd: &impl AsRawFd,
    reader: &mut FrameReader,
) -> Result<Option<Frame>, FrameError> {
    loop {
        if let Some(f) = reader.take_frame()? {
            return Ok(Some(f));
        }
        match reader.fill(fd.as_raw_fd()) {
            Ok(true) => {}
            Ok(false) if reader.has_partial() => return Err(FrameError::Truncated),
            Ok(false) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn frames_carry_json_and_descriptors() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut pr, pw) = std::io::pipe().unwrap();
        let msg = serde_json::json!({"op": "state", "id": "x".repeat(40_000)});
        send_blocking(&a, &encode(&msg).unwrap(), &[pw.as_raw_fd()]).unwrap();
        send_blocking(
            &a,
            &encode(&serde_json::json!({"op": "list"})).unwrap(),
            &[],
        )
        .unwrap();
        drop(pw);
        let mut reader = FrameReader::default();
        let (body, fds) = recv_blocking(&b, &mut reader).unwrap().unwrap();
        assert_eq!(decode::<serde_json::Value>(&body).unwrap(), msg);
        assert_eq!(fds.len(), 1);
        let (body, fds) = recv_blocking(&b, &mut reader).unwrap().unwrap();
        assert_eq!(decode::<serde_json::Value>(&body).unwrap()["op"], "list");
        assert!(fds.is_empty());
        let _ = &mut pr;
    }

    #[test]
    fn frames_in_flight_each_get_their_own_descriptors() {
        let (a, b) = UnixStream::pair().unwrap();
        let (_r1, w1) = std::io::pipe().unwrap();
        let (_r2, w2) = std::io::pipe().unwrap();
        let (_r3, w3) = std::io::pipe().unwrap();
        let ino = |fd: RawFd| nix::sys::stat::fstat(fd).unwrap().st_ino;
        // Queued before the reader reads anything: a frame without descriptors, two with.
        send_blocking(&a, &encode(&0u8).unwrap(), &[]).unwrap();
        send_blocking(&a, &encode(&1u8).unwrap(), &[w1.as_raw_fd()]).unwrap();
        send_blocking(
            &a,
            &encode(&2u8).unwrap(),
            &[w2.as_raw_fd(), w3.as_raw_fd()],
        )
        .unwrap();
        send_blocking(&a, &encode(&3u8).unwrap(), &[]).unwrap();
        let mut reader = FrameReader::default();
        let mut got = Vec::new();
        while let Some((body, fds)) = recv_blocking(&b, &mut reader).unwrap() {
            let inos: Vec<u64> = fds.iter().map(|f| ino(f.as_raw_fd())).collect();
            got.push((decode::<u8>(&body).unwrap(), inos));
            if got.len() == 4 {
                break;
            }
        }
        let want = vec![
            (0, vec![]),
            (1, vec![ino(w1.as_raw_fd())]),
            (2, vec![ino(w2.as_raw_fd()), ino(w3.as_raw_fd())]),
            (3, vec![]),
        ];
        assert_eq!(got, want);
        assert!(!reader.has_frame() && !reader.has_partial());
    }

    #[test]
    fn passed_pipe_end_works_and_eof_and_truncation_are_told_apart() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut pr, pw) = std::io::pipe().unwrap();
        send_blocking(&a, &encode(&1u8).unwrap(), &[pw.as_raw_fd()]).unwrap();
        drop(pw);
        let mut reader = FrameReader::default();
        let (_, mut fds) = recv_blocking(&b, &mut reader).unwrap().unwrap();
        let mut w = std::fs::File::from(fds.pop().unwrap());
        w.write_all(b"through").unwrap();
        drop(w);
        let mut got = String::new();
        pr.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through");
        // Half a frame then close: truncated; nothing then close: clean end.
        (&a).write_all(&[0, 0, 0, 9, b'{']).unwrap();
        drop(a);
        assert!(matches!(
            recv_blocking(&b, &mut reader),
            Err(FrameError::Truncated)
        ));
        let (c, d) = UnixStream::pair().unwrap();
        drop(c);
        assert!(recv_blocking(&d, &mut FrameReader::default())
            .unwrap()
            .is_none());
    }
}
