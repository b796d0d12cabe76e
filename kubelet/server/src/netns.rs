//! TCP connections from inside a pod's network namespace.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Connects to `127.0.0.1:port` inside the network namespace at `netns` (e.g.
/// `/proc/<pause pid>/ns/net`). A dedicated thread enters the namespace (`setns` changes
/// only the calling thread) and ends after creating the socket; the socket stays in the
/// pod's namespace.
pub async fn connect(netns: &Path, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    connect_addr(
        Some(netns),
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_secs(10),
    )
    .await
}

/// Connects to `addr` within `timeout`, inside the network namespace at `netns` (the
/// calling process's namespace when `None`, e.g. for host-network pods). Only the socket is
/// made in a short-lived thread that entered the namespace; connecting is asynchronous.
pub async fn connect_addr(
    netns: Option<&Path>,
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = match netns {
        None => new_socket(&addr)?,
        Some(netns) => {
            let netns: PathBuf = netns.to_owned();
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("netns-connect".into())
                .spawn(move || {
                    let res = (|| -> std::io::Result<tokio::net::TcpSocket> {
                        let ns = std::fs::File::open(&netns)?;
                        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                            .map_err(std::io::Error::from)?;
                        new_socket(&addr)
                    })();
                    let _ = tx.send(res);
                })?;
            rx.await
                .map_err(|_| std::io::Error::other("netns thread died"))??
        }
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

/// A non-blocking TCP socket of `addr`'s family (its namespace is the calling thread's).
fn new_socket(addr: &std::net::SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
}
