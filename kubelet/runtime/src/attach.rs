//! Attaching to a container's standard streams (`kubectl attach`, `kubectl run -i`).
//!
//! # Who holds the container's stdio
//!
//! The container's shim ([`crate::shim`]) holds it for the container's whole life: the read
//! ends of its stdout/stderr pipes and, with `stdin: true`, the write end of its stdin pipe;
//! or, with `tty: true`, the master of its pseudo-terminal (the process's stdin, stdout and
//! stderr are the slave, which libcontainer opens in the container's own devpts). A container
//! without `stdin` reads `/dev/null`.
//!
//! # How a kubelet reaches a running container, also after it restarted
//!
//! The shim listens on a Unix socket, `attach.sock` in the container's bundle directory
//! (`<state>/containers/<id>/attach.sock`), as containerd's shim keeps a container's FIFOs in
//! its state directory. The shim outlives the kubelet and the runtime helper, and so does the
//! socket: a restarted kubelet attaches again through the same path, and nothing about an
//! attachable container lives in the kubelet's memory. The kubelet does not open the socket
//! itself: it sends [`crate::protocol::Request::Attach`] to the runtime helper, which checks
//! that the container runs, connects (through `/proc/self/fd/<bundle dir>/attach.sock`, so a
//! long state root cannot overflow `sun_path`) and passes the connected socket back with
//! `SCM_RIGHTS`.
//!
//! # Wire format
//!
//! Frames both ways: a kind byte, a big-endian `u32` length, then at most [`MAX_PAYLOAD`]
//! bytes. The client's first frame is [`kind::HELLO`] with one byte of [`flags`]: which of
//! stdin, stdout and stderr it attaches. Then the client sends [`kind::STDIN`] data,
//! [`kind::RESIZE`] (width, height: big-endian `u16`s) and [`kind::CLOSE_STDIN`]; the shim sends
//! [`kind::STDOUT`] and [`kind::STDERR`] data (a terminal's output is all stdout). The shim
//! closes the connection when the container has exited and its output is drained, or when it
//! ends the session (below).
//!
//! # Sessions (containerd's CRI attach)
//!
//! - Output fans out to every attached client that asked for that stream; input from any
//!   client that attached stdin goes to the container in arrival order.
//! - When a client that attached stdin ends its input (`CLOSE_STDIN`, or it disconnects): with
//!   `stdin_once` and no terminal the container's stdin is closed for good (the process reads
//!   end of file) and the client keeps receiving output until the container exits; otherwise
//!   that session ends (the shim closes the client) and stdin stays open for the next attach.
//! - Input for a container without `stdin` is dropped, as containerd and docker do.
//! - A client more than [`MAX_BACKLOG`] behind is dropped rather than stall the container.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::protocol::StdioConfig;

/// The socket's name in the bundle directory.
pub const SOCKET: &str = "attach.sock";
/// Largest payload of one frame.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Output a client may have unread before it is dropped.
pub const MAX_BACKLOG: usize = 4 << 20;
/// Input buffered for the container before clients are no longer read.
const MAX_PENDING_INPUT: usize = 256 * 1024;

/// Frame kinds (the stream ids of upstream's channel protocols where they exist).
pub mod kind {
    /// Client to shim: standard input data.
    pub const STDIN: u8 = 0;
    /// Shim to client: standard output data (all output of a terminal).
    pub const STDOUT: u8 = 1;
    /// Shim to client: standard error data.
    pub const STDERR: u8 = 2;
    /// Client to shim: terminal size, width then height as big-endian `u16`.
    pub const RESIZE: u8 = 4;
    /// Client to shim: first frame, one byte of [`super::flags`].
    pub const HELLO: u8 = 0x80;
    /// Client to shim: end of this client's input.
    pub const CLOSE_STDIN: u8 = 255;
}

/// Which streams a client attaches ([`kind::HELLO`] payload).
pub mod flags {
    /// Sends input.
    pub const STDIN: u8 = 1;
    /// Receives standard output.
    pub const STDOUT: u8 = 2;
    /// Receives standard error.
    pub const STDERR: u8 = 4;
}

/// Errors of the attach socket.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// A socket or descriptor operation failed.
    #[error("attach socket {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path involved (empty when none).
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A frame announced more than [`MAX_PAYLOAD`] bytes.
    #[error("attach frame of {0} bytes is too large")]
    TooLarge(usize),
}

/// Appends `data` as frames of `kind` (split at [`MAX_PAYLOAD`]; one empty frame for no
/// data).
pub fn push_frames(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let mut chunks = data.chunks(MAX_PAYLOAD).peekable();
    if chunks.peek().is_none() {
        out.push(kind);
        out.extend_from_slice(&0u32.to_be_bytes());
        return;
    }
    for c in chunks {
        out.push(kind);
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
}

/// One frame of `kind`.
pub fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 5);
    push_frames(&mut v, kind, data);
    v
}

/// The [`kind::RESIZE`] payload.
pub fn resize_payload(width: u16, height: u16) -> [u8; 4] {
    let (w, h) = (width.to_be_bytes(), height.to_be_bytes());
    [w[0], w[1], h[0], h[1]]
}

/// Reassembles frames from a byte stream.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Adds received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, AttachError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(AttachError::TooLarge(len));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let k = self.buf[0];
        let data = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((k, data)))
    }
}

/// A path to `name` inside `dir` that fits `sun_path` however long `dir` is: through the
/// open directory `fd` (`/proc/self/fd/N/name`).
fn via_dir(dir_fd: &OwnedFd, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir_fd.as_raw_fd()))
}

fn open_dir(dir: &Path) -> Result<OwnedFd, AttachError> {
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| AttachError::Io {
        op: "open",
        path: dir.to_owned(),
        source: e.into(),
    })?;
    // SAFETY: a descriptor just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Connects to the attach socket in `bundle` (the runtime helper does this for the kubelet).
pub fn connect(bundle: &Path) -> Result<UnixStream, AttachError> {
    let dir = open_dir(bundle)?;
    UnixStream::connect(via_dir(&dir, SOCKET)).map_err(|source| AttachError::Io {
        op: "connect",
        path: bundle.join(SOCKET),
        source,
    })
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor the caller owns.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// Where the container's input goes.
pub enum Input {
    /// The write end of its stdin pipe.
    Pipe(OwnedFd),
    /// Its terminal's master (shared with the shim's output loop).
    Tty(Rc<OwnedFd>),
}

impl Input {
    fn raw(&self) -> RawFd {
        match self {
            Input::Pipe(fd) => fd.as_raw_fd(),
            Input::Tty(fd) => fd.as_raw_fd(),
        }
    }
}

struct Client {
    sock: UnixStream,
    flags: Option<u8>,
    dec: Decoder,
    out: Vec<u8>,
    /// Flush `out`, then close.
    ending: bool,
    dead: bool,
}

impl Client {
    fn wants(&self, f: u8) -> bool {
        self.flags.is_some_and(|x| x & f != 0)
    }
}

/// What a descriptor the hub asked to poll stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// The listening socket.
    Listener,
    /// A client, by index.
    Client(usize),
    /// The container's input.
    Input,
}

/// The shim's side: the listening socket, its clients, the container's input. Driven by
/// the shim's poll loop ([`Hub::poll_fds`], [`Hub::ready`]).
pub struct Hub {
    listener: Option<UnixListener>,
    socket_path: PathBuf,
    clients: Vec<Client>,
    input: Option<Input>,
    pending: Vec<u8>,
    /// Close the (pipe) input once `pending` is written.
    close_input: bool,
    stdio: StdioConfig,
}

impl Hub {
    /// Listens on [`SOCKET`] in `bundle`. `input` is the container's stdin pipe, or its
    /// terminal master (resizes; input only with `stdio.stdin`), `None` for a container
    /// reading `/dev/null`.
    pub fn bind(
        bundle: &Path,
        input: Option<Input>,
        stdio: StdioConfig,
    ) -> Result<Hub, AttachError> {
        let dir = open_dir(bundle)?;
        let path = via_dir(&dir, SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|source| AttachError::Io {
            op: "bind",
            path: bundle.join(SOCKET),
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| AttachError::Io {
                op: "set_nonblocking",
                path: bundle.join(SOCKET),
                source,
            })?;
        if let Some(i) = &input {
            set_nonblocking(i.raw());
        }
        Ok(Hub {
            listener: Some(listener),
            socket_path: bundle.join(SOCKET),
            clients: Vec::new(),
            input,
            pending: Vec::new(),
            close_input: false,
            stdio,
        })
    }

    /// The descriptors to poll and for what, with their tags.
    pub fn poll_fds(&self) -> Vec<(RawFd, i16, Tag)> {
        let mut v = Vec::new();
        if let Some(l) = &self.listener {
            v.push((l.as_raw_fd(), libc::POLLIN, Tag::Listener));
        }
        let read_clients = self.pending.len() < MAX_PENDING_INPUT;
        for (i, c) in self.clients.iter().enumerate() {
            let mut ev = 0;
            if read_clients && !c.ending {
                ev |= libc::POLLIN;
            }
            if !c.out.is_empty() {
                ev |= libc::POLLOUT;
            }
            v.push((c.sock.as_raw_fd(), ev, Tag::Client(i)));
        }
        if let (Some(i), false) = (&self.input, self.pending.is_empty()) {
            v.push((i.raw(), libc::POLLOUT, Tag::Input));
        }
        v
    }

    /// Handles readiness `revents` of the descriptor tagged `tag`.
    pub fn ready(&mut self, tag: Tag, revents: i16) {
        match tag {
            Tag::Listener => self.accept(),
            Tag::Client(i) => {
                if revents & libc::POLLOUT != 0 {
                    self.flush_client(i);
                }
                if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    self.read_client(i);
                }
            }
            Tag::Input => self.write_input(),
        }
    }

    /// After a poll round: drops finished clients.
    pub fn sweep(&mut self) {
        for c in &mut self.clients {
            if c.ending && c.out.is_empty() {
                let _ = c.sock.shutdown(std::net::Shutdown::Both);
                c.dead = true;
            }
        }
        self.clients.retain(|c| !c.dead);
    }

    /// Sends container output to every client that wants `stream`.
    pub fn broadcast(&mut self, stream: u8, data: &[u8]) {
        let wanted = if self.stdio.tty || stream == kind::STDOUT {
            flags::STDOUT
        } else {
            flags::STDERR
        };
        let stream = if self.stdio.tty { kind::STDOUT } else { stream };
        for i in 0..self.clients.len() {
            if !self.clients[i].wants(wanted) || self.clients[i].dead {
                continue;
            }
            push_frames(&mut self.clients[i].out, stream, data);
            if self.clients[i].out.len() > MAX_BACKLOG {
                tracing::warn!("attach client too far behind; dropped");
                self.clients[i].dead = true;
                continue;
            }
            self.flush_client(i);
        }
    }

    /// The container has exited and its output is drained: no more input or clients; gives
    /// clients until `deadline` to take what is queued for them.
    pub fn finish(&mut self, deadline: std::time::Instant) {
        self.listener = None;
        let _ = std::fs::remove_file(&self.socket_path);
        self.input = None;
        for c in &mut self.clients {
            c.ending = true;
        }
        self.sweep();
        while !self.clients.is_empty() && std::time::Instant::now() < deadline {
            let mut fds: Vec<libc::pollfd> = self
                .clients
                .iter()
                .map(|c| libc::pollfd {
                    fd: c.sock.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                })
                .collect();
            // SAFETY: poll over a vector of pollfd we own.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
            for (i, f) in fds.iter().enumerate() {
                if f.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                    self.clients[i].dead = true;
                } else if f.revents & libc::POLLOUT != 0 {
                    self.flush_client(i);
                }
            }
            self.sweep();
        }
        self.clients.clear();
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((sock, _)) = l.accept() {
            let _ = sock.set_nonblocking(true);
            self.clients.push(Client {
                sock,
                flags: None,
                dec: Decoder::default(),
                out: Vec::new(),
                ending: false,
                dead: false,
            });
        }
    }

    fn flush_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        while !c.out.is_empty() && !c.dead {
            // SAFETY: sending from a buffer we own on a socket we own.
            let n = unsafe {
                libc::send(
                    c.sock.as_raw_fd(),
                    c.out.as_ptr().cast(),
                    c.out.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                c.out.drain(..n as usize);
                continue;
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return,
                Some(libc::EINTR) => continue,
                _ => {
                    c.dead = true;
                    c.out.clear();
                }
            }
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; 16 * 1024];
        let gone = loop {
            match (&self.clients[i].sock).read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => self.clients[i].dec.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
            if self.pending.len() >= MAX_PENDING_INPUT {
                break false;
            }
        };
        loop {
            match self.clients[i].dec.next_frame() {
                Ok(Some((k, data))) => self.client_frame(i, k, &data),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "attach client sent a bad frame; dropped");
                    self.client_gone(i);
                    return;
                }
            }
        }
        if gone {
            self.client_gone(i);
        }
    }

    fn client_frame(&mut self, i: usize, k: u8, data: &[u8]) {
        if self.clients[i].flags.is_none() {
            if k == kind::HELLO && data.len() == 1 {
                self.clients[i].flags = Some(data[0]);
            } else {
                self.clients[i].dead = true;
            }
            return;
        }
        let sends_stdin = self.clients[i].wants(flags::STDIN);
        match k {
            kind::STDIN
                if sends_stdin && self.stdio.stdin && !self.close_input && self.input.is_some() =>
            {
                self.pending.extend_from_slice(data);
                self.write_input();
            }
            kind::RESIZE if data.len() == 4 => {
                if let Some(Input::Tty(master)) = &self.input {
                    let w = u16::from_be_bytes([data[0], data[1]]);
                    let h = u16::from_be_bytes([data[2], data[3]]);
                    set_window_size(master.as_raw_fd(), w, h);
                }
            }
            kind::CLOSE_STDIN if sends_stdin => self.stdin_ended(i, true),
            _ => {}
        }
    }

    fn client_gone(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if c.dead {
            return;
        }
        c.dead = true;
        c.out.clear();
        if c.wants(flags::STDIN) {
            self.stdin_ended(i, false);
        }
    }

    /// A client's input ended (see the module docs).
    fn stdin_ended(&mut self, i: usize, by_close: bool) {
        if self.input.is_none() || !self.stdio.stdin {
            return;
        }
        if self.stdio.stdin_once && !self.stdio.tty {
            self.close_input = true;
            if self.pending.is_empty() {
                self.input = None;
            }
        } else if by_close {
            self.clients[i].ending = true;
        }
    }

    fn write_input(&mut self) {
        let Some(input) = &self.input else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            // SAFETY: writing from a buffer we own to a descriptor we own.
            let n = unsafe {
                libc::write(
                    input.raw(),
                    self.pending.as_ptr().cast(),
                    self.pending.len(),
                )
            };
            if n > 0 {
                self.pending.drain(..n as usize);
                continue;
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) => return,
                Some(libc::EINTR) => continue,
                _ => {
                    // The reader is gone (EPIPE): nothing will read input again.
                    self.pending.clear();
                    self.input = None;
                    return;
                }
            }
        }
        if self.close_input {
            self.input = None;
        }
    }
}

/// Sets a terminal's window size (TIOCSWINSZ).
pub fn set_window_size(fd: RawFd, width: u16, height: u16) {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

#[cfg(test)]
#[path = "attach_tests.rs"]
mod tests;
