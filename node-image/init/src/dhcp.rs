//! A small DHCPv4 client (RFC 2131): DISCOVER, OFFER, REQUEST, ACK over a UDP socket bound to
//! the interface, with the broadcast flag set so servers answer to 255.255.255.255 (the
//! interface has no address yet).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// DHCP message types (option 53).
pub const DISCOVER: u8 = 1;
/// OFFER.
pub const OFFER: u8 = 2;
/// REQUEST.
pub const REQUEST: u8 = 3;
/// ACK.
pub const ACK: u8 = 5;
/// NAK.
pub const NAK: u8 = 6;

/// What the server gave us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Our address.
    pub address: Ipv4Addr,
    /// Prefix length (from the subnet mask option).
    pub prefix: u8,
    /// Default gateway.
    pub router: Option<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// Lease time in seconds.
    pub lease_secs: u32,
    /// Server identifier.
    pub server: Ipv4Addr,
}

/// A parsed DHCP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Message type (option 53).
    pub kind: u8,
    /// Transaction id.
    pub xid: u32,
    /// Offered address (yiaddr).
    pub yiaddr: Ipv4Addr,
    /// Subnet mask.
    pub mask: Option<Ipv4Addr>,
    /// Routers.
    pub router: Option<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// Lease seconds.
    pub lease_secs: Option<u32>,
    /// Server identifier.
    pub server: Option<Ipv4Addr>,
}

/// Build a client message of `kind` (DISCOVER or REQUEST).
pub fn build(
    kind: u8,
    xid: u32,
    mac: [u8; 6],
    requested: Option<(Ipv4Addr, Ipv4Addr)>,
    hostname: &str,
) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[10] = 0x80; // broadcast flag
    p[28..34].copy_from_slice(&mac);
    p.extend_from_slice(&MAGIC);
    p.extend_from_slice(&[53, 1, kind]);
    if let Some((addr, server)) = requested {
        p.extend_from_slice(&[50, 4]);
        p.extend_from_slice(&addr.octets());
        p.extend_from_slice(&[54, 4]);
        p.extend_from_slice(&server.octets());
    }
    let host = hostname.as_bytes();
    if !host.is_empty() && host.len() < 64 {
        p.extend_from_slice(&[12, host.len() as u8]);
        p.extend_from_slice(host);
    }
    // Parameter request list: subnet mask, router, DNS, lease time.
    p.extend_from_slice(&[55, 4, 1, 3, 6, 51]);
    p.push(255);
    while p.len() < 300 {
        p.push(0);
    }
    p
}

/// Parse a server message; `None` if it is not a BOOTREPLY with DHCP options.
pub fn parse(p: &[u8]) -> Option<Reply> {
    if p.len() < 240 || p[0] != 2 || p[236..240] != MAGIC {
        return None;
    }
    let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let mut r = Reply {
        kind: 0,
        xid: u32::from_be_bytes(p[4..8].try_into().ok()?),
        yiaddr: ip(&p[16..20]),
        mask: None,
        router: None,
        dns: Vec::new(),
        lease_secs: None,
        server: None,
    };
    let mut i = 240;
    while i < p.len() {
        let code = p[i];
        if code == 255 {
            break;
        }
        if code == 0 {
            i += 1;
            continue;
        }
        // A truncated option ends the list; keep what was parsed.
        let Some(len) = p.get(i + 1).map(|l| *l as usize) else {
            break;
        };
        let Some(v) = p.get(i + 2..i + 2 + len) else {
            break;
        };
        match (code, len) {
            (53, 1) => r.kind = v[0],
            (1, 4) => r.mask = Some(ip(v)),
            (3, l) if l >= 4 => r.router = Some(ip(v)),
            (6, l) if l >= 4 => r.dns = v.chunks_exact(4).map(ip).collect(),
            (51, 4) => r.lease_secs = Some(u32::from_be_bytes(v.try_into().ok()?)),
            (54, 4) => r.server = Some(ip(v)),
            _ => {}
        }
        i += 2 + len;
    }
    Some(r)
}

/// Prefix length of a netmask.
pub fn prefix_of(mask: Ipv4Addr) -> u8 {
    u32::from(mask).count_ones() as u8
}

/// Run DISCOVER/OFFER/REQUEST/ACK on `interface` (which must be up), retrying until `deadline`.
pub fn acquire(
    interface: &str,
    mac: [u8; 6],
    hostname: &str,
    deadline: Duration,
) -> Result<Lease, String> {
    let sock = UdpSocket::bind("0.0.0.0:68").map_err(|e| format!("bind :68: {e}"))?;
    sock.set_broadcast(true).map_err(|e| e.to_string())?;
    let name = interface.as_bytes();
    // SAFETY: SO_BINDTODEVICE takes the interface name bytes and their length.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr() as *const libc::c_void,
            name.len() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(format!(
            "SO_BINDTODEVICE {interface}: {}",
            std::io::Error::last_os_error()
        ));
    }
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .map_err(|e| e.to_string())?;
    let bcast = SocketAddr::from((Ipv4Addr::BROADCAST, 67));
    let start = Instant::now();
    let xid: u32 = std::process::id()
        ^ (start.elapsed().as_nanos() as u32)
        ^ u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    let mut buf = [0u8; 1500];
    let mut last_err = String::from("no DHCP offer");
    while start.elapsed() < deadline {
        sock.send_to(&build(DISCOVER, xid, mac, None, hostname), bcast)
            .map_err(|e| format!("send DISCOVER: {e}"))?;
        let Some(offer) = wait_for(&sock, &mut buf, xid, OFFER) else {
            continue;
        };
        let server = offer.server.unwrap_or(Ipv4Addr::UNSPECIFIED);
        sock.send_to(
            &build(REQUEST, xid, mac, Some((offer.yiaddr, server)), hostname),
            bcast,
        )
        .map_err(|e| format!("send REQUEST: {e}"))?;
        match wait_for(&sock, &mut buf, xid, ACK) {
            Some(ack) if ack.kind == ACK => {
                return Ok(Lease {
                    address: ack.yiaddr,
                    prefix: ack.mask.or(offer.mask).map(prefix_of).unwrap_or(24),
                    router: ack.router.or(offer.router),
                    dns: if ack.dns.is_empty() {
                        offer.dns
                    } else {
                        ack.dns
                    },
                    lease_secs: ack.lease_secs.or(offer.lease_secs).unwrap_or(3600),
                    server,
                })
            }
            Some(_) => last_err = "server sent NAK".into(),
            None => last_err = "no DHCP ACK".into(),
        }
    }
    Err(last_err)
}

fn wait_for(sock: &UdpSocket, buf: &mut [u8], xid: u32, kind: u8) -> Option<Reply> {
    for _ in 0..4 {
        let n = sock.recv(buf).ok()?;
        if let Some(r) = parse(&buf[..n]) {
            if r.xid == xid && (r.kind == kind || (kind == ACK && r.kind == NAK)) {
                return Some(r);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_reply(kind: u8, xid: u32) -> Vec<u8> {
        let mut p = vec![0u8; 236];
        p[0] = 2;
        p[4..8].copy_from_slice(&xid.to_be_bytes());
        p[16..20].copy_from_slice(&[10, 0, 2, 15]);
        p.extend_from_slice(&MAGIC);
        p.extend_from_slice(&[53, 1, kind, 1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2]);
        p.extend_from_slice(&[
            6, 8, 10, 0, 2, 3, 1, 1, 1, 1, 51, 4, 0, 0, 0x0e, 0x10, 54, 4, 10, 0, 2, 2, 255,
        ]);
        p
    }

    #[test]
    fn builds_discover_with_broadcast_flag_and_options() {
        let p = build(DISCOVER, 0x11223344, [2, 0, 0, 0, 0, 1], None, "pi-1");
        assert_eq!(p.len(), 300);
        assert_eq!(&p[4..8], &[0x11, 0x22, 0x33, 0x44]);
        assert_eq!(p[10], 0x80);
        assert_eq!(&p[236..243], &[99, 130, 83, 99, 53, 1, DISCOVER]);
        assert!(p.windows(6).any(|w| w == [12, 4, b'p', b'i', b'-', b'1']));
        let r = build(
            REQUEST,
            1,
            [0; 6],
            Some((Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(10, 0, 2, 2))),
            "",
        );
        assert!(r.windows(6).any(|w| w == [50, 4, 10, 0, 2, 15]));
    }

    #[test]
    fn parses_offer_options() {
        let r = parse(&server_reply(OFFER, 7)).unwrap();
        assert_eq!(r.kind, OFFER);
        assert_eq!(r.xid, 7);
        assert_eq!(r.yiaddr, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(r.mask.map(prefix_of), Some(24));
        assert_eq!(r.router, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(
            r.dns,
            vec![Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)]
        );
        assert_eq!(r.lease_secs, Some(3600));
        assert_eq!(r.server, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(parse(&[0u8; 100]), None);
        let mut bad = server_reply(ACK, 1);
        bad.truncate(245); // option cut short
        assert!(parse(&bad).is_some_and(|r| r.kind == ACK));
    }
}
