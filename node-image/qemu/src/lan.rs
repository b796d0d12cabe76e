//! A virtual LAN on this machine for several boards: a Linux bridge holding the gateway address
//! (`A.B.C.1/24`) and one tap device per board, each board's only NIC (QEMU `-netdev tap`).
//! Nothing is routed or masqueraded beyond the bridge: the boards reach each other and this
//! machine's address on the bridge, and nothing else. Everything is removed on drop.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::error::QemuError;

/// The first board's host number in the /24 (`.10`, `.11`, ...).
pub const FIRST_BOARD_HOST: u8 = 10;

/// A board's NIC on a [`Lan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanNic {
    /// Tap device QEMU attaches to.
    pub tap: String,
    /// MAC address of the guest NIC (unique on the LAN; QEMU's default is the same for all).
    pub mac: String,
}

/// A bridge with `n` taps.
#[derive(Debug)]
pub struct Lan {
    bridge: String,
    taps: Vec<String>,
    subnet: [u8; 3],
}

fn ip(args: &[&str]) -> Result<(), QemuError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| QemuError::Tool {
            command: "ip".into(),
            message: format!("{e} (install iproute2)"),
        })?;
    if !out.status.success() {
        return Err(QemuError::Tool {
            command: format!("ip {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

impl Lan {
    /// Creates bridge `<name>br` with `subnet.1/24` and taps `<name>t0..` for `boards` boards
    /// (`name`: at most 10 characters, interface names are limited to 15).
    pub fn create(name: &str, subnet: Ipv4Addr, boards: usize) -> Result<Lan, QemuError> {
        if name.is_empty() || name.len() > 10 || boards > 200 {
            return Err(QemuError::Lan(format!(
                "LAN name `{name}` must be 1 to 10 characters and boards at most 200"
            )));
        }
        let o = subnet.octets();
        let mut lan = Lan {
            bridge: format!("{name}br"),
            taps: Vec::new(),
            subnet: [o[0], o[1], o[2]],
        };
        let gateway = format!("{}/24", lan.gateway());
        ip(&["link", "add", &lan.bridge, "type", "bridge"])?;
        // From here on, drop removes what exists.
        ip(&["addr", "add", &gateway, "dev", &lan.bridge])?;
        ip(&["link", "set", &lan.bridge, "up"])?;
        for i in 0..boards {
            let tap = format!("{name}t{i}");
            ip(&["tuntap", "add", "dev", &tap, "mode", "tap"])?;
            lan.taps.push(tap.clone());
            ip(&["link", "set", &tap, "master", &lan.bridge])?;
            ip(&["link", "set", &tap, "up"])?;
        }
        tracing::info!(bridge = %lan.bridge, %gateway, boards, "LAN up");
        Ok(lan)
    }

    /// This machine's address on the LAN (`A.B.C.1`).
    pub fn gateway(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// Board `i`'s static address (`A.B.C.10+i`).
    pub fn board_ip(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, FIRST_BOARD_HOST + i as u8)
    }

    /// Board `i`'s NIC.
    pub fn nic(&self, i: usize) -> LanNic {
        LanNic {
            tap: self.taps[i].clone(),
            mac: format!("52:54:00:b7:{:02x}:{:02x}", self.subnet[2], i),
        }
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for t in &self.taps {
            let _ = ip(&["link", "del", t]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_anything_is_created() {
        let e = Lan::create("much-too-long", Ipv4Addr::new(172, 30, 9, 0), 2).unwrap_err();
        assert!(e.to_string().contains("1 to 10 characters"), "{e}");
    }

    #[test]
    fn taps_sit_on_the_bridge_and_everything_goes_on_drop() {
        let name = format!("bql{}", std::process::id() % 100_000);
        let sys = std::path::Path::new("/sys/class/net");
        let lan = Lan::create(&name, Ipv4Addr::new(172, 30, 251, 0), 2).unwrap();
        assert_eq!(lan.gateway(), Ipv4Addr::new(172, 30, 251, 1));
        assert_eq!(lan.board_ip(1), Ipv4Addr::new(172, 30, 251, 11));
        let (a, b) = (lan.nic(0), lan.nic(1));
        assert_ne!(a.mac, b.mac);
        for nic in [&a, &b] {
            assert!(sys.join(lan.bridge()).join("brif").join(&nic.tap).exists());
        }
        let addrs = Command::new("ip")
            .args(["-4", "-o", "addr", "show", "dev", lan.bridge()])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&addrs.stdout).contains("172.30.251.1/24"));
        let bridge = lan.bridge().to_string();
        drop(lan);
        assert!(!sys.join(&bridge).exists());
        assert!(!sys.join(&a.tap).exists() && !sys.join(&b.tap).exists());
    }
}
