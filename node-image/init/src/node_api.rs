//! Init's side of the node API: the [`NodeHandler`] over the log ring, the status collector and
//! PID 1's signals, the cluster's CA and the kubelet's serving certificate as the node's files
//! ([`BoardClusterFiles`], for mutual TLS), and starting the server.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use bramble_boards::NodeConfig;
use bramble_node_api::cluster_tls::{cluster_server_config, ClusterFiles};
use bramble_node_api::tls::load_or_create;
use bramble_node_api::{LogEntry, NodeHandler, PowerRequest, ServerSettings, UpgradeManifest};

use crate::boot::Console;
use crate::logring::LogRing;
use crate::status::StatusSource;
use crate::upgrade::UpgradeTarget;

/// Where the node API keeps its certificate (data partition).
pub const NODE_API_DIR: &str = "/var/lib/bramble/node-api";

/// Where a board keeps what the node API needs of its cluster (under [`crate::services::STATE_DIR`]).
#[derive(Debug, Clone)]
pub struct BoardClusterFiles {
    /// The state directory (`/var/lib/bramble`).
    pub state_dir: std::path::PathBuf,
}

impl BoardClusterFiles {
    /// The kubeconfigs a kubelet on this board authenticates with: a worker's after it joined
    /// (`kubelet/kubeconfig`), the controller board's (`kubelet.kubeconfig`).
    fn kubelet_kubeconfigs(&self) -> [std::path::PathBuf; 2] {
        [
            self.state_dir.join("kubelet").join("kubeconfig"),
            self.state_dir.join("kubelet.kubeconfig"),
        ]
    }
}

impl ClusterFiles for BoardClusterFiles {
    /// The controller's CA on a controller board, else the one a kubelet here joined with.
    fn cluster_ca(&self) -> Option<String> {
        let controller = self
            .state_dir
            .join("controller/pki")
            .join(bramble_pki::CA_CERT_FILE);
        if let Ok(pem) = std::fs::read_to_string(controller) {
            return Some(pem);
        }
        self.kubelet_kubeconfigs().iter().find_map(|k| {
            bramble_pki::read_kubeconfig_entry(k, bramble_pki::NODE_KUBECONFIG_CONTEXT)
                .ok()
                .flatten()
                .map(|e| e.ca_pem)
        })
    }

    /// The kubelet's serving certificate (signed by the cluster CA, naming the node's
    /// addresses) while it is valid.
    fn serving_pair(&self) -> Option<(String, String)> {
        let dir = self.state_dir.join("kubelet/pki");
        let cert = std::fs::read_to_string(dir.join("kubelet-server.crt")).ok()?;
        let key = std::fs::read_to_string(dir.join("kubelet-server.key")).ok()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs() as i64;
        let (not_before, not_after) = bramble_pki::validity_unix(&cert).ok()?;
        (not_before <= now && now < not_after).then_some((cert, key))
    }
}

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

/// Starts the node API (cluster admins' client certificates, and `cfg.api.token` if set); logs
/// the address and certificate fingerprint.
pub fn start(
    console: &Console,
    cfg: &NodeConfig,
    address: Option<Ipv4Addr>,
    upgrade: UpgradeTarget,
) {
    let token = cfg.api.token.clone();
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
        let files = Arc::new(BoardClusterFiles {
            state_dir: crate::services::STATE_DIR.into(),
        });
        let settings = ServerSettings {
            tls: cluster_server_config(&id, files)?,
            token: token.clone(),
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
                "node API: cluster admins' client certificates{}",
                if token.is_some() {
                    ", or the api.token of the node config"
                } else {
                    " only (no api.token in the node config)"
                }
            ));
            console.log(&format!(
                "node API on https://{addr} certificate sha256 {fp}"
            ));
        }
        Err(e) => console.log(&format!("node API: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_ca_comes_from_the_controller_or_a_joined_kubelet() {
        let state = tempfile::tempdir().unwrap();
        let files = BoardClusterFiles {
            state_dir: state.path().to_path_buf(),
        };
        assert_eq!(files.cluster_ca(), None);
        assert_eq!(files.serving_pair(), None);
        // A worker that joined: the CA of its kubelet's kubeconfig.
        let pki_dir = tempfile::tempdir().unwrap();
        let pki = bramble_pki::ClusterPki::load_or_create(
            pki_dir.path(),
            &bramble_pki::PkiOptions::new("bramble", &[]),
        )
        .unwrap();
        bramble_pki::write_kubeconfig(
            &state.path().join("kubelet/kubeconfig"),
            "https://192.0.2.1:6443",
            pki.ca_cert_pem(),
            bramble_pki::KubeconfigUser::Token("t".into()),
            bramble_pki::NODE_KUBECONFIG_CONTEXT,
        )
        .unwrap();
        assert_eq!(files.cluster_ca().as_deref(), Some(pki.ca_cert_pem()));
        // A controller board: the controller's own CA first.
        let controller = state.path().join("controller/pki");
        std::fs::create_dir_all(&controller).unwrap();
        std::fs::write(controller.join(bramble_pki::CA_CERT_FILE), "CONTROLLER CA").unwrap();
        assert_eq!(files.cluster_ca().as_deref(), Some("CONTROLLER CA"));
        // The kubelet's serving certificate, while valid.
        let serving = state.path().join("kubelet/pki");
        std::fs::create_dir_all(&serving).unwrap();
        let cert =
            std::fs::read_to_string(pki_dir.path().join(bramble_pki::APISERVER_CERT_FILE)).unwrap();
        std::fs::write(serving.join("kubelet-server.crt"), &cert).unwrap();
        assert_eq!(files.serving_pair(), None, "no key yet");
        std::fs::write(serving.join("kubelet-server.key"), "KEY").unwrap();
        assert_eq!(files.serving_pair(), Some((cert, "KEY".to_string())));
    }
}
