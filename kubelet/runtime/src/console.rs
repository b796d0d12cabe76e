//! Terminals for processes with OCI `process.terminal: true` (`kubectl exec -it`, containers
//! with `tty: true`): libcontainer opens the pseudo-terminal inside the container (its own
//! devpts), makes the slave the process's controlling terminal and stdio, and sends the
//! master over a **console socket** (`--console-socket` in runc terms). The shim listens on
//! that socket, receives the master, and passes it on with `SCM_RIGHTS`: to the kubelet for an
//! exec, or keeps it (copying output to the log, lending it to `attach`) for a container.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Errors of the console socket.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A socket operation failed.
    #[error("console socket {op}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Nothing arrived in time.
    #[error("console socket: no terminal received within {0:?}")]
    Timeout(Duration),
    /// A message came without a descriptor.
    #[error("console socket: message without a descriptor")]
    NoDescriptor,
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> ConsoleError {
    move |source| ConsoleError::Io { op, source }
}

fn errno(op: &'static str) -> impl FnOnce(nix::Error) -> ConsoleError {
    move |e| ConsoleError::Io {
        op,
        source: std::io::Error::from(e),
    }
}

/// A listening console socket at a short path (`sun_path` holds 108 bytes, bundle paths can
/// be longer); removed on drop.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Binds a fresh socket under the temporary directory.
    pub fn bind() -> Result<ConsoleSocket, ConsoleError> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("bramble-tty-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(io("bind"))?;
        Ok(ConsoleSocket { listener, path })
    }

    /// The path to give libcontainer (`with_console_socket`).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Accepts libcontainer's connection and receives the terminal master.
    pub fn receive_master(&self, timeout: Duration) -> Result<OwnedFd, ConsoleError> {
        wait_readable(self.listener.as_fd(), timeout)?;
        let (conn, _) = self.listener.accept().map_err(io("accept"))?;
        wait_readable(conn.as_fd(), timeout)?;
        recv_fd(conn.as_raw_fd())
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> Result<(), ConsoleError> {
    let ms = timeout.as_millis().min(u16::MAX as u128) as u16;
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return Err(ConsoleError::Timeout(timeout)),
            Ok(_) => return Ok(()),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(errno("poll")(e)),
        }
    }
}

/// Sends `fd` over the Unix socket `sock` (one byte of data, the descriptor as `SCM_RIGHTS`).
pub fn send_fd(sock: RawFd, fd: RawFd) -> Result<(), ConsoleError> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"t")];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None).map_err(errno("sendmsg"))?;
    Ok(())
}

/// Receives one descriptor from the Unix socket `sock`.
pub fn recv_fd(sock: RawFd) -> Result<OwnedFd, ConsoleError> {
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(errno("recvmsg"))?;
    for c in msg.cmsgs().map_err(errno("cmsgs"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: a descriptor just received, owned by nobody else.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(ConsoleError::NoDescriptor)
}

/// Receives a terminal master the exec shim sends on `sock`, waiting up to `timeout`.
pub fn receive_terminal(sock: &UnixStream, timeout: Duration) -> Result<OwnedFd, ConsoleError> {
    wait_readable(sock.as_fd(), timeout)?;
    recv_fd(sock.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_cross_a_socket_pair() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        send_fd(a.as_raw_fd(), file.as_raw_fd()).unwrap();
        let got = receive_terminal(&b, Duration::from_secs(1)).unwrap();
        assert_ne!(got.as_raw_fd(), file.as_raw_fd());
        let same = |f: RawFd| std::fs::read_link(format!("/proc/self/fd/{f}")).unwrap();
        assert_eq!(same(got.as_raw_fd()), same(file.as_raw_fd()));
        assert!(matches!(
            receive_terminal(&b, Duration::from_millis(50)),
            Err(ConsoleError::Timeout(_))
        ));
    }

    #[test]
    fn console_socket_receives_from_a_connecting_peer() {
        let sock = ConsoleSocket::bind().unwrap();
        assert!(sock.path().as_os_str().len() < 108);
        let path = sock.path().to_path_buf();
        let t = std::thread::spawn(move || {
            let c = UnixStream::connect(path).unwrap();
            let f = std::fs::File::open("/dev/null").unwrap();
            send_fd(c.as_raw_fd(), f.as_raw_fd()).unwrap();
        });
        let fd = sock.receive_master(Duration::from_secs(5)).unwrap();
        t.join().unwrap();
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(target, PathBuf::from("/dev/null"));
        let p = sock.path().to_path_buf();
        drop(sock);
        assert!(!p.exists());
    }
}
