//! GC against a real filesystem: the store lives on a small tmpfs mounted by the test, disk
//! usage comes from statvfs (the production `DiskStats`), and eviction must bring the
//! filesystem under the low threshold.

mod support;

use anyhow::{ensure, Result};
use bramble_images::gc::GcPolicy;
use bramble_images::{ImageRecord, ImageStore};
use std::process::Command;
use std::time::{Duration, SystemTime};
use support::*;

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn gc_on_a_full_tmpfs_evicts_lru_images_until_under_the_low_threshold() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mnt = dir.path().join("fs");
    std::fs::create_dir(&mnt)?;
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mnt)
        .status()?;
    ensure!(st.success(), "mount tmpfs");
    let _fs = Tmpfs(mnt.clone());

    let store = ImageStore::open(mnt.join("images"))?;
    let now = SystemTime::now();
    // Five images of 1.4 MiB incompressible data each: about 88% of 8 MiB.
    for (i, name) in ["e", "d", "c", "b", "a"].iter().enumerate() {
        let data: Vec<u8> = (0..1_400 * 1024).map(|_| rand::random::<u8>()).collect();
        let l = Layer::new(&[Item::File("blob", data, 0o644)]);
        add_image(&store, name, &[&l])?;
        // "e" least recently used, "a" most.
        store.set_last_used(name, now - Duration::from_secs(100 - i as u64))?;
    }
    let before = store.disk_usage()?;
    assert!(before.used_percent() >= 85, "{before:?}");

    let in_use = |r: &ImageRecord| r.reference.contains("/e:");
    let policy = GcPolicy {
        min_age: Duration::ZERO,
        ..GcPolicy::default()
    };
    let report = store.gc_with_policy(&policy, in_use)?;
    let after = store.disk_usage()?;
    assert!(after.used_percent() < 80, "{after:?} {report:?}");
    // "e" is older but in use, so "d" goes first, and one eviction is enough.
    assert_eq!(report.removed_images, ["docker.io/library/d:latest"]);
    assert!(report.freed_bytes >= 1_400 * 1024, "{report:?}");
    assert_eq!(store.list()?.len(), 4);
    Ok(())
}
