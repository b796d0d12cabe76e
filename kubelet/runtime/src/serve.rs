//! The runtime helper's request loop: reads [`Request`]s from the kubelet's connection, has
//! the [`Helper`] handle them one at a time, in order, and writes the answers in the same
//! order.
//!
//! Answers are held back while more requests are already waiting: the kubelet pipelines
//! its requests ([`crate::RuntimeClient`]), so a second's burst of exec probes arrives at
//! once, and its answers then go out together (at most [`MAX_HELD`] at a time). The kubelet
//! wakes once for a batch instead of once per exec, and by the time it reads an answer the
//! exec has mostly exited, so its output and exit status are there without waiting. Any
//! request other than a direct exec first sends what is held, so a slow one (a create)
//! never delays an exec's answer; nothing is held while the helper waits for input.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::frame::{decode, encode, recv_blocking, send_blocking, FrameError, FrameReader};
use crate::helper::{Helper, HelperConfig, HelperError};
use crate::protocol::{ErrorKind, Request, Response};

/// Most answers held back at once (a batch the kubelet reads in one wake-up).
const MAX_HELD: usize = 16;

/// Serves requests on `conn` until the peer closes it. Call only in a single-threaded
/// process: requests fork shims, and libcontainer forks and clones.
pub fn serve(conn: OwnedFd, cfg: HelperConfig) -> Result<(), HelperError> {
    let mut helper = Helper::new(cfg)?;
    let mut reader = FrameReader::default();
    let mut held: Vec<(Vec<u8>, Vec<OwnedFd>)> = Vec::new();
    loop {
        // Before sleeping for the next request, answer the ones handled.
        if !reader.has_frame() && !queued(&conn)? {
            flush(&conn, &mut held)?;
        }
        let Some((body, fds)) = recv_blocking(&conn, &mut reader)? else {
            flush(&conn, &mut held)?;
            return Ok(());
        };
        let (resp, out_fds) = match decode::<Request>(&body) {
            Ok(req) => {
                let exec = matches!(req, Request::ExecDirect { .. });
                if !exec {
                    flush(&conn, &mut held)?;
                }
                let _span =
                    tracing::debug_span!("runtime_request", op = ?std::mem::discriminant(&req))
                        .entered();
                match helper.handle(req, fds) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "runtime request failed");
                        (
                            Response::Error {
                                kind: e.kind(),
                                message: e.to_string(),
                            },
                            Vec::new(),
                        )
                    }
                }
            }
            Err(e) => (
                Response::Error {
                    kind: ErrorKind::Invalid,
                    message: e.to_string(),
                },
                Vec::new(),
            ),
        };
        held.push((encode(&resp)?, out_fds));
        if held.len() >= MAX_HELD {
            flush(&conn, &mut held)?;
        }
    }
}

/// Whether `conn` has bytes (or its end) to read now.
fn queued(conn: &OwnedFd) -> Result<bool, HelperError> {
    let mut ready = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(conn),
        nix::poll::PollFlags::POLLIN,
    )];
    loop {
        match nix::poll::poll(&mut ready, nix::poll::PollTimeout::ZERO) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(FrameError::Io(e.into()).into()),
        }
    }
}

/// Writes the held answers, in order.
fn flush(conn: &OwnedFd, held: &mut Vec<(Vec<u8>, Vec<OwnedFd>)>) -> Result<(), HelperError> {
    for (frame, fds) in held.drain(..) {
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        send_blocking(conn, &frame, &raw)?;
    }
    Ok(())
}
