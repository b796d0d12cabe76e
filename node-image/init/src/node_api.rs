//! Init's side of the node API: the [`NodeHandler`] over the log ring, the status collector and
//! PID 1's signals, and starting the server when the node config has an `api.token`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use bramble_boards::NodeConfig;
use bramble_node_api::tls::{load_or_create, server_config};
use bramble_node_api::{LogEntry, NodeHandler, PowerRequest, ServerSettings, UpgradeManifest};

use crate::boot::Console;
use crate::logring::LogRing;
use crate::status::StatusSource;
use crate::upgrade::UpgradeTarget;

/// Where the node API keeps its certificate (data partition).
pub const NODE_API_DIR: &str = "/var/lib/bramble/node-api";

/// The handler init serves.
pub struct InitHandler {
    /// Init's log ring.
    pub ring: LogRing,
    /// Status source (`/`, `/var`).
    pub status: StatusSource,
    /// The certificate fingerprint, reported in status.
    pub fingerprint: String,
    /// A/B upgrades (one at a time).
    pub upgrade: std::sync::Mutex<UpgradeTarget>,
}

impl NodeHandler for InitHandler {
    fn status(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self.status.collect()).unwrap_or_default();
        v["node_api_fingerprint"] = self.fingerprint.clone().into();
        if let Ok(u) = self.upgrade.try_lock() {
            v["slots"] = match u.boot.record() {
                Ok(r) => serde_json::json!({
                    "booted": u.booted.letter(),
                    "active": r.active.letter(),
                    "trying": r.trying.map(|s| s.letter()),
                    "failed": r.failed.map(|s| s.letter()),
                }),
                Err(e) => {
                    serde_json::json!({ "booted": u.booted.letter(), "error": e.to_string() })
                }
            };
        }
        v
    }

    fn logs(&self, since: u64, source: Option<&str>) -> Vec<LogEntry> {
        self.ring
            .since(since, source)
            .into_iter()
            .map(|l| LogEntry {
                seq: l.seq,
                time_ms: l
                    .time
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0),
                source: l.source,
                text: l.text,
            })
            .collect()
    }

    fn kubeconfig(&self) -> Option<String> {
        std::fs::read_to_string(crate::services::ADMIN_KUBECONFIG).ok()
    }

    fn upgrade(
        &self,
        manifest: UpgradeManifest,
        body: &mut dyn std::io::Read,
    ) -> Result<serde_json::Value, (u16, String)> {
        let target = self
            .upgrade
            .try_lock()
            .map_err(|_| (409u16, "another upgrade is in progress".to_string()))?;
        self.ring.push(
            "init",
            &format!("upgrade to {} requested", manifest.version),
        );
        let v = target.apply(&manifest, body).inspect_err(|(_, m)| {
            self.ring.push("init", &format!("upgrade refused: {m}"));
        })?;
        self.ring.push(
            "init",
            &format!(
                "upgrade written to slot {}; rebooting to try it",
                v["slot"].as_str().unwrap_or("?")
            ),
        );
        crate::slots::request_tryboot();
        // Let the answer reach the client, then reboot as `bramble node reboot` does.
        let _ = std::thread::Builder::new().spawn(|| {
            std::thread::sleep(std::time::Duration::from_secs(2));
            // SAFETY: kill(2) to our own process (PID 1).
            unsafe { libc::kill(std::process::id() as i32, libc::SIGINT) };
        });
        Ok(v)
    }

    fn power(&self, action: PowerRequest) -> Result<(), String> {
        // The main loop takes these from sigtimedwait, as for `bramble init reboot|poweroff`.
        let sig = match action {
            PowerRequest::Reboot => libc::SIGINT,
            PowerRequest::Poweroff => libc::SIGUSR2,
        };
        // SAFETY: kill(2) to our own process (PID 1).
        if unsafe { libc::kill(std::process::id() as i32, sig) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        Ok(())
    }
}

/// Starts the node API if `cfg.api.token` is set; logs the address and certificate fingerprint.
pub fn start(
    console: &Console,
    cfg: &NodeConfig,
    address: Option<Ipv4Addr>,
    upgrade: UpgradeTarget,
) {
    let Some(token) = cfg.api.token.clone() else {
        return console.log("node API off (no api.token in the node config)");
    };
    let mut names = vec![cfg.hostname.clone(), "localhost".into(), "127.0.0.1".into()];
    names.extend(address.map(|a| a.to_string()));
    let started = load_or_create(Path::new(NODE_API_DIR), &names).and_then(|id| {
        let fingerprint = id.fingerprint();
        let handler = Arc::new(InitHandler {
            ring: console.ring.clone(),
            status: StatusSource::default(),
            fingerprint: fingerprint.clone(),
            upgrade: std::sync::Mutex::new(upgrade),
        });
        let listen = SocketAddr::from(([0, 0, 0, 0], cfg.api.port));
        let settings = ServerSettings {
            tls: server_config(&id)?,
            token,
        };
        bramble_node_api::spawn(listen, settings, handler).map(|a| (a, fingerprint))
    });
    match started {
        Ok((addr, fp)) => {
            let _ = std::fs::write(
                Path::new(NODE_API_DIR).join("fingerprint"),
                format!("{fp}\n"),
            );
            console.log(&format!(
                "node API on https://{addr} certificate sha256 {fp}"
            ));
        }
        Err(e) => console.log(&format!("node API: {e}")),
    }
}
