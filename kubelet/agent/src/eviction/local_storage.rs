//! Local ephemeral storage eviction for emptyDir volumes (upstream's `localStorageEviction`,
//! emptyDir part): a pod whose disk-backed emptyDir holds more than its `sizeLimit` is
//! evicted at once, whatever the node's pressure. Memory-backed emptyDirs are bounded by
//! their tmpfs size instead.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use bramble_api::quantity::Quantity;
use k8s_openapi::api::core::v1::Pod;

/// Bytes used under `dir` as `du` counts them (allocated blocks), on its file system only,
/// not following symbolic links.
pub fn usage(dir: &Path) -> u64 {
    let Ok(root) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
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

/// The eviction message when one of `pod`'s disk-backed emptyDirs under `volumes_dir`
/// (`<data-dir>/pods/<uid>/volumes/kubernetes.io~empty-dir`) exceeds its `sizeLimit`, in
/// upstream's words.
pub fn exceeded_empty_dir(pod: &Pod, volumes_dir: &Path) -> Option<String> {
    let volumes = pod.spec.as_ref()?.volumes.as_ref()?;
    volumes.iter().find_map(|v| {
        let src = v.empty_dir.as_ref()?;
        if src.medium.as_deref() == Some("Memory") {
            return None;
        }
        let limit_text = &src.size_limit.as_ref()?.0;
        let limit = Quantity::parse(limit_text).ok()?.value().max(0) as u64;
        (usage(&volumes_dir.join(&v.name)) > limit).then(|| {
            format!(
                "Usage of EmptyDir volume {:?} exceeds the limit {limit_text:?}. ",
                v.name
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_empty_dir_over_its_size_limit_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": [
                {"name": "small", "emptyDir": {"sizeLimit": "64Ki"}},
                {"name": "free", "emptyDir": {}},
                {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "1Ki"}}]}}))
        .unwrap();
        for v in ["small", "free", "ram"] {
            std::fs::create_dir_all(dir.path().join(v)).unwrap();
        }
        std::fs::write(dir.path().join("free/big"), vec![1u8; 512 << 10]).unwrap();
        std::fs::write(dir.path().join("ram/big"), vec![1u8; 512 << 10]).unwrap();
        std::fs::write(dir.path().join("small/a"), vec![1u8; 16 << 10]).unwrap();
        assert_eq!(exceeded_empty_dir(&pod, dir.path()), None);
        std::fs::create_dir_all(dir.path().join("small/sub")).unwrap();
        std::fs::write(dir.path().join("small/sub/b"), vec![1u8; 128 << 10]).unwrap();
        assert_eq!(
            exceeded_empty_dir(&pod, dir.path()).as_deref(),
            Some("Usage of EmptyDir volume \"small\" exceeds the limit \"64Ki\". ")
        );
        assert!(usage(dir.path()) >= (512 + 512 + 16 + 128) << 10);
    }
}
