//! What the cluster PKI is created for: the cluster name and the API server's names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::PkiError;

/// The first address of Bramble's default service CIDR (10.43.0.0/16, as in k3s): the
/// ClusterIP of the `kubernetes` Service in `default`.
pub const DEFAULT_SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 43, 0, 1));

/// The DNS names every API server certificate carries (kube-apiserver's defaults for the
/// `kubernetes` Service, with the `cluster.local` domain).
pub const KUBERNETES_SERVICE_NAMES: [&str; 4] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// Options for [`crate::ClusterPki::load_or_create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiOptions {
    /// The cluster name; used in the CA's common name.
    pub cluster_name: String,
    /// Subject alternative names the serving certificate must carry: DNS names and IP
    /// addresses (textual form). A name missing from the certificate on disk causes a reissue.
    pub server_sans: Vec<String>,
}

impl PkiOptions {
    /// Options with Bramble's default server names (see [`default_server_sans`]) for this
    /// machine's hostname, the default service IP, and `extra_sans` (e.g. from `--tls-san`).
    pub fn new(cluster_name: impl Into<String>, extra_sans: &[String]) -> Self {
        PkiOptions {
            cluster_name: cluster_name.into(),
            server_sans: default_server_sans(
                local_hostname().as_deref(),
                DEFAULT_SERVICE_IP,
                extra_sans,
            ),
        }
    }
}

/// The serving certificate's names: `localhost`, `127.0.0.1`, `::1`, `hostname` (if any), the
/// `kubernetes` Service names, `service_ip` and `extra`, in that order, without duplicates.
pub fn default_server_sans(
    hostname: Option<&str>,
    service_ip: IpAddr,
    extra: &[String],
) -> Vec<String> {
    let mut sans: Vec<String> = vec![
        "localhost".into(),
        IpAddr::V4(Ipv4Addr::LOCALHOST).to_string(),
        IpAddr::V6(Ipv6Addr::LOCALHOST).to_string(),
    ];
    sans.extend(hostname.map(str::to_string));
    sans.extend(KUBERNETES_SERVICE_NAMES.iter().map(|s| s.to_string()));
    sans.push(service_ip.to_string());
    sans.extend(extra.iter().cloned());
    normalize_sans(&sans)
}

/// Trims, lower-cases DNS names, canonicalizes IP addresses and removes empty entries and
/// duplicates, keeping the first occurrence's position.
pub fn normalize_sans(sans: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(sans.len());
    for s in sans {
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        let s = match s.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => s.to_ascii_lowercase(),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// One subject alternative name, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum San {
    /// A DNS name (lower case).
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl San {
    /// Parses `s` as an IP address, else as a DNS name (letters, digits, `-`, `.`, and a
    /// leading `*.` wildcard label).
    pub fn parse(s: &str) -> Result<San, PkiError> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        let body = s.strip_prefix("*.").unwrap_or(s);
        let valid = !body.is_empty()
            && body.len() <= 253
            && body.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(PkiError::InvalidSan(s.to_string()));
        }
        Ok(San::Dns(s.to_ascii_lowercase()))
    }
}

/// The local hostname from the kernel (`/proc/sys/kernel/hostname`, else `/etc/hostname`).
pub fn local_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty() && s != "(none)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sans_cover_upstream_names_and_dedupe() {
        let sans = default_server_sans(
            Some("Pi-1"),
            DEFAULT_SERVICE_IP,
            &["pi-1".into(), "192.168.1.10".into(), " ".into()],
        );
        assert_eq!(
            sans,
            vec![
                "localhost",
                "127.0.0.1",
                "::1",
                "pi-1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "10.43.0.1",
                "192.168.1.10",
            ]
        );
    }

    #[test]
    fn san_parse() {
        assert_eq!(San::parse("::1").unwrap(), San::Ip("::1".parse().unwrap()));
        assert_eq!(San::parse("Foo.Bar").unwrap(), San::Dns("foo.bar".into()));
        assert_eq!(San::parse("*.pi.lan").unwrap(), San::Dns("*.pi.lan".into()));
        assert!(San::parse("has space").is_err());
        assert!(San::parse("-bad.example").is_err());
        assert!(San::parse("a..b").is_err());
    }
}
