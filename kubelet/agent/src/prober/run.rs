//! Running one probe (upstream `prober.go` + `pkg/probe/{exec,http,tcp,grpc}`): exec in the
//! container through the runtime, or a connection made inside the pod's network namespace.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bramble_runtime::{ContainerRuntime, ExecConfig};
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ProbeResult;
use crate::expansion::expand;

/// Where a probe runs.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The pod's network namespace (`None`: the kubelet's, for host-network pods).
    pub netns: Option<PathBuf>,
    /// The pod's IP (the default host of network probes).
    pub pod_ip: IpAddr,
    /// The container's spec (named ports, env for exec commands).
    pub container: Arc<Container>,
    /// The runtime's container id (exec probes).
    pub container_id: String,
    /// `timeoutSeconds`.
    pub timeout: Duration,
}

/// Resolves a probe port: a number, or the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) if (1..=65535).contains(n) => Ok(*n as u16),
        IntOrString::Int(n) => Err(format!("invalid port number: {n}")),
        IntOrString::String(s) => {
            if let Ok(n) = s.parse::<i32>() {
                return resolve_port(&IntOrString::Int(n), c);
            }
            c.ports
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .map(|p| p.container_port as u16)
                .ok_or_else(|| format!("couldn't find port: {s} in {}", c.name))
        }
    }
}

/// The address a network probe connects to: `host` (an IP) or the pod's IP.
fn address(host: Option<&str>, t: &ProbeTarget, port: u16) -> Result<SocketAddr, String> {
    let ip = match host.filter(|h| !h.is_empty()) {
        Some(h) => h
            .parse::<IpAddr>()
            .map_err(|_| format!("probe host {h:?} is not an IP address"))?,
        None => t.pod_ip,
    };
    Ok(SocketAddr::new(ip, port))
}

/// Connects to `addr` from the pod's network namespace.
pub(super) async fn dial(
    t: &ProbeTarget,
    addr: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    bramble_kubelet_server::netns::connect_addr(t.netns.as_deref(), addr, t.timeout).await
}

/// Runs `probe` once against `t`: the verdict and its output (the failure message).
/// `Unknown` means the probe could not run at all.
pub async fn run_probe<R: ContainerRuntime>(
    rt: &R,
    probe: &Probe,
    t: &ProbeTarget,
) -> (ProbeResult, String) {
    if let Some(e) = &probe.exec {
        return exec(rt, e.command.as_deref().unwrap_or(&[]), t).await;
    }
    if let Some(h) = &probe.http_get {
        let port = match resolve_port(&h.port, &t.container) {
            Ok(p) => p,
            Err(m) => return (ProbeResult::Unknown, m),
        };
        let addr = match address(h.host.as_deref(), t, port) {
            Ok(a) => a,
            Err(m) => return (ProbeResult::Unknown, m),
        };
        return super::http::probe(h, addr, t).await;
    }
    if let Some(s) = &probe.tcp_socket {
        let port = match resolve_port(&s.port, &t.container) {
            Ok(p) => p,
            Err(m) => return (ProbeResult::Unknown, m),
        };
        let addr = match address(s.host.as_deref(), t, port) {
            Ok(a) => a,
            Err(m) => return (ProbeResult::Unknown, m),
        };
        return match dial(t, addr).await {
            Ok(_) => (ProbeResult::Success, String::new()),
            Err(e) => (ProbeResult::Failure, format!("dial tcp {addr}: {e}")),
        };
    }
    if let Some(g) = &probe.grpc {
        let port = match u16::try_from(g.port) {
            Ok(p) if p > 0 => p,
            _ => {
                return (
                    ProbeResult::Unknown,
                    format!("invalid port number: {}", g.port),
                )
            }
        };
        let addr = SocketAddr::new(t.pod_ip, port);
        return super::grpc::probe(addr, g.service.as_deref().unwrap_or(""), t).await;
    }
    (ProbeResult::Unknown, "missing probe handler".to_string())
}

/// An exec probe: exit code 0 succeeds; a timeout fails (upstream since 1.20). `$(VAR)` in
/// the command expands against the container's static env values, as upstream.
async fn exec<R: ContainerRuntime>(
    rt: &R,
    command: &[String],
    t: &ProbeTarget,
) -> (ProbeResult, String) {
    let env = t.container.env.as_deref().unwrap_or(&[]);
    let lookup = |n: &str| {
        env.iter()
            .rev()
            .find(|e| e.name == n && e.value_from.is_none())
            .map(|e| e.value.clone().unwrap_or_default())
    };
    let command: Vec<String> = command.iter().map(|a| expand(a, &lookup)).collect();
    let cfg = ExecConfig {
        command: command.clone(),
        ..Default::default()
    };
    match rt.exec_sync(&t.container_id, &cfg, t.timeout).await {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let text = text.trim_end().to_string();
            if out.exit_code == 0 {
                (ProbeResult::Success, text)
            } else if text.is_empty() {
                (
                    ProbeResult::Failure,
                    format!("command {command:?} exited with {}", out.exit_code),
                )
            } else {
                (ProbeResult::Failure, text)
            }
        }
        Err(bramble_runtime::RuntimeError::Timeout) => (
            ProbeResult::Failure,
            format!(
                "command {command:?} timed out after {}s",
                t.timeout.as_secs()
            ),
        ),
        Err(e) => (ProbeResult::Unknown, e.to_string()),
    }
}
