//! The kubelet's side of the helper connection: async, usable from any tokio task.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{oneshot, Mutex};

use crate::error::RuntimeError;
use crate::frame::{decode, encode, send_some, Frame, FrameError, FrameReader};
use crate::helper::HelperConfig;
use crate::protocol::{ErrorKind, Request, Response};

/// The descriptor number the helper finds its connection on after re-exec.
pub const HELPER_FD: RawFd = 3;

/// A connection to a runtime helper.
///
/// Requests are pipelined: a caller writes its request and waits for its answer while
/// others write theirs, and a reader task hands the answers out in order (the helper
/// answers in the order it reads). A burst of exec probes thus reaches the helper at once,
/// and the helper neither sleeps between the requests nor wakes the kubelet for each answer
/// ([`crate::serve`]).
pub struct RuntimeClient {
    conn: Arc<Conn>,
    reader: tokio::task::JoinHandle<()>,
    helper: std::sync::Mutex<Option<Child>>,
    helper_pid: Option<u32>,
}

struct Conn {
    /// Registered for reading only: a writable registration would wake the kubelet each
    /// time the helper reads a request.
    fd: AsyncFd<OwnedFd>,
    /// Held while a frame is written, so frames do not interleave and the answers queue
    /// in the order of the requests.
    write: Mutex<()>,
    pending: std::sync::Mutex<Pending>,
}

/// The callers waiting for an answer, in the order their requests were written.
#[derive(Default)]
struct Pending {
    waiting: VecDeque<oneshot::Sender<Frame>>,
    /// The connection failed or was closed: no answer will come.
    closed: bool,
}

impl Conn {
    /// Ends the connection: the helper reads end of stream and exits, the reader task
    /// stops, and every waiting caller gets [`RuntimeError::HelperGone`].
    fn close(&self) {
        // SAFETY: shutdown on a descriptor we own; it stays open.
        unsafe { libc::shutdown(self.fd.get_ref().as_raw_fd(), libc::SHUT_RDWR) };
        let mut p = self.pending.lock().expect("runtime client lock");
        p.closed = true;
        p.waiting.clear();
    }

    /// Writes one frame (descriptors with its first bytes) and queues `tx` for its answer.
    async fn write(
        &self,
        frame: &[u8],
        fds: &[RawFd],
        tx: oneshot::Sender<Frame>,
    ) -> Result<(), RuntimeError> {
        let _order = self.write.lock().await;
        {
            let mut p = self.pending.lock().expect("runtime client lock");
            if p.closed {
                return Err(RuntimeError::HelperGone);
            }
            p.waiting.push_back(tx);
        }
        // A frame cut short (the caller gone mid-write, or an error) leaves the stream
        // unusable: the connection is closed then.
        let mut cut = CloseUnlessDone(self, true);
        let raw = self.fd.get_ref().as_raw_fd();
        let mut off = 0;
        let mut pass = fds;
        while off < frame.len() {
            match send_some(raw, &frame[off..], pass) {
                Ok(n) => {
                    off += n;
                    pass = &[];
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_writable(raw).await?,
                Err(e) => return Err(FrameError::from(e).into()),
            }
        }
        cut.1 = false;
        Ok(())
    }
}

struct CloseUnlessDone<'a>(&'a Conn, bool);

impl Drop for CloseUnlessDone<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.close();
        }
    }
}

/// Waits until the socket takes more bytes (its buffer was full: rare, requests are small)
/// through a registration of a duplicate descriptor that lasts only this wait.
async fn wait_writable(fd: RawFd) -> Result<(), RuntimeError> {
    let dup = nix::unistd::dup(fd).map_err(|e| RuntimeError::Io("dup", e.into()))?;
    // SAFETY: `dup` returned a new descriptor that nothing else owns.
    let dup = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) };
    // SAFETY: the AsyncFd owns the duplicate; it stays open for the registration's life.
    let w = unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE) }.map_err(|e| {
        RuntimeError::Io(
            "register runtime socket",
            std::io::Error::other(e.to_string()),
        )
    })?;
    let _ready = w
        .writable()
        .await
        .map_err(|e| RuntimeError::Io("runtime socket", e))?;
    Ok(())
}

/// The reader task: hands each answer to the caller at the head of the queue, until the
/// connection ends; then fails every waiting caller.
async fn read_answers(conn: Arc<Conn>) {
    let mut reader = FrameReader::default();
    loop {
        match reader.take_frame() {
            Ok(Some(frame)) => {
                let tx = conn
                    .pending
                    .lock()
                    .expect("runtime client lock")
                    .waiting
                    .pop_front();
                match tx {
                    // A caller that gave up has dropped its receiver: the answer (and its
                    // descriptors) are dropped with it.
                    Some(tx) => drop(tx.send(frame)),
                    None => {
                        tracing::warn!("runtime helper answered a request that was not made");
                        break;
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "runtime helper connection");
                break;
            }
        }
        let more = conn
            .fd
            .async_io(Interest::READABLE, |fd| reader.fill(fd.as_raw_fd()))
            .await;
        match more {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::warn!(error = %e, "runtime helper connection");
                break;
            }
        }
    }
    conn.close();
}

/// The arguments `bramble runtime-helper` takes (see [`crate::multicall`]).
pub fn helper_args(cfg: &HelperConfig) -> Vec<String> {
    vec![
        "runtime-helper".into(),
        "--fd".into(),
        HELPER_FD.to_string(),
        "--state-root".into(),
        cfg.state_root.display().to_string(),
        "--cgroup-root".into(),
        cfg.cgroup_root.display().to_string(),
    ]
}

impl RuntimeClient {
    /// Starts a helper by re-executing `exe` (normally `/proc/self/exe`, the `bramble` binary)
    /// as `exe runtime-helper --fd 3 ...`: a fresh, single-threaded process, so this is safe
    /// from inside a multi-threaded tokio runtime (`fork`+`exec` of `std::process`, nothing
    /// else runs in the child before `exec`).
    pub fn spawn_helper(exe: &Path, cfg: &HelperConfig) -> Result<Self, RuntimeError> {
        let (ours, theirs) = StdUnixStream::pair().map_err(RuntimeError::Spawn)?;
        let their_fd = theirs.as_raw_fd();
        let mut cmd = Command::new(exe);
        cmd.args(helper_args(cfg)).stdin(Stdio::null());
        // SAFETY: dup2 is async-signal-safe; it runs between fork and exec in the child and
        // gives the helper its end of the pair at a fixed number (dup2 clears CLOEXEC).
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(their_fd, HELPER_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(RuntimeError::Spawn)?;
        drop(theirs);
        let pid = child.id();
        let mut client = Self::from_fd(OwnedFd::from(ours))?;
        client.helper_pid = Some(pid);
        client.helper = std::sync::Mutex::new(Some(child));
        Ok(client)
    }

    /// Wraps a connection to a helper started some other way (e.g. [`crate::fork_helper`]
    /// before the tokio runtime was built). Needs a tokio runtime.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, RuntimeError> {
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| RuntimeError::Spawn(e.into()))?;
        let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        flags.insert(nix::fcntl::OFlag::O_NONBLOCK);
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(|e| RuntimeError::Spawn(e.into()))?;
        // SAFETY: `OwnedFd` keeps the descriptor open and unchanged for the AsyncFd's life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| RuntimeError::Spawn(std::io::Error::other(e.to_string())))?;
        let conn = Arc::new(Conn {
            fd,
            write: Mutex::new(()),
            pending: Default::default(),
        });
        let reader = tokio::spawn(read_answers(conn.clone()));
        Ok(Self {
            conn,
            reader,
            helper: std::sync::Mutex::new(None),
            helper_pid: None,
        })
    }

    /// Pid of the helper when this client spawned it.
    pub fn helper_pid(&self) -> Option<u32> {
        self.helper_pid
    }

    /// Sends one request (with descriptors) and waits for its response. The helper handles
    /// one request at a time, in the order they were written; callers need not wait for
    /// each other's answers.
    pub async fn call(
        &self,
        req: &Request,
        fds: &[RawFd],
    ) -> Result<(Response, Vec<OwnedFd>), RuntimeError> {
        let frame = encode(req)?;
        let (tx, rx) = oneshot::channel();
        self.conn.write(&frame, fds, tx).await?;
        let (body, got) = rx.await.map_err(|_| RuntimeError::HelperGone)?;
        let resp: Response = decode(&body)?;
        if let Response::Error { kind, message } = resp {
            return Err(match kind {
                ErrorKind::NotFound => RuntimeError::NotFound(message),
                ErrorKind::AlreadyExists => RuntimeError::AlreadyExists(message),
                ErrorKind::Invalid => RuntimeError::Invalid(message),
                ErrorKind::Internal => RuntimeError::Helper(message),
            });
        }
        Ok((resp, got))
    }

    /// Closes the connection (the helper exits) and reaps a spawned helper.
    pub async fn shutdown(self) {
        self.conn.close();
        let child = self.helper.lock().ok().and_then(|mut g| g.take());
        if let Some(mut child) = child {
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }
}

impl Drop for RuntimeClient {
    fn drop(&mut self) {
        self.conn.close();
        self.reader.abort();
    }
}

/// Default state root of the runtime on a node.
pub fn default_state_root() -> PathBuf {
    PathBuf::from("/var/lib/bramble/runtime")
}
