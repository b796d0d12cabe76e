//! The volume manager of one pod (upstream's volume manager and plugins, without attach):
//! every volume of the pod is set up under `<data-dir>/pods/<uid>/volumes/<plugin>/<name>`
//! before its containers start, API-backed contents (configMap, secret, downwardAPI,
//! projected) are rewritten through the [`atomic_writer`] when they change, and each
//! container's `volumeMounts` become bind mounts ([`PodVolumes::mounts`]) with `readOnly`,
//! `subPath`, `subPathExpr` and `mountPropagation`.
//!
//! One module per plugin: [`empty_dir`], [`host_path`], [`configmap`], [`secret`],
//! [`downward_api`], [`projected`] (with [`sa_token`]), [`pvc`].

pub mod atomic_writer;
pub mod configmap;
pub mod downward_api;
pub mod empty_dir;
mod error;
pub mod host_path;
pub mod ownership;
pub mod projected;
pub mod pvc;
pub mod sa_token;
pub mod secret;
pub mod tmpfs;
mod worker;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use bramble_runtime::{Mount, Propagation};
use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use kube::Client;
use tracing::debug;

pub use error::{FailedMount, VolumeError};

use atomic_writer::{AtomicWriter, Payload};
use configmap::DEFAULT_MODE;
use downward_api::NodeAllocatable;
use ownership::Ownership;
use sa_token::TokenCache;

/// How often the contents of configMap, secret and projected volumes the user asked for are
/// compared with the API (the default `kube-api-access-*` volume alone: [`SLOW_RESYNC`]).
pub const RESYNC: Duration = Duration::from_secs(10);
/// Refresh period of pods whose only API-backed volume is the default token volume.
pub const SLOW_RESYNC: Duration = Duration::from_secs(60);

/// A volume ready to be mounted.
#[derive(Debug, Clone)]
struct Prepared {
    path: PathBuf,
    /// The plugin mounts it read-only whatever the volumeMount says.
    readonly: bool,
}

/// One pod's volumes.
pub struct PodVolumes {
    root: PathBuf,
    tokens: TokenCache,
    prepared: BTreeMap<String, Prepared>,
    refreshed: Option<Instant>,
}

/// Node facts the volumes need.
#[derive(Debug, Clone, Copy)]
pub struct NodeFacts {
    /// Memory capacity, bytes.
    pub memory: u64,
    /// CPUs, millicores.
    pub cpu_milli: u64,
}

fn api_backed(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.secret.is_some()
        || v.projected.is_some()
        || v.downward_api.is_some()
}

/// upstream's directory name of a plugin (`kubernetes.io~configmap`).
pub(crate) fn plugin_dir(v: &Volume) -> &'static str {
    if v.empty_dir.is_some() {
        "kubernetes.io~empty-dir"
    } else if v.config_map.is_some() {
        "kubernetes.io~configmap"
    } else if v.secret.is_some() {
        "kubernetes.io~secret"
    } else if v.downward_api.is_some() {
        "kubernetes.io~downward-api"
    } else {
        "kubernetes.io~projected"
    }
}

impl PodVolumes {
    /// The volumes of pod `uid`, kept under `<data_dir>/pods/<uid>`.
    pub fn new(data_dir: &Path, uid: &str) -> Self {
        PodVolumes {
            root: data_dir.join("pods").join(uid),
            tokens: TokenCache::default(),
            prepared: BTreeMap::new(),
            refreshed: None,
        }
    }

    /// When the worker should sync again for volume contents (`None`: no API-backed volume).
    pub fn resync_after(&self, pod: &Pod) -> Option<Duration> {
        let vols = pod.spec.as_ref().and_then(|s| s.volumes.as_ref())?;
        let user = vols
            .iter()
            .any(|v| api_backed(v) && !v.name.starts_with("kube-api-access-"));
        let base = if user {
            RESYNC
        } else if vols.iter().any(api_backed) {
            SLOW_RESYNC
        } else {
            return None;
        };
        let token = self
            .tokens
            .next_refresh()
            .map(|t| (t - chrono::Utc::now()).to_std().unwrap_or_default());
        Some(token.map_or(base, |t| t.min(base)))
    }

    /// Sets up every volume not set up yet and, once [`Self::resync_after`] has passed,
    /// refreshes API-backed contents. The first failure is returned.
    pub async fn sync(
        &mut self,
        client: &Client,
        pod: &Pod,
        node: NodeFacts,
    ) -> Result<(), FailedMount> {
        let vols = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        let due = match (self.refreshed, self.resync_after(pod)) {
            (Some(at), Some(every)) => at.elapsed() >= every,
            _ => true,
        };
        let fs_group = pod
            .spec
            .as_ref()
            .and_then(|s| s.security_context.as_ref())
            .and_then(|s| s.fs_group)
            .and_then(|g| u32::try_from(g).ok());
        for v in &vols {
            if self.prepared.contains_key(&v.name) && !(due && api_backed(v)) {
                continue;
            }
            let p = self
                .setup_one(client, pod, v, node, fs_group)
                .await
                .map_err(|source| FailedMount {
                    volume: v.name.clone(),
                    source,
                })?;
            self.prepared.insert(v.name.clone(), p);
        }
        if due {
            self.refreshed = Some(Instant::now());
        }
        Ok(())
    }

    async fn setup_one(
        &mut self,
        client: &Client,
        pod: &Pod,
        v: &Volume,
        node: NodeFacts,
        fs_group: Option<u32>,
    ) -> Result<Prepared, VolumeError> {
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let dir = self.root.join("volumes").join(plugin_dir(v)).join(&v.name);
        let alloc = NodeAllocatable {
            cpu_milli: node.cpu_milli as i64,
            memory: node.memory as i64,
        };
        let ro_owner = fs_group.map(|gid| Ownership {
            gid,
            readonly: true,
        });
        let payload: Payload;
        if let Some(src) = &v.empty_dir {
            empty_dir::setup(&dir, src, pod, node.memory, fs_group)?;
            return Ok(Prepared {
                path: dir,
                readonly: false,
            });
        } else if let Some(src) = &v.host_path {
            host_path::check_type(src)?;
            let path = PathBuf::from(&src.path);
            if std::fs::symlink_metadata(&path).is_err() {
                // As containerd's CRI plugin: a missing untyped host path becomes a directory.
                std::fs::create_dir_all(&path).map_err(error::io("mkdir", &path))?;
            }
            return Ok(Prepared {
                path,
                readonly: false,
            });
        } else if let Some(src) = &v.persistent_volume_claim {
            let path = pvc::resolve(client, &ns, &src.claim_name).await?;
            return Ok(Prepared {
                path,
                readonly: src.read_only.unwrap_or(false),
            });
        } else if let Some(src) = &v.config_map {
            let name = src.name.as_str();
            let optional = src.optional.unwrap_or(false);
            let cm = configmap::fetch(client, &ns, name).await?;
            if cm.is_none() && !optional {
                return Err(VolumeError::Setup(format!("configmap {name:?} not found")));
            }
            let entries = cm.as_ref().map(configmap::entries);
            payload = configmap::make_payload(
                entries.as_ref(),
                src.items.as_deref(),
                src.default_mode.unwrap_or(DEFAULT_MODE),
                optional,
                "configmap",
            )?;
        } else if let Some(src) = &v.secret {
            let name = src.secret_name.as_deref().unwrap_or("");
            let optional = src.optional.unwrap_or(false);
            let s = secret::fetch(client, &ns, name).await?;
            if s.is_none() && !optional {
                return Err(VolumeError::Setup(format!("secret {name:?} not found")));
            }
            tmpfs::ensure_tmpfs(&dir, None, 0o755)?;
            let entries = s.as_ref().map(secret::entries);
            payload = configmap::make_payload(
                entries.as_ref(),
                src.items.as_deref(),
                src.default_mode.unwrap_or(DEFAULT_MODE),
                optional,
                "secret",
            )?;
        } else if let Some(src) = &v.downward_api {
            tmpfs::ensure_tmpfs(&dir, None, 0o755)?;
            payload = downward_api::make_payload(
                pod,
                src.items.as_deref().unwrap_or(&[]),
                src.default_mode.unwrap_or(DEFAULT_MODE),
                alloc,
            )?;
        } else if let Some(src) = &v.projected {
            tmpfs::ensure_tmpfs(&dir, None, 0o755)?;
            payload = projected::payload(client, pod, src, &mut self.tokens, alloc).await?;
        } else {
            return Err(VolumeError::Setup(
                "this node supports emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim volumes".into(),
            ));
        }
        let changed = AtomicWriter {
            dir: &dir,
            ownership: ro_owner,
        }
        .write(&payload)?;
        if changed {
            debug!(volume = %v.name, files = payload.len(), "volume contents written");
        }
        Ok(Prepared {
            path: dir,
            readonly: true,
        })
    }

    /// The bind mounts of `c`'s `volumeMounts`; `env` is its resolved environment
    /// (`NAME=value`) for `subPathExpr`. An `Err` is a `CreateContainerConfigError` message.
    pub fn mounts(&self, c: &Container, env: &[String]) -> Result<Vec<Mount>, String> {
        let lookup = |n: &str| {
            env.iter().rev().find_map(|kv| {
                kv.split_once('=')
                    .filter(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            })
        };
        let mut out = Vec::new();
        for vm in c.volume_mounts.iter().flatten() {
            let v = self.prepared.get(&vm.name).ok_or_else(|| {
                format!(
                    "cannot find volume {:?} to mount into container {:?}",
                    vm.name, c.name
                )
            })?;
            let sub = match (&vm.sub_path_expr, &vm.sub_path) {
                (Some(e), _) if !e.is_empty() => crate::expansion::expand(e, &lookup),
                (_, Some(s)) => s.clone(),
                _ => String::new(),
            };
            let mut host = v.path.clone();
            if !sub.is_empty() {
                host = sub_path(&v.path, &sub).map_err(|e| {
                    format!(
                        "failed to prepare subPath for volumeMount {:?} of container {:?}: {e}",
                        vm.name, c.name
                    )
                })?;
            }
            let propagation = match vm.mount_propagation.as_deref() {
                Some("HostToContainer") => Propagation::HostToContainer,
                Some("Bidirectional") => Propagation::Bidirectional,
                _ => Propagation::Private,
            };
            out.push(Mount {
                host_path: host,
                container_path: vm.mount_path.clone(),
                readonly: vm.read_only.unwrap_or(false) || v.readonly,
                propagation,
            });
        }
        Ok(out)
    }

    /// Unmounts and removes the pod's volume directories (hostPath and claim data stay).
    pub fn teardown(&mut self) {
        tmpfs::unmount_all_below(&self.root);
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.root.display(), error = %e, "removing pod volumes");
            }
        }
        self.prepared.clear();
        self.refreshed = None;
    }
}

/// `volume/sub`, made as a directory (with the volume's mode) when missing, refused when it
/// leaves the volume (`..`, absolute, or through a symlink).
fn sub_path(volume: &Path, sub: &str) -> Result<PathBuf, String> {
    let rel = Path::new(sub);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!(
            "subpath {sub:?} must be a relative path without '..'"
        ));
    }
    let host = volume.join(rel);
    if std::fs::symlink_metadata(&host).is_err() {
        let mode = std::fs::metadata(volume)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o755);
        std::fs::create_dir_all(&host).map_err(|e| format!("{}: {e}", host.display()))?;
        let _ = std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode));
    }
    let base = volume
        .canonicalize()
        .map_err(|e| format!("{}: {e}", volume.display()))?;
    let real = host
        .canonicalize()
        .map_err(|e| format!("{}: {e}", host.display()))?;
    if !real.starts_with(&base) {
        return Err(format!(
            "subpath {:?} not within volume path {:?}",
            real.display().to_string(),
            base.display().to_string()
        ));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_paths_stay_inside_the_volume() {
        let d = tempfile::tempdir().unwrap();
        let made = sub_path(d.path(), "a/b").unwrap();
        assert!(made.is_dir());
        assert!(sub_path(d.path(), "../x").is_err());
        assert!(sub_path(d.path(), "/etc").is_err());
        std::os::unix::fs::symlink("/etc", d.path().join("out")).unwrap();
        let err = sub_path(d.path(), "out").unwrap_err();
        assert!(err.contains("not within volume path"), "{err}");
    }
}
