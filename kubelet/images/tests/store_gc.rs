//! Store and GC behaviour on temporary directories: shared layers stored once, removal refused
//! for images in use, LRU eviction down to the low threshold, orphan cleanup. Disk usage comes
//! from a `DiskStats` that sizes the store's real files against a fixed capacity.

mod support;

use anyhow::Result;
use bramble_images::gc::{DiskStats, FsUsage, GcError, GcPolicy};
use bramble_images::store::{unix_ms, ImageRecord, ImageStore, StoreError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::*;

/// A filesystem of `capacity` bytes whose only content is the store (`du` of the real files).
struct StoreSizedDisk {
    capacity: u64,
}

fn du(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            total += if m.is_dir() { du(&e.path()) } else { m.size() };
        }
    }
    total
}

impl DiskStats for StoreSizedDisk {
    fn usage(&self, path: &Path) -> std::io::Result<FsUsage> {
        Ok(FsUsage {
            capacity: self.capacity,
            available: self.capacity.saturating_sub(du(path)),
        })
    }
}

fn open(dir: &Path, capacity: u64) -> Result<ImageStore> {
    Ok(ImageStore::open_with_disk_stats(
        dir,
        Arc::new(StoreSizedDisk { capacity }),
    )?)
}

#[test]
fn shared_layers_are_stored_once_and_removal_keeps_what_others_use() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let base = data_layer("base.bin", 64, 1);
    let a_top = data_layer("a.bin", 8, 2);
    let b_top = data_layer("b.bin", 8, 3);
    add_image(&store, "a", &[&base, &a_top])?;
    add_image(&store, "b", &[&base, &b_top])?;
    assert_eq!(
        std::fs::read_dir(dir.path().join("layers/sha256"))?.count(),
        3
    );

    // Top layer first, as overlayfs lowerdir= wants.
    let dirs = store.layer_dirs("a")?;
    assert_eq!(
        dirs,
        vec![
            store.layer_path(&a_top.digest)?,
            store.layer_path(&base.digest)?
        ]
    );

    // In use: refused, nothing deleted.
    let err = store
        .remove("a", |r| r.reference.ends_with("/a:latest"))
        .unwrap_err();
    assert!(matches!(err, StoreError::InUse(_)), "{err}");
    assert!(store.find("a")?.is_some());

    // Node status: one entry per image, tags then digests, largest first.
    let imgs = store.node_status_images(50)?;
    assert_eq!(
        imgs.len(),
        1,
        "a and b share the config digest, so one image ID: {imgs:?}"
    );
    assert_eq!(
        imgs[0].names[..2],
        ["docker.io/library/a:latest", "docker.io/library/b:latest"]
    );
    assert!(imgs[0].names[2].starts_with("docker.io/library/a@sha256:"));
    assert!(store.node_status_images(0)?.is_empty());

    store.remove("a", |_| false)?;
    assert!(store.find("a")?.is_none());
    assert!(!store.has_layer(&a_top.digest));
    assert!(store.has_layer(&base.digest), "base layer still used by b");
    assert!(store.layer_dirs("b").is_ok());
    assert!(matches!(
        store.remove("a", |_| false),
        Err(StoreError::NotFound(_))
    ));
    Ok(())
}

#[test]
fn gc_evicts_least_recently_used_unused_images_down_to_the_low_threshold() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // "older" is small, the others 256 KiB of incompressible data; at 99% used, evicting
    // "older" is not enough to get under 80%, evicting "old" too is.
    let sizes = [256, 64, 256, 256];
    let layers: Vec<Layer> = sizes
        .iter()
        .map(|kib| {
            let data: Vec<u8> = (0..kib * 1024).map(|_| rand::random::<u8>()).collect();
            Layer::new(&[Item::File("data", data, 0o644)])
        })
        .collect();
    {
        let plain = ImageStore::open(dir.path())?;
        for (i, name) in ["old", "older", "newest", "inuse"].iter().enumerate() {
            add_image(&plain, name, &[&layers[i]])?;
        }
    }
    let store = open(dir.path(), du(dir.path()) * 100 / 99)?;
    let now = SystemTime::now();
    let t = |secs| now - Duration::from_secs(secs);
    store.set_last_used("old", t(300))?;
    store.set_last_used("older", t(400))?;
    store.set_last_used("newest", t(10))?;
    store.set_last_used("inuse", t(1000))?;
    let in_use = |r: &ImageRecord| r.reference.contains("/inuse:");
    let policy = GcPolicy {
        high_threshold_percent: 85,
        low_threshold_percent: 80,
        min_age: Duration::ZERO,
    };

    let report = store.gc_with_policy(&policy, in_use)?;
    assert!(report.used_percent_before >= 85, "{report:?}");
    assert!(report.used_percent_after < 80, "{report:?}");
    assert_eq!(
        report.removed_images,
        [
            "docker.io/library/older:latest",
            "docker.io/library/old:latest"
        ]
    );
    assert!(store.find("inuse")?.is_some() && store.find("newest")?.is_some());
    assert!(!store.has_layer(&layers[1].digest));
    assert!(report.freed_bytes > 0);

    // Below the high threshold nothing more is evicted.
    let again = store.gc_with_policy(&policy, in_use)?;
    assert!(again.removed_images.is_empty(), "{again:?}");
    Ok(())
}

#[test]
fn gc_respects_min_age_and_reports_when_it_cannot_free_enough() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let l = data_layer("x", 256, 9);
    let probe = tempfile::tempdir()?;
    add_image(&ImageStore::open(probe.path())?, "p", &[&l])?;
    let store = open(dir.path(), du(probe.path()) * 100 / 95)?;
    let mut rec = add_image(&store, "young", &[&l])?;
    rec.created_ms = unix_ms(SystemTime::now());
    store.put_record(&rec)?;
    let err = store.gc(85, 80, |_| false).unwrap_err();
    assert!(matches!(err, GcError::NotEnoughFreed { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with("Failed to garbage collect required amount of images."));
    assert!(
        store.find("young")?.is_some(),
        "younger than the 2 minute minimum age"
    );
    assert!(matches!(
        store.gc(70, 80, |_| false),
        Err(GcError::InvalidThresholds { .. })
    ));
    assert!(matches!(
        store.gc(101, 80, |_| false),
        Err(GcError::InvalidThresholds { .. })
    ));
    Ok(())
}

#[test]
fn prune_removes_orphans_but_not_leased_content() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let orphan = data_layer("o", 4, 4);
    let leased = data_layer("l", 4, 5);
    store.unpack_layer_verified(&orphan.digest, &orphan.blob[..], None)?;
    store.unpack_layer_verified(&leased.digest, &leased.blob[..], None)?;
    store.put_blob(&sha256(b"stray"), b"stray")?;
    let mut lease = store.lease();
    lease.add(&leased.digest);
    let report = store.gc(100, 100, |_| false)?;
    assert_eq!(report.pruned_entries, 2);
    assert!(!store.has_layer(&orphan.digest));
    assert!(store.has_layer(&leased.digest));
    drop(lease);
    store.prune()?;
    assert!(!store.has_layer(&leased.digest));
    Ok(())
}

#[test]
fn layer_with_wrong_digest_is_not_committed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let l = data_layer("f", 4, 6);
    let wrong = sha256(b"something else");
    let err = store
        .unpack_layer_verified(&wrong, &l.blob[..], None)
        .unwrap_err();
    assert!(matches!(err, StoreError::Digest(_)), "{err}");
    assert!(!store.has_layer(&wrong));
    assert_eq!(std::fs::read_dir(dir.path().join("tmp"))?.count(), 0);
    assert!(store.put_blob(&wrong, b"x").is_err());
    Ok(())
}

#[tokio::test]
async fn blob_writer_commits_only_verified_content() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let good = b"hello blob".to_vec();
    let digest = sha256(&good);

    // Wrong bytes with the right length: refused, nothing stored, no temporary left.
    let mut w = store.blob_writer(&digest, Some(good.len() as u64)).await?;
    w.write(b"hellO blob").await?;
    assert!(matches!(w.commit().await, Err(StoreError::Digest(_))));
    assert!(!store.has_blob(&digest));
    // Too many bytes: refused while streaming.
    let mut w = store.blob_writer(&digest, Some(4)).await?;
    assert!(w.write(&good).await.is_err());
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path().join("tmp"))?.count(), 0);

    let mut w = store.blob_writer(&digest, Some(good.len() as u64)).await?;
    w.write(&good[..5]).await?;
    w.write(&good[5..]).await?;
    let p = w.commit().await?;
    assert_eq!(std::fs::read(p)?, good);
    assert_eq!(store.read_blob(&digest)?, good);
    assert_eq!(std::fs::read_dir(dir.path().join("tmp"))?.count(), 0);
    Ok(())
}
