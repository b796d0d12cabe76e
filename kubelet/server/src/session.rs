//! Remote command sessions (`exec`, `attach`) independent of the transport: the transport
//! adapter ([`crate::ws`] pumping) turns its frames into `(stream, bytes)` pairs both ways.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use bramble_runtime::{attach, ContainerRuntime, ExecConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fdio::{self, AsyncFdIo};
use crate::ws::channel;

/// A `(stream id, data)` pair crossing the transport.
pub type Chunk = (u8, Bytes);

/// Which streams the client asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// Client sends standard input.
    pub stdin: bool,
    /// Client wants standard output.
    pub stdout: bool,
    /// Client wants standard error (never with a tty).
    pub stderr: bool,
    /// Allocate a terminal.
    pub tty: bool,
}

/// How long the output of a process that has exited may still drain (a background child
/// may hold the pipes open forever).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// How long the exec shim may take to hand over a terminal.
const TERMINAL_WAIT: Duration = Duration::from_secs(10);

/// The upstream `Status` for a finished command.
pub fn exit_status(command: &[String], code: i32) -> serde_json::Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The upstream `Status` for a command that could not run.
pub fn failure_status(message: &str) -> serde_json::Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
}

async fn send_status(out: &mpsc::Sender<Chunk>, status: serde_json::Value) {
    let body = serde_json::to_vec(&status).unwrap_or_default();
    let _ = out.send((channel::ERROR, Bytes::from(body))).await;
}

/// Copies a descriptor's output to `stream` until end of file.
fn pump_out(fd: OwnedFd, stream: u8, out: mpsc::Sender<Chunk>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(io) = AsyncFdIo::new(fd) else { return };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out
                        .send((stream, Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    })
}

#[derive(serde::Deserialize)]
struct TerminalSize {
    #[serde(rename = "Width")]
    width: u16,
    #[serde(rename = "Height")]
    height: u16,
}

/// Feeds client input: stdin data into `stdin`, CLOSE of stdin closes it. Ends when the
/// client goes away.
fn pump_in(
    mut inbound: mpsc::Receiver<Chunk>,
    stdin: Option<OwnedFd>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stdin = match stdin {
            Some(fd) => AsyncFdIo::new(fd).ok(),
            None => None,
        };
        while let Some((stream, data)) = inbound.recv().await {
            match stream {
                channel::STDIN => {
                    if let Some(w) = &stdin {
                        if w.write_all(&data).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                channel::CLOSE if data.first() == Some(&channel::STDIN) => stdin = None,
                _ => {}
            }
        }
    })
}

/// Runs `command` in the container, streaming as `opts` asks, and ends with the status on
/// the error stream. Dropping `out` (return) tells the transport to close.
pub async fn exec<R: ContainerRuntime + 'static>(
    runtime: Arc<R>,
    container_id: String,
    command: Vec<String>,
    opts: StreamOptions,
    out: mpsc::Sender<Chunk>,
    inbound: mpsc::Receiver<Chunk>,
) {
    // With a tty the process gets a terminal of its container's own (OCI
    // `process.terminal`); the exec shim sends its master back on a socket pair.
    let mut terminal_sock = None;
    let mut setup = || -> std::io::Result<_> {
        if opts.tty {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
            terminal_sock = Some(ours);
            let stdio = [OwnedFd::from(theirs), fdio::dev_null()?, fdio::dev_null()?];
            Ok((stdio, None, None, None))
        } else {
            let (stdin_r, stdin_w) = if opts.stdin {
                let (r, w) = fdio::pipe()?;
                (r, Some(w))
            } else {
                (fdio::dev_null()?, None)
            };
            let (out_r, out_w) = if opts.stdout {
                let (r, w) = fdio::pipe()?;
                (Some(r), w)
            } else {
                (None, fdio::dev_null()?)
            };
            let (err_r, err_w) = if opts.stderr {
                let (r, w) = fdio::pipe()?;
                (Some(r), w)
            } else {
                (None, fdio::dev_null()?)
            };
            Ok(([stdin_r, out_w, err_w], out_r, err_r, stdin_w))
        }
    };
    let (stdio, out_r, err_r, stdin_w) = match setup() {
        Ok(s) => s,
        Err(e) => {
            send_status(&out, failure_status(&format!("setting up streams: {e}"))).await;
            return;
        }
    };
    let cfg = ExecConfig {
        command: command.clone(),
        env: if opts.tty {
            vec!["TERM=xterm".to_string()]
        } else {
            Vec::new()
        },
        working_dir: String::new(),
        tty: opts.tty,
    };
    let process = match runtime.exec(&container_id, &cfg, stdio).await {
        Ok(p) => p,
        Err(e) => {
            send_status(&out, failure_status(&e.to_string())).await;
            return;
        }
    };
    let out_r = match terminal_sock {
        Some(sock) => {
            let received = tokio::task::spawn_blocking(move || {
                bramble_runtime::console::receive_terminal(&sock, TERMINAL_WAIT)
            })
            .await;
            match received {
                Ok(Ok(master)) => Some(master),
                Ok(Err(e)) => {
                    send_status(&out, failure_status(&e.to_string())).await;
                    return;
                }
                Err(e) => {
                    send_status(&out, failure_status(&e.to_string())).await;
                    return;
                }
            }
        }
        None => out_r,
    };
    // With a tty the master is both output and input: one registration for each direction
    // would be two AsyncFds on one file description, so input writes through the same one.
    let (outputs, input) = if opts.tty {
        let master = out_r.expect("tty master");
        let io = match AsyncFdIo::new(master) {
            Ok(io) => Arc::new(io),
            Err(e) => {
                send_status(&out, failure_status(&format!("terminal: {e}"))).await;
                return;
            }
        };
        drop(stdin_w);
        let reader = {
            let io = io.clone();
            let out = out.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let chunk = Bytes::copy_from_slice(&buf[..n]);
                            if out.send((channel::STDOUT, chunk)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            })
        };
        (vec![reader], tty_input(inbound, io, opts.stdin))
    } else {
        let mut v = Vec::new();
        if let Some(fd) = out_r {
            v.push(pump_out(fd, channel::STDOUT, out.clone()));
        }
        if let Some(fd) = err_r {
            v.push(pump_out(fd, channel::STDERR, out.clone()));
        }
        (v, pump_in(inbound, stdin_w))
    };
    let code = process.wait().await;
    let drain = async {
        for h in outputs {
            let _ = h.await;
        }
    };
    let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, drain).await;
    input.abort();
    match code {
        Ok(code) => send_status(&out, exit_status(&command, code)).await,
        Err(e) => send_status(&out, failure_status(&e.to_string())).await,
    }
}

/// Client input for a tty session: stdin data and CLOSE into the master, resizes to it.
fn tty_input(
    mut inbound: mpsc::Receiver<Chunk>,
    master: Arc<AsyncFdIo>,
    stdin: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some((stream, data)) = inbound.recv().await {
            match stream {
                channel::STDIN if stdin => {
                    let _ = master.write_all(&data).await;
                }
                channel::RESIZE => {
                    if let Ok(size) = serde_json::from_slice::<TerminalSize>(&data) {
                        let _ = fdio::set_window_size(master.raw(), size.width, size.height);
                    }
                }
                channel::CLOSE if stdin && data.first() == Some(&channel::STDIN) => {
                    let _ = master.write_all(&[4]).await;
                }
                _ => {}
            }
        }
    })
}

/// Attaches to a running container's standard streams through its shim
/// ([`bramble_runtime::attach`]): its output from now on (stdout and stderr on their streams;
/// a terminal's output on stdout), the client's input into its stdin when it has one, terminal
/// resizes. Ends with a Success status when the shim closes the session (the container exited,
/// or the client's input ended without `stdinOnce`), or silently when the client goes away.
pub async fn attach<R: ContainerRuntime + 'static>(
    runtime: Arc<R>,
    container_id: String,
    opts: StreamOptions,
    out: mpsc::Sender<Chunk>,
    mut inbound: mpsc::Receiver<Chunk>,
) {
    let sock = match runtime.attach(&container_id).await.and_then(|fd| {
        let std = std::os::unix::net::UnixStream::from(fd);
        std.set_nonblocking(true)
            .and_then(|_| tokio::net::UnixStream::from_std(std))
            .map_err(|e| bramble_runtime::RuntimeError::Io("attach socket", e))
    }) {
        Ok(s) => s,
        Err(e) => {
            send_status(&out, failure_status(&e.to_string())).await;
            return;
        }
    };
    let (mut rd, mut wr) = sock.into_split();
    let mut hello = 0;
    for (on, f) in [
        (opts.stdin, attach::flags::STDIN),
        (opts.stdout, attach::flags::STDOUT),
        (opts.stderr, attach::flags::STDERR),
    ] {
        if on {
            hello |= f;
        }
    }
    if wr
        .write_all(&attach::frame(attach::kind::HELLO, &[hello]))
        .await
        .is_err()
    {
        send_status(&out, failure_status("the container's shim went away")).await;
        return;
    }
    let mut output = {
        let out = out.clone();
        tokio::spawn(async move {
            let mut dec = attach::Decoder::default();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => dec.feed(&buf[..n]),
                }
                while let Ok(Some((k, data))) = dec.next_frame() {
                    let ch = match k {
                        attach::kind::STDOUT => channel::STDOUT,
                        attach::kind::STDERR => channel::STDERR,
                        _ => continue,
                    };
                    if out.send((ch, Bytes::from(data))).await.is_err() {
                        return;
                    }
                }
            }
        })
    };
    let input = async move {
        while let Some((stream, data)) = inbound.recv().await {
            let frame = match stream {
                channel::STDIN => attach::frame(attach::kind::STDIN, &data),
                channel::RESIZE => match serde_json::from_slice::<TerminalSize>(&data) {
                    Ok(size) => attach::frame(
                        attach::kind::RESIZE,
                        &attach::resize_payload(size.width, size.height),
                    ),
                    Err(_) => continue,
                },
                channel::CLOSE if data.first() == Some(&channel::STDIN) => {
                    attach::frame(attach::kind::CLOSE_STDIN, &[])
                }
                _ => continue,
            };
            if wr.write_all(&frame).await.is_err() {
                return;
            }
        }
        // The client went away: dropping the socket tells the shim.
    };
    tokio::select! {
        _ = &mut output => {
            send_status(&out, json!({"metadata": {}, "status": "Success"})).await;
        }
        _ = input => output.abort(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_upstream() {
        assert_eq!(
            exit_status(&["true".into()], 0),
            json!({"metadata": {}, "status": "Success"})
        );
        let s = exit_status(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
    }
}
