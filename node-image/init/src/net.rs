//! Interface configuration with the classic ioctls (no netlink dependency): link up, IPv4
//! address and mask, default route, MAC address; and the node's network bring-up (static or
//! DHCP) writing /run/resolv.conf.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use bramble_boards::{NetworkConfig, NetworkMode};

use crate::dhcp;
use crate::error::InitError;

const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
const SIOCSIFFLAGS: libc::c_ulong = 0x8914;
const SIOCSIFADDR: libc::c_ulong = 0x8916;
const SIOCSIFNETMASK: libc::c_ulong = 0x891c;
const SIOCGIFHWADDR: libc::c_ulong = 0x8927;
const SIOCADDRT: libc::c_ulong = 0x890b;

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

fn net_err(interface: &str, what: &str) -> InitError {
    InitError::Network {
        interface: interface.into(),
        message: format!("{what}: {}", std::io::Error::last_os_error()),
    }
}

fn control_socket(interface: &str) -> Result<OwnedFd, InitError> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(net_err(interface, "socket"));
    }
    // SAFETY: fd is a fresh, valid descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq(interface: &str) -> Result<IfReq, InitError> {
    let mut r = IfReq {
        name: [0; 16],
        data: [0; 24],
    };
    let b = interface.as_bytes();
    if b.is_empty() || b.len() > 15 {
        return Err(InitError::Network {
            interface: interface.into(),
            message: "bad interface name".into(),
        });
    }
    r.name[..b.len()].copy_from_slice(b);
    Ok(r)
}

fn ioctl(fd: &OwnedFd, req: libc::c_ulong, arg: *mut libc::c_void) -> bool {
    // SAFETY: callers pass a pointer to the struct the request expects.
    unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) == 0 }
}

fn sockaddr_in(addr: Ipv4Addr) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    s[4..8].copy_from_slice(&addr.octets());
    s
}

fn as_sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let raw = sockaddr_in(addr);
    // SAFETY: sockaddr is 16 plain bytes.
    unsafe { std::mem::transmute::<[u8; 16], libc::sockaddr>(raw) }
}

/// Bring `interface` up.
pub fn link_up(interface: &str) -> Result<(), InitError> {
    let fd = control_socket(interface)?;
    let mut r = ifreq(interface)?;
    if !ioctl(&fd, SIOCGIFFLAGS, &mut r as *mut _ as *mut _) {
        return Err(net_err(interface, "SIOCGIFFLAGS"));
    }
    let flags = i16::from_ne_bytes([r.data[0], r.data[1]]) | (libc::IFF_UP as i16);
    r.data[0..2].copy_from_slice(&flags.to_ne_bytes());
    if !ioctl(&fd, SIOCSIFFLAGS, &mut r as *mut _ as *mut _) {
        return Err(net_err(interface, "SIOCSIFFLAGS"));
    }
    Ok(())
}

/// The interface's MAC address.
pub fn mac_address(interface: &str) -> Result<[u8; 6], InitError> {
    let fd = control_socket(interface)?;
    let mut r = ifreq(interface)?;
    if !ioctl(&fd, SIOCGIFHWADDR, &mut r as *mut _ as *mut _) {
        return Err(net_err(interface, "SIOCGIFHWADDR"));
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&r.data[2..8]);
    Ok(mac)
}

/// Netmask of a prefix length.
pub fn mask_of(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    })
}

/// Set the IPv4 address and mask of `interface`.
pub fn set_address(interface: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), InitError> {
    let fd = control_socket(interface)?;
    let mut r = ifreq(interface)?;
    r.data[..16].copy_from_slice(&sockaddr_in(addr));
    if !ioctl(&fd, SIOCSIFADDR, &mut r as *mut _ as *mut _) {
        return Err(net_err(interface, "SIOCSIFADDR"));
    }
    r.data[..16].copy_from_slice(&sockaddr_in(mask_of(prefix)));
    if !ioctl(&fd, SIOCSIFNETMASK, &mut r as *mut _ as *mut _) {
        return Err(net_err(interface, "SIOCSIFNETMASK"));
    }
    Ok(())
}

/// Add a default route via `gateway` on `interface`.
pub fn add_default_route(interface: &str, gateway: Ipv4Addr) -> Result<(), InitError> {
    let fd = control_socket(interface)?;
    let mut dev = [0u8; 16];
    dev[..interface.len().min(15)]
        .copy_from_slice(&interface.as_bytes()[..interface.len().min(15)]);
    let mut rt = RtEntry {
        rt_pad1: 0,
        rt_dst: as_sockaddr(Ipv4Addr::UNSPECIFIED),
        rt_gateway: as_sockaddr(gateway),
        rt_genmask: as_sockaddr(Ipv4Addr::UNSPECIFIED),
        rt_flags: 0x1 | 0x2, // RTF_UP | RTF_GATEWAY
        rt_pad2: 0,
        rt_pad3: 0,
        rt_pad4: std::ptr::null_mut(),
        rt_metric: 0,
        rt_dev: dev.as_mut_ptr() as *mut libc::c_char,
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    if !ioctl(&fd, SIOCADDRT, &mut rt as *mut _ as *mut _) {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(InitError::Network {
                interface: interface.into(),
                message: format!("SIOCADDRT: {e}"),
            });
        }
    }
    Ok(())
}

/// The address the node ended up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetState {
    /// Interface.
    pub interface: String,
    /// Address.
    pub address: Ipv4Addr,
    /// Prefix.
    pub prefix: u8,
    /// Gateway.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// "dhcp" or "static".
    pub source: &'static str,
}

/// Text of /run/resolv.conf for `dns`.
pub fn resolv_conf(dns: &[Ipv4Addr]) -> String {
    dns.iter().map(|d| format!("nameserver {d}\n")).collect()
}

/// Bring up loopback and the configured interface (waiting up to `wait` for it to appear).
pub fn bring_up(
    cfg: &NetworkConfig,
    hostname: &str,
    wait: Duration,
) -> Result<NetState, InitError> {
    link_up("lo")?;
    let start = Instant::now();
    let iface = &cfg.interface;
    while !std::path::Path::new("/sys/class/net").join(iface).exists() {
        if start.elapsed() > wait {
            return Err(InitError::Network {
                interface: iface.clone(),
                message: format!("did not appear within {} s", wait.as_secs()),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    link_up(iface)?;
    let state = match cfg.mode {
        NetworkMode::Static => {
            let a = cfg.address.ok_or_else(|| InitError::Network {
                interface: iface.clone(),
                message: "static mode without address".into(),
            })?;
            set_address(iface, a.ip, a.prefix)?;
            if let Some(gw) = cfg.gateway {
                add_default_route(iface, gw)?;
            }
            NetState {
                interface: iface.clone(),
                address: a.ip,
                prefix: a.prefix,
                gateway: cfg.gateway,
                dns: cfg.dns.clone(),
                source: "static",
            }
        }
        NetworkMode::Dhcp => {
            let mac = mac_address(iface)?;
            let lease = dhcp::acquire(iface, mac, hostname, Duration::from_secs(30)).map_err(
                |message| InitError::Network {
                    interface: iface.clone(),
                    message,
                },
            )?;
            set_address(iface, lease.address, lease.prefix)?;
            if let Some(gw) = lease.router {
                add_default_route(iface, gw)?;
            }
            let dns = if cfg.dns.is_empty() {
                lease.dns
            } else {
                cfg.dns.clone()
            };
            NetState {
                interface: iface.clone(),
                address: lease.address,
                prefix: lease.prefix,
                gateway: lease.router,
                dns,
                source: "dhcp",
            }
        }
    };
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_resolv() {
        assert_eq!(mask_of(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(mask_of(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(mask_of(32), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(
            resolv_conf(&[Ipv4Addr::new(10, 0, 2, 3)]),
            "nameserver 10.0.2.3\n"
        );
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
        assert_eq!(std::mem::size_of::<RtEntry>(), 120);
    }

    #[test]
    fn loopback_mac_reads_in_this_namespace() {
        // lo exists everywhere; its hardware address is all zeros.
        assert_eq!(mac_address("lo").unwrap(), [0; 6]);
        assert!(mac_address("no-such-if0").is_err());
    }
}
