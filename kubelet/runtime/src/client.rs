//! The kubelet's side of the helper connection: async, usable from any tokio task.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Mutex;

use crate::error::RuntimeError;
use crate::frame::{decode, encode, send_some, FrameError, FrameReader};
use crate::helper::HelperConfig;
use crate::protocol::{ErrorKind, Request, Response};

/// The descriptor number the helper finds its connection on after re-exec.
pub const HELPER_FD: RawFd = 3;

/// A connection to a runtime helper.
pub struct RuntimeClient {
    conn: Mutex<Conn>,
    helper: std::sync::Mutex<Option<Child>>,
    helper_pid: Option<u32>,
}

struct Conn {
    fd: AsyncFd<OwnedFd>,
    reader: FrameReader,
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
        let fd = unsafe { AsyncFd::register(fd) }
            .map_err(|e| RuntimeError::Spawn(std::io::Error::other(e.to_string())))?;
        Ok(Self {
            conn: Mutex::new(Conn {
                fd,
                reader: FrameReader::default(),
            }),
            helper: std::sync::Mutex::new(None),
            helper_pid: None,
        })
    }

    /// Pid of the helper when this client spawned it.
    pub fn helper_pid(&self) -> Option<u32> {
        self.helper_pid
    }

    /// Sends one request (with descriptors) and waits for its response. Requests are
    /// serialized: the helper handles one at a time.
    pub async fn call(
        &self,
        req: &Request,
        fds: &[RawFd],
    ) -> Result<(Response, Vec<OwnedFd>), RuntimeError> {
        let frame = encode(req)?;
        let mut conn = self.conn.lock().await;
        let mut off = 0;
        let mut pass = fds;
        while off < frame.len() {
            let n = conn
                .fd
                .async_io(Interest::WRITABLE, |fd| {
                    send_some(fd.as_raw_fd(), &frame[off..], pass)
                })
                .await
                .map_err(FrameError::from)?;
            off += n;
            pass = &[];
        }
        let (body, got) = loop {
            if let Some(f) = conn.reader.take_frame()? {
                break f;
            }
            let Conn { fd, reader } = &mut *conn;
            let more = fd
                .async_io(Interest::READABLE, |fd| reader.fill(fd.as_raw_fd()))
                .await
                .map_err(FrameError::from)?;
            if !more {
                return Err(RuntimeError::HelperGone);
            }
        };
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
        drop(self.conn);
        let child = self.helper.lock().ok().and_then(|mut g| g.take());
        if let Some(mut child) = child {
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }
}

/// Default state root of the runtime on a node.
pub fn default_state_root() -> PathBuf {
    PathBuf::from("/var/lib/bramble/runtime")
}
