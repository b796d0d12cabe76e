//! The UDP and TCP listeners: answers from the current [`Zone`], everything else relayed to
//! the upstream resolvers (the node's `/etc/resolv.conf`) over UDP.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::answer::{answer, servfail, Outcome};
use crate::error::DnsError;
use crate::records::Zone;

/// How long an upstream resolver gets per query.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The zone shared by the listeners and swapped whole by the watcher.
#[derive(Clone, Default)]
pub struct SharedZone(Arc<RwLock<Arc<Zone>>>);

impl SharedZone {
    /// The current zone.
    pub fn get(&self) -> Arc<Zone> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the zone.
    pub fn set(&self, zone: Zone) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(zone);
    }
}

/// The nameservers of a resolv.conf text (port 53).
pub fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Relays `query` to the upstreams in order; the first answer wins.
async fn forward(upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(sock) = UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.connect(up).await.is_err() || sock.send(query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        match tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv(&mut buf)).await {
            Ok(Ok(n)) if n >= 2 && buf[..2] == query[..2] => {
                buf.truncate(n);
                return Some(buf);
            }
            _ => tracing::debug!(upstream = %up, "upstream resolver did not answer"),
        }
    }
    None
}

async fn respond(
    zone: &SharedZone,
    upstreams: &[SocketAddr],
    query: &[u8],
    udp: bool,
) -> Option<Vec<u8>> {
    match answer(&zone.get(), query, udp) {
        Outcome::Reply(r) => Some(r),
        Outcome::Drop => None,
        Outcome::Forward => match forward(upstreams, query).await {
            Some(r) => Some(r),
            None => servfail(query),
        },
    }
}

/// Serves DNS over UDP on `socket` until the task is dropped; `workers` tasks share it.
pub async fn serve_udp(
    socket: UdpSocket,
    zone: SharedZone,
    upstreams: Arc<Vec<SocketAddr>>,
    workers: usize,
) {
    let socket = Arc::new(socket);
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (socket, zone, upstreams) = (socket.clone(), zone.clone(), upstreams.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let query = &buf[..n];
                match answer(&zone.get(), query, true) {
                    Outcome::Reply(r) => {
                        let _ = socket.send_to(&r, peer).await;
                    }
                    Outcome::Drop => {}
                    Outcome::Forward => {
                        let (socket, upstreams, query) =
                            (socket.clone(), upstreams.clone(), query.to_vec());
                        tokio::spawn(async move {
                            let reply = match forward(&upstreams, &query).await {
                                Some(r) => Some(r),
                                None => servfail(&query),
                            };
                            if let Some(r) = reply {
                                let _ = socket.send_to(&r, peer).await;
                            }
                        });
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn tcp_conn(
    mut conn: TcpStream,
    zone: SharedZone,
    upstreams: Arc<Vec<SocketAddr>>,
) -> std::io::Result<()> {
    loop {
        let len = match tokio::time::timeout(Duration::from_secs(10), conn.read_u16()).await {
            Ok(Ok(n)) => usize::from(n),
            _ => return Ok(()),
        };
        let mut query = vec![0u8; len];
        conn.read_exact(&mut query).await?;
        if let Some(reply) = respond(&zone, &upstreams, &query, false).await {
            let Ok(n) = u16::try_from(reply.len()) else {
                continue;
            };
            conn.write_u16(n).await?;
            conn.write_all(&reply).await?;
        }
    }
}

/// Serves DNS over TCP on `listener` until the task is dropped.
pub async fn serve_tcp(listener: TcpListener, zone: SharedZone, upstreams: Arc<Vec<SocketAddr>>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(tcp_conn(conn, zone.clone(), upstreams.clone()));
    }
}

/// Binds UDP and TCP on `addr` (the same port for both).
pub async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    // Port 0: the kernel picks a free UDP port, which TCP may hold (another process's
    // connection); then try another pick.
    let tries = if addr.port() == 0 { 16 } else { 1 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| DnsError::Bind { addr, source })?;
        let bound = udp
            .local_addr()
            .map_err(|source| DnsError::Bind { addr, source })?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < tries => continue,
            Err(source) => {
                return Err(DnsError::Bind {
                    addr: bound,
                    source,
                })
            }
        }
    }
}
