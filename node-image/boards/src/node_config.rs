//! The node config: `bramble.yaml` on the boot partition, read by `bramble init` on every boot.

use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{BoardError, FieldIssue};
use crate::load::parse_yaml;

/// What the node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// API server, store, scheduler and controllers only.
    Controller,
    /// Kubelet only; joins `join.address`.
    Worker,
    /// Controller and kubelet on the same board (single-board cluster or first board).
    #[default]
    Both,
}

impl NodeRole {
    /// Does this role run the controller?
    pub fn runs_controller(self) -> bool {
        matches!(self, NodeRole::Controller | NodeRole::Both)
    }
    /// Does this role run the kubelet?
    pub fn runs_kubelet(self) -> bool {
        matches!(self, NodeRole::Worker | NodeRole::Both)
    }
}

/// Where a worker joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinConfig {
    /// Controller API address, `https://host:port`.
    pub address: String,
    /// Bootstrap token (`abcdef.0123456789abcdef`).
    pub token: String,
    /// The controller CA's public-key hash (`sha256:<hex>`, printed by `bramble token create
    /// --print-join-command`); the kubelet refuses to join without it.
    #[serde(default)]
    pub ca_cert_hash: Option<String>,
}

/// DHCP or static addressing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// DHCPv4 client on `interface`.
    #[default]
    Dhcp,
    /// `address` / `gateway` from the config.
    Static,
}

/// A static IPv4 address with prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StaticAddress {
    /// Address.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl TryFrom<String> for StaticAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` must be ADDRESS/PREFIX, e.g. 192.168.1.10/24"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("`{ip}` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("`{prefix}` is not a prefix length 0..=32"))?;
        Ok(StaticAddress { ip, prefix })
    }
}

impl From<StaticAddress> for String {
    fn from(a: StaticAddress) -> String {
        format!("{}/{}", a.ip, a.prefix)
    }
}

/// Network settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// DHCP or static.
    #[serde(default)]
    pub mode: NetworkMode,
    /// Interface to configure.
    #[serde(default = "default_interface")]
    pub interface: String,
    /// Static address (mode static).
    #[serde(default)]
    pub address: Option<StaticAddress>,
    /// Default gateway (mode static).
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers written to /run/resolv.conf (static mode; DHCP uses the offered ones).
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
}

fn default_interface() -> String {
    "eth0".into()
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            mode: NetworkMode::Dhcp,
            interface: default_interface(),
            address: None,
            gateway: None,
            dns: Vec::new(),
        }
    }
}

/// Time servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtpConfig {
    /// SNTP servers, `host` or `host:port` (port 123 by default).
    #[serde(default = "default_ntp_servers")]
    pub servers: Vec<String>,
    /// Seconds to wait for an answer from each server.
    #[serde(default = "default_ntp_timeout")]
    pub timeout_seconds: u32,
}

fn default_ntp_servers() -> Vec<String> {
    vec!["pool.ntp.org".into()]
}
fn default_ntp_timeout() -> u32 {
    3
}

impl Default for NtpConfig {
    fn default() -> Self {
        NtpConfig {
            servers: default_ntp_servers(),
            timeout_seconds: default_ntp_timeout(),
        }
    }
}

/// SSH-free debug toggles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DebugConfig {
    /// Copy service logs to the console as well as the ring buffer.
    #[serde(default)]
    pub console_logs: bool,
    /// Do not start any service (boot to init only; for bring-up).
    #[serde(default)]
    pub no_services: bool,
    /// Power off instead of retrying when a fatal boot error happens.
    #[serde(default)]
    pub poweroff_on_fatal: bool,
    /// After boot, run the container runtime self-test once (`bramble init selftest`: a pod
    /// sandbox and a busybox container with a memory limit; results on the console). Needs
    /// busybox at /var/lib/bramble/selftest/busybox on the data partition.
    #[serde(default)]
    pub runtime_selftest: bool,
}

/// The node API (`bramble node ...`): HTTPS with the node's own certificate and a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeApiConfig {
    /// TCP port (default 50000).
    #[serde(default = "default_api_port")]
    pub port: u16,
    /// Bearer token clients without a cluster admin's client certificate send (the way in
    /// before the node knows its cluster); without one, only client certificates are let in.
    #[serde(default)]
    pub token: Option<String>,
}

fn default_api_port() -> u16 {
    50000
}

impl Default for NodeApiConfig {
    fn default() -> Self {
        NodeApiConfig {
            port: default_api_port(),
            token: None,
        }
    }
}

/// Extra arguments for the services init starts (appended to the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceArgs {
    /// Appended to `bramble controller ...`.
    #[serde(default)]
    pub controller: Vec<String>,
    /// Appended to `bramble kubelet ...`.
    #[serde(default)]
    pub kubelet: Vec<String>,
}

/// Container registries the kubelet pulls from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    /// Registries reached over plain HTTP (Docker's `insecure-registries`): `host`,
    /// `host:port` or a CIDR such as `192.168.1.0/24`; each is passed to the kubelet as
    /// `--insecure-registry`. Loopback registries are always plain HTTP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insecure: Vec<String>,
}

/// `bramble.yaml`: per-node settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Role.
    #[serde(default)]
    pub role: NodeRole,
    /// Hostname (also the Node name).
    pub hostname: String,
    /// Controller to join (required for workers).
    #[serde(default)]
    pub join: Option<JoinConfig>,
    /// Network.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Time.
    #[serde(default)]
    pub ntp: NtpConfig,
    /// Debug toggles.
    #[serde(default)]
    pub debug: DebugConfig,
    /// Extra service arguments.
    #[serde(default)]
    pub services: ServiceArgs,
    /// Node API.
    #[serde(default)]
    pub api: NodeApiConfig,
    /// Container registries.
    #[serde(default)]
    pub registries: RegistriesConfig,
}

impl NodeConfig {
    /// Parse and validate a node config document (`path` is for messages).
    pub fn parse(path: &Path, text: &str) -> Result<NodeConfig, BoardError> {
        let cfg: NodeConfig = parse_yaml(path, text)?;
        let issues = cfg.check();
        if issues.is_empty() {
            Ok(cfg)
        } else {
            Err(BoardError::Invalid {
                path: path.to_path_buf(),
                issues,
            })
        }
    }

    /// Read, parse and validate a node config file.
    pub fn load(path: &Path) -> Result<NodeConfig, BoardError> {
        let text = std::fs::read_to_string(path).map_err(|source| BoardError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        NodeConfig::parse(path, &text)
    }

    /// The config an image carries when the user gave none: a single-board cluster on DHCP.
    pub fn default_for_board(board: &str) -> NodeConfig {
        NodeConfig {
            role: NodeRole::Both,
            hostname: format!("bramble-{board}"),
            join: None,
            network: NetworkConfig::default(),
            ntp: NtpConfig::default(),
            debug: DebugConfig::default(),
            services: ServiceArgs::default(),
            api: NodeApiConfig::default(),
            registries: RegistriesConfig::default(),
        }
    }

    fn check(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        let mut bad = |field: &str, message: String| {
            issues.push(FieldIssue {
                field: field.into(),
                message,
            })
        };
        if !valid_hostname(&self.hostname) {
            bad(
                "hostname",
                format!(
                    "`{}` is not a valid hostname (lower-case letters, digits, `-`, at most 63)",
                    self.hostname
                ),
            );
        }
        if self.role == NodeRole::Worker && self.join.is_none() {
            bad(
                "join",
                "a worker needs `join.address` and `join.token`".into(),
            );
        }
        if let Some(j) = &self.join {
            if !j.address.starts_with("https://") {
                bad(
                    "join.address",
                    format!("`{}` must start with https://", j.address),
                );
            }
            let ok = j.token.split_once('.').is_some_and(|(id, secret)| {
                id.len() == 6
                    && secret.len() == 16
                    && j.token
                        .chars()
                        .all(|c| c == '.' || c.is_ascii_lowercase() || c.is_ascii_digit())
            });
            if !ok {
                bad(
                    "join.token",
                    "must look like `abcdef.0123456789abcdef` ([a-z0-9]{6}.[a-z0-9]{16})".into(),
                );
            }
            if let Some(h) = &j.ca_cert_hash {
                let hex = h.strip_prefix("sha256:").unwrap_or("");
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    bad(
                        "join.ca_cert_hash",
                        format!("`{h}` must be `sha256:` and 64 hex digits"),
                    );
                }
            }
        }
        if self.network.interface.is_empty() || self.network.interface.len() > 15 {
            bad(
                "network.interface",
                "must be an interface name of 1 to 15 characters".into(),
            );
        }
        if self.network.mode == NetworkMode::Static {
            if self.network.address.is_none() {
                bad(
                    "network.address",
                    "static mode needs an address like 192.168.1.10/24".into(),
                );
            }
        } else if self.network.address.is_some() || self.network.gateway.is_some() {
            bad(
                "network.mode",
                "address/gateway are set but mode is dhcp; set `mode: static`".into(),
            );
        }
        if let Some(t) = &self.api.token {
            if t.len() < 16 || !t.chars().all(|c| c.is_ascii_graphic()) {
                bad(
                    "api.token",
                    "must be at least 16 printable characters without spaces".into(),
                );
            }
        }
        if self.api.port == 0 {
            bad("api.port", "must be 1..=65535".into());
        }
        if self.ntp.servers.is_empty() {
            bad(
                "ntp.servers",
                "needs at least one server (boards have no RTC; TLS needs the time)".into(),
            );
        }
        for (i, s) in self.ntp.servers.iter().enumerate() {
            if s.is_empty() || s.contains(char::is_whitespace) {
                bad(
                    &format!("ntp.servers[{i}]"),
                    format!("`{s}` is not a host or host:port"),
                );
            }
        }
        if self.ntp.timeout_seconds == 0 || self.ntp.timeout_seconds > 60 {
            bad("ntp.timeout_seconds", "must be 1..=60".into());
        }
        for (i, r) in self.registries.insecure.iter().enumerate() {
            if let Err(why) = check_registry_entry(r) {
                bad(&format!("registries.insecure[{i}]"), format!("`{r}` {why}"));
            }
        }
        issues
    }
}

/// An insecure-registry entry: `host`, `host:port`, `[v6]:port` or `ADDRESS/PREFIX`.
fn check_registry_entry(entry: &str) -> Result<(), &'static str> {
    if entry.contains("://") {
        return Err("must be host[:port] or a CIDR, without a scheme");
    }
    if let Some((net, bits)) = entry.split_once('/') {
        let max = match net.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => 32,
            Ok(std::net::IpAddr::V6(_)) => 128,
            Err(_) => return Err("is not a CIDR (ADDRESS/PREFIX) nor host[:port]"),
        };
        return match bits.parse::<u8>() {
            Ok(b) if b <= max => Ok(()),
            _ => Err("has a prefix length out of range"),
        };
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or("has an unclosed `[`")?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("has no IPv6 address inside [ ]");
        }
        (h, tail.strip_prefix(':'))
    } else {
        match entry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (entry, None),
        }
    };
    let host_ok = entry.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    if !host_ok {
        return Err("is not a host name or address");
    }
    if let Some(p) = port {
        if !matches!(p.parse::<u16>(), Ok(n) if n > 0) {
            return Err("has a port that is not 1..=65535");
        }
    }
    Ok(())
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && !h.starts_with('-')
        && !h.ends_with('-')
        && h.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
