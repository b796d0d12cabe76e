//! TCP connections from inside a pod's network namespace.
//!
//! A socket belongs to the network namespace of the thread that created it, and `setns`
//! changes only the calling thread. One long-lived thread ("netns-socket") therefore makes
//! every such socket: it enters the pod's namespace and creates the socket. Connecting is
//! asynchronous, on the caller's runtime. Probes open one socket per period per probe; a
//! thread started per socket cost more than the probe itself.
//!
//! The thread keeps each namespace it opened for [`KEEP`] (opening `/proc/<pid>/ns/net`
//! was a good part of each probe's cost; a path is opened again after that, so a reused pid
//! cannot keep an old namespace in place) and stays in the last one it entered while it is
//! busy: after [`KEEP`] without a request it goes back to its own namespace, so a deleted
//! pod's namespace is not held for longer than that.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One socket to make: in `netns`, of `addr`'s family.
struct Job {
    netns: PathBuf,
    v6: bool,
    reply: tokio::sync::oneshot::Sender<std::io::Result<tokio::net::TcpSocket>>,
}

/// Connects to `127.0.0.1:port` inside the network namespace at `netns` (e.g.
/// `/proc/<pause pid>/ns/net`).
pub async fn connect(netns: &Path, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    connect_addr(
        Some(netns),
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_secs(10),
    )
    .await
}

/// Connects to `addr` within `timeout`, inside the network namespace at `netns` (the
/// calling process's namespace when `None`, e.g. for host-network pods).
pub async fn connect_addr(
    netns: Option<&Path>,
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = match netns {
        None => new_socket(addr.is_ipv6())?,
        Some(netns) => socket_in(netns, addr.is_ipv6()).await?,
    };
    tokio::time::timeout(timeout, socket.connect(addr))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("dial tcp {addr}: i/o timeout"),
            )
        })?
}

/// A non-blocking TCP socket made inside `netns` by the socket thread.
async fn socket_in(netns: &Path, v6: bool) -> std::io::Result<tokio::net::TcpSocket> {
    let (reply, rx) = tokio::sync::oneshot::channel();
    let job = Job {
        netns: netns.to_owned(),
        v6,
        reply,
    };
    socket_thread()?
        .send(job)
        .map_err(|_| std::io::Error::other("netns socket thread ended"))?;
    rx.await
        .map_err(|_| std::io::Error::other("netns socket thread dropped the request"))?
}

/// How long the socket thread keeps a namespace open, and stays in one without requests.
pub const KEEP: Duration = Duration::from_secs(2);

/// The socket thread's queue, starting the thread on first use.
fn socket_thread() -> std::io::Result<&'static mpsc::Sender<Job>> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    if let Some(q) = QUEUE.get() {
        return Ok(q);
    }
    let home = OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net")?);
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("netns-socket".into())
        .stack_size(64 * 1024)
        .spawn(move || SocketThread::new(home).serve(rx))?;
    // A racing first caller may have started another thread; the loser's queue is dropped
    // and its thread ends.
    Ok(QUEUE.get_or_init(|| tx))
}

/// The socket thread's state: the namespaces it keeps open, and the one it is in.
struct SocketThread {
    home: OwnedFd,
    /// Open namespaces by path, with when they were opened.
    open: HashMap<PathBuf, (OwnedFd, Instant)>,
    /// The namespace the thread is in (`None`: its own).
    current: Option<PathBuf>,
}

impl SocketThread {
    fn new(home: OwnedFd) -> Self {
        SocketThread {
            home,
            open: HashMap::new(),
            current: None,
        }
    }

    fn serve(mut self, rx: mpsc::Receiver<Job>) {
        loop {
            match rx.recv_timeout(KEEP) {
                Ok(job) => {
                    let res = self.make_socket(&job.netns, job.v6);
                    let _ = job.reply.send(res);
                    let now = Instant::now();
                    self.open
                        .retain(|_, (_, opened)| now.duration_since(*opened) < KEEP);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.go_home(),
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Back to the thread's own namespace; closes every kept one.
    fn go_home(&mut self) {
        if self.current.take().is_some() {
            // Failing to go back leaves the thread where it is; the next request sets it.
            let _ = nix::sched::setns(self.home.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET);
        }
        self.open.clear();
    }

    /// Enters `netns` (unless already there) and makes the socket.
    fn make_socket(&mut self, netns: &Path, v6: bool) -> std::io::Result<tokio::net::TcpSocket> {
        let fresh = !self.open.contains_key(netns);
        if fresh {
            let f = OwnedFd::from(std::fs::File::open(netns)?);
            self.open.insert(netns.to_owned(), (f, Instant::now()));
        }
        // Freshly opened, the path may name another namespace than the one the thread is in.
        if fresh || self.current.as_deref() != Some(netns) {
            let fd = self.open[netns].0.as_fd();
            if let Err(e) = nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET) {
                self.open.remove(netns);
                return Err(e.into());
            }
            self.current = Some(netns.to_owned());
        }
        new_socket(v6)
    }
}

/// A non-blocking TCP socket (its namespace is the calling thread's).
fn new_socket(v6: bool) -> std::io::Result<tokio::net::TcpSocket> {
    if v6 {
        tokio::net::TcpSocket::new_v6()
    } else {
        tokio::net::TcpSocket::new_v4()
    }
}
