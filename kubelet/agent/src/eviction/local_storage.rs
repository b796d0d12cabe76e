//! Local ephemeral storage limits (upstream's `localStorageEviction`): a pod is evicted at
//! once, whatever the node's pressure, when, checked in upstream's order,
//!
//! 1. one of its disk-backed emptyDirs holds more than its `sizeLimit`;
//! 2. its usage (containers' writable layers and logs, its disk emptyDir and configMap
//!    volumes, files in its log directory) exceeds the pod's `ephemeral-storage` limit as
//!    upstream's `PodLimits` computes it (present as soon as one container sets one);
//! 3. a container's writable layer and logs exceed its own `ephemeral-storage` limit (the
//!    writable layer only counts when it is on the node filesystem, as upstream leaves it
//!    out on a dedicated image filesystem).
//!
//! Usage is counted by a [`DiskUsage`] (a `du` walk, [`Du`], in the kubelet).

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bramble_api::pod_resources::pod_limits;
use bramble_api::quantity::Quantity;
use bramble_runtime::state::StateDir;
use k8s_openapi::api::core::v1::{Pod, Volume};

use tracing::warn;

use super::ranking::is_critical;
use crate::container_config::pod_log_dir;
use crate::pod_spec::{containers, pod_ids};
use crate::volumes::plugin_dir;

/// The resource name of local ephemeral storage.
const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// The seam: bytes used under a path (a file or a directory tree).
pub trait DiskUsage: Send + Sync {
    /// Bytes used by `path` and everything under it; 0 when it does not exist.
    fn bytes(&self, path: &Path) -> u64;
}

/// Counts as `du` does: allocated blocks, on the path's file system only, not following
/// symbolic links.
#[derive(Debug, Default, Clone, Copy)]
pub struct Du;

impl DiskUsage for Du {
    fn bytes(&self, path: &Path) -> u64 {
        usage(path)
    }
}

/// Bytes used under `dir` as `du` counts them (allocated blocks), on its file system only,
/// not following symbolic links. A plain file counts its own blocks.
pub fn usage(dir: &Path) -> u64 {
    let Ok(root) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    if !root.is_dir() {
        return root.blocks() * 512;
    }
    let dev = root.dev();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.dev() != dev {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// A pod's newest runtime container of each name: (name, container id).
pub type NewestContainers = Vec<(String, String)>;

/// Where the kubelet keeps what counts as pods' local ephemeral storage, and how it is
/// counted.
#[derive(Clone)]
pub struct StorageLayout {
    /// The kubelet data directory: `pods/<uid>/volumes`, logs in `pods/<ns>_<name>_<uid>`.
    pub data_dir: PathBuf,
    /// The runtime's state directory (containers' writable layers).
    pub runtime: StateDir,
    /// How bytes are counted.
    pub usage: Arc<dyn DiskUsage>,
}

impl StorageLayout {
    /// The kubelet's layout under `data_dir` and `runtime_dir`, counted with [`Du`].
    pub fn new(data_dir: &Path, runtime_dir: &Path) -> Self {
        StorageLayout {
            data_dir: data_dir.to_path_buf(),
            runtime: StateDir::new(runtime_dir),
            usage: Arc::new(Du),
        }
    }

    /// Whether containers' writable layers are on another file system than the data
    /// directory (upstream's dedicated image filesystem).
    pub fn dedicated_layer_fs(&self) -> bool {
        let dev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.dev());
        match (dev(&self.runtime.containers_dir()), dev(&self.data_dir)) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        }
    }

    /// The pods over one of their local storage limits, with upstream's eviction message;
    /// each pod comes with its newest runtime container of each name as (name, container
    /// id). Critical pods, which upstream refuses to evict, are only logged.
    pub fn over_limits(&self, pods: Vec<(Arc<Pod>, NewestContainers)>) -> Vec<(Arc<Pod>, String)> {
        let dedicated = self.dedicated_layer_fs();
        pods.into_iter()
            .filter_map(|(pod, newest)| {
                let storage = self.pod_storage(pod.clone(), &newest, dedicated);
                let message = exceeded(&storage, self.usage.as_ref())?;
                if is_critical(&pod) {
                    let (ns, name, _) = pod_ids(&pod);
                    warn!(pod = %format!("{ns}/{name}"), %message, "eviction manager: cannot evict a critical pod");
                    return None;
                }
                Some((pod, message))
            })
            .collect()
    }

    /// What to measure of `pod`, whose newest runtime container of each name is given as
    /// (name, container id).
    pub fn pod_storage(
        &self,
        pod: Arc<Pod>,
        newest: &[(String, String)],
        dedicated_layer_fs: bool,
    ) -> PodStorage {
        let (ns, name, uid) = pod_ids(&pod);
        let log_dir = pod_log_dir(&self.data_dir, &ns, &name, &uid);
        PodStorage {
            containers: newest
                .iter()
                .map(|(name, id)| ContainerStorage {
                    name: name.clone(),
                    writable_layer: self.runtime.writable_layer(id),
                    logs: log_dir.join(name),
                })
                .collect(),
            volumes_dir: self.data_dir.join("pods").join(&uid).join("volumes"),
            log_dir,
            dedicated_layer_fs,
            pod,
        }
    }
}

/// One container's ephemeral storage: its newest runtime container's writable layer and
/// the log directory of every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStorage {
    /// The container's spec name.
    pub name: String,
    /// Its overlay upper directory.
    pub writable_layer: PathBuf,
    /// `<log dir>/<name>`.
    pub logs: PathBuf,
}

/// What counts as one pod's local ephemeral storage.
#[derive(Debug, Clone)]
pub struct PodStorage {
    /// The pod.
    pub pod: Arc<Pod>,
    /// Its containers known to the runtime (app and init, exited ones too).
    pub containers: Vec<ContainerStorage>,
    /// `<data>/pods/<uid>/volumes`.
    pub volumes_dir: PathBuf,
    /// `<data>/pods/<ns>_<name>_<uid>`.
    pub log_dir: PathBuf,
    /// Writable layers are on a dedicated file system: left out of container usage.
    pub dedicated_layer_fs: bool,
}

/// Each path measured once per check.
struct Measured<'a> {
    usage: &'a dyn DiskUsage,
    seen: RefCell<HashMap<PathBuf, u64>>,
}

impl Measured<'_> {
    fn bytes(&self, path: &Path) -> u64 {
        if let Some(b) = self.seen.borrow().get(path) {
            return *b;
        }
        let b = self.usage.bytes(path);
        self.seen.borrow_mut().insert(path.to_path_buf(), b);
        b
    }
}

fn volumes(pod: &Pod) -> &[Volume] {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
}

/// Upstream's `IsLocalEphemeralVolume` among the volumes this kubelet supports: disk
/// emptyDirs and configMaps.
fn local_ephemeral(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.empty_dir
            .as_ref()
            .is_some_and(|e| e.medium.as_deref() != Some("Memory"))
}

fn as_quantity(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> Option<Quantity> {
    Quantity::parse(&q.0).ok()
}

fn bytes_quantity(bytes: u64) -> Quantity {
    Quantity::from_int(
        bytes.min(i64::MAX as u64) as i64,
        bramble_api::quantity::Format::BinarySI,
    )
}

/// The eviction message when `p` is over one of its local storage limits, checked in
/// upstream's order (emptyDir, pod, container), else `None`.
pub fn exceeded(p: &PodStorage, usage: &dyn DiskUsage) -> Option<String> {
    let m = Measured {
        usage,
        seen: RefCell::default(),
    };
    exceeded_empty_dir(p, &m)
        .or_else(|| exceeded_pod_limit(p, &m))
        .or_else(|| exceeded_container_limit(p, &m))
}

fn volume_path(p: &PodStorage, v: &Volume) -> PathBuf {
    p.volumes_dir.join(plugin_dir(v)).join(&v.name)
}

fn exceeded_empty_dir(p: &PodStorage, m: &Measured<'_>) -> Option<String> {
    volumes(&p.pod).iter().find_map(|v| {
        let src = v.empty_dir.as_ref()?;
        if !local_ephemeral(v) {
            return None;
        }
        let limit = as_quantity(src.size_limit.as_ref()?)?;
        if limit.sign() != 1 {
            return None;
        }
        (bytes_quantity(m.bytes(&volume_path(p, v))) > limit).then(|| {
            format!(
                "Usage of EmptyDir volume {:?} exceeds the limit {:?}. ",
                v.name,
                limit.canonical()
            )
        })
    })
}

/// Pod usage as upstream's summary counts it: containers' writable layers and logs, local
/// ephemeral volumes, and the files directly in the pod's log directory.
fn pod_usage(p: &PodStorage, m: &Measured<'_>) -> u64 {
    let containers: u64 = p
        .containers
        .iter()
        .map(|c| m.bytes(&c.writable_layer) + m.bytes(&c.logs))
        .sum();
    let volumes: u64 = volumes(&p.pod)
        .iter()
        .filter(|v| local_ephemeral(v))
        .map(|v| m.bytes(&volume_path(p, v)))
        .sum();
    let pod_logs: u64 = std::fs::read_dir(&p.log_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|e| m.bytes(&e.path()))
        .sum();
    containers + volumes + pod_logs
}

fn exceeded_pod_limit(p: &PodStorage, m: &Measured<'_>) -> Option<String> {
    let spec = serde_json::to_value(p.pod.spec.as_ref()?).ok()?;
    let limit = *pod_limits(&spec).get(EPHEMERAL_STORAGE)?;
    (bytes_quantity(pod_usage(p, m)) > limit).then(|| {
        format!(
            "Pod ephemeral local storage usage exceeds the total limit of containers {}. ",
            limit.canonical()
        )
    })
}

fn exceeded_container_limit(p: &PodStorage, m: &Measured<'_>) -> Option<String> {
    containers(&p.pod).iter().find_map(|c| {
        let limit = c
            .resources
            .as_ref()?
            .limits
            .as_ref()?
            .get(EPHEMERAL_STORAGE)
            .and_then(as_quantity)?;
        if limit.value() == 0 {
            return None;
        }
        let s = p.containers.iter().find(|s| s.name == c.name)?;
        let mut used = m.bytes(&s.logs);
        if !p.dedicated_layer_fs {
            used += m.bytes(&s.writable_layer);
        }
        (bytes_quantity(used) > limit).then(|| {
            format!(
                "Container {} exceeded its local ephemeral storage limit {:?}. ",
                c.name,
                limit.canonical()
            )
        })
    })
}

#[cfg(test)]
#[path = "local_storage_tests.rs"]
mod tests;
