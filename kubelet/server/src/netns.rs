//! TCP connections from inside a pod's network namespace.
//!
//! A socket belongs to the network namespace of the thread that created it, and `setns`
//! changes only the calling thread. One long-lived thread ("netns-socket") therefore makes
//! every such socket: it enters the pod's namespace, creates the socket, and returns to its
//! own namespace (so it never pins a deleted pod's namespace). Connecting is asynchronous,
//! on the caller's runtime. Probes open one socket per period per probe; a thread started
//! per socket cost more than the probe itself.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;

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
        .spawn(move || {
            for job in rx {
                let res = make_socket(&job.netns, job.v6, &home);
                let _ = job.reply.send(res);
            }
        })?;
    // A racing first caller may have started another thread; the loser's queue is dropped
    // and its thread ends.
    Ok(QUEUE.get_or_init(|| tx))
}

/// On the socket thread: enter `netns`, make the socket, go back `home`.
fn make_socket(netns: &Path, v6: bool, home: &OwnedFd) -> std::io::Result<tokio::net::TcpSocket> {
    let ns = std::fs::File::open(netns)?;
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(std::io::Error::from)?;
    let socket = new_socket(v6);
    nix::sched::setns(home.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(std::io::Error::from)?;
    socket
}

/// A non-blocking TCP socket (its namespace is the calling thread's).
fn new_socket(v6: bool) -> std::io::Result<tokio::net::TcpSocket> {
    if v6 {
        tokio::net::TcpSocket::new_v6()
    } else {
        tokio::net::TcpSocket::new_v4()
    }
}
