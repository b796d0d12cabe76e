//! Which registries are spoken to over plain HTTP: loopback hosts always (127.0.0.0/8, ::1,
//! `localhost`), as Docker and containerd allow, plus a configurable insecure-registry list of
//! `host[:port]` names or CIDR ranges (Docker's `insecure-registries` syntax). HTTPS otherwise.

use std::net::IpAddr;

/// Registry connection settings shared by all pulls of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Registries reached over plain HTTP besides loopback: `host`, `host:port`, or a CIDR such
    /// as `192.168.1.0/24` (matching any port on those addresses).
    pub insecure_registries: Vec<String>,
    /// Extra PEM CA certificates trusted for HTTPS registries (for LAN registries with a private
    /// CA), on top of the system roots.
    pub extra_root_certificates_pem: Vec<Vec<u8>>,
}

impl RegistryConfig {
    /// Whether `registry` (`host[:port]` as in an image reference) uses plain HTTP.
    pub fn uses_plain_http(&self, registry: &str) -> bool {
        let host = host_of(registry);
        if is_loopback_host(host) {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            if let Some((net, bits)) = entry.split_once('/') {
                match (
                    host.parse::<IpAddr>(),
                    net.parse::<IpAddr>(),
                    bits.parse::<u8>(),
                ) {
                    (Ok(ip), Ok(net), Ok(bits)) => cidr_contains(net, bits, ip),
                    _ => false,
                }
            } else {
                entry == registry
                    || (!entry.contains(':') && entry == host)
                    || entry.trim_start_matches('[').trim_end_matches(']') == host
            }
        })
    }
}

/// The host part of `host[:port]` / `[v6]:port`, brackets removed.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => registry,
    }
}

/// `localhost`, 127.0.0.0/8, ::1 (and IPv4-mapped loopback).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_always_plain_http() {
        let c = RegistryConfig::default();
        for r in [
            "127.0.0.1:5000",
            "127.9.8.7",
            "localhost:5000",
            "[::1]:5000",
            "::1",
            "LOCALHOST",
        ] {
            assert!(c.uses_plain_http(r), "{r}");
        }
        for r in [
            "docker.io",
            "192.168.1.10:5000",
            "128.0.0.1",
            "localhost.example.com",
        ] {
            assert!(!c.uses_plain_http(r), "{r}");
        }
    }

    #[test]
    fn insecure_list_by_name_port_and_cidr() {
        let c = RegistryConfig {
            insecure_registries: vec![
                "registry.lan:5000".into(),
                "mirror.lan".into(),
                "192.168.1.0/24".into(),
                "fd00::/8".into(),
            ],
            ..Default::default()
        };
        assert!(c.uses_plain_http("registry.lan:5000"));
        assert!(!c.uses_plain_http("registry.lan:5001"));
        assert!(c.uses_plain_http("mirror.lan"));
        assert!(c.uses_plain_http("mirror.lan:8080"));
        assert!(c.uses_plain_http("192.168.1.10:5000"));
        assert!(!c.uses_plain_http("192.168.2.10:5000"));
        assert!(c.uses_plain_http("[fd12::1]:5000"));
        assert!(!c.uses_plain_http("ghcr.io"));
    }

    #[test]
    fn host_extraction() {
        assert_eq!(host_of("a:1"), "a");
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("docker.io"), "docker.io");
    }
}
