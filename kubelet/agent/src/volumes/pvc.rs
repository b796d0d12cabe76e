//! persistentVolumeClaim volumes: the claim must be bound; its PersistentVolume's `hostPath`
//! or `local` path is used in place (the local-path provisioner's volumes are hostPath
//! `DirectoryOrCreate`, so the node makes the directory on first use).

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{HostPathVolumeSource, PersistentVolume, PersistentVolumeClaim};
use kube::{Api, Client};

use super::error::VolumeError;
use super::host_path::check_type;

/// The host directory of claim `name` in `ns`.
pub async fn resolve(client: &Client, ns: &str, name: &str) -> Result<PathBuf, VolumeError> {
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?
        .ok_or_else(|| VolumeError::Setup(format!("persistentvolumeclaim {name:?} not found")))?;
    let phase = pvc
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if phase != "Bound" || volume.is_empty() {
        return Err(VolumeError::Setup(format!(
            "PVC {ns}/{name} has non-bound phase ({phase:?}) or empty pvc.Spec.VolumeName ({volume:?})"
        )));
    }
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get_opt(&volume)
        .await?
        .ok_or_else(|| VolumeError::Setup(format!("persistentvolume {volume:?} not found")))?;
    let spec = pv.spec.unwrap_or_default();
    if let Some(h) = spec.host_path {
        check_type(&h)?;
        return Ok(PathBuf::from(h.path));
    }
    if let Some(l) = spec.local {
        check_type(&HostPathVolumeSource {
            path: l.path.clone(),
            type_: Some("Directory".into()),
        })?;
        return Ok(PathBuf::from(l.path));
    }
    Err(VolumeError::Setup(format!(
        "unsupported volume source of PersistentVolume {volume:?}: this node mounts hostPath and local volumes"
    )))
}
