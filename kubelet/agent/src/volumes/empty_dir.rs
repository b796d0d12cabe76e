//! emptyDir: a directory under the pod's volume directory (mode 0777, as upstream), or a
//! tmpfs for `medium: Memory`, sized by `sizeLimit`, else by the pod's memory limit (the sum
//! of its containers' limits when every container has one), else by node memory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use bramble_api::quantity::Quantity;
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Pod};

use super::error::{io, VolumeError};
use super::ownership::{set_ownership, Ownership};
use super::tmpfs::ensure_tmpfs;
use crate::pod_spec::pod_resources;

const EMPTY_DIR_MODE: u32 = 0o777;

/// The tmpfs size of a memory-backed emptyDir.
pub fn memory_size(src: &EmptyDirVolumeSource, pod: &Pod, node_memory: u64) -> u64 {
    let limit = src
        .size_limit
        .as_ref()
        .and_then(|q| Quantity::parse(&q.0).ok())
        .map(|q| q.value().max(0) as u64);
    // The pod's memory limit exists when every container has one (upstream's pod-level
    // limit for a pod with an unlimited container is node allocatable).
    let pod_limit = pod_resources(pod).ok().and_then(|r| {
        let all_limited = r
            .containers
            .iter()
            .chain(r.init_containers.iter())
            .all(|c| c.memory_limit > 0);
        (all_limited && !r.containers.is_empty()).then(|| r.effective_limits().1)
    });
    match (limit, pod_limit) {
        (Some(l), Some(p)) => l.min(p),
        (Some(l), None) => l,
        (None, Some(p)) => p,
        (None, None) => node_memory,
    }
    .max(1)
}

/// Sets up the emptyDir at `dir`.
pub fn setup(
    dir: &Path,
    src: &EmptyDirVolumeSource,
    pod: &Pod,
    node_memory: u64,
    fs_group: Option<u32>,
) -> Result<(), VolumeError> {
    if src.medium.as_deref() == Some("Memory") {
        ensure_tmpfs(
            dir,
            Some(memory_size(src, pod, node_memory)),
            EMPTY_DIR_MODE,
        )?;
    } else {
        std::fs::create_dir_all(dir).map_err(io("mkdir", dir))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(EMPTY_DIR_MODE))
        .map_err(io("chmod", dir))?;
    if let Some(gid) = fs_group {
        set_ownership(
            dir,
            &Ownership {
                gid,
                readonly: false,
            },
        )?;
    }
    Ok(())
}
