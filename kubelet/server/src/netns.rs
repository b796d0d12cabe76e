//! TCP connections from inside a pod's network namespace.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Connects to `127.0.0.1:port` inside the network namespace at `netns` (e.g.
/// `/proc/<pause pid>/ns/net`). A dedicated thread enters the namespace (`setns` changes
/// only the calling thread) and ends after connecting; the socket stays in the pod's
/// namespace.
pub async fn connect(netns: &Path, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let netns: PathBuf = netns.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-connect".into())
        .spawn(move || {
            let res = (|| -> std::io::Result<std::net::TcpStream> {
                let ns = std::fs::File::open(&netns)?;
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                let s = std::net::TcpStream::connect_timeout(
                    &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                    std::time::Duration::from_secs(10),
                )?;
                s.set_nonblocking(true)?;
                Ok(s)
            })();
            let _ = tx.send(res);
        })?;
    let std_stream = rx
        .await
        .map_err(|_| std::io::Error::other("netns thread died"))??;
    tokio::net::TcpStream::from_std(std_stream)
}
