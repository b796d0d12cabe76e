//! Where LMDB's memory map lies, for a caller that wants to drop the map's resident pages from
//! its process (e.g. `madvise(MADV_DONTNEED)` once the controller is idle or after a large
//! list). Reads go through the map, so every page a list or a checkpoint touched stays
//! resident and counts in the process's RSS (about 80 MiB with 10,000 Pods); those pages are
//! clean copies of the file in the page cache, so dropping them from the process changes
//! nothing but its RSS: the next read faults them back in from the page cache (a minor fault),
//! and the page cache itself keeps them until the kernel reclaims it.
//!
//! This crate has no libc: it hands out the range under a guard, and the caller advises.
//! LMDB does not say where it mapped the file (`mdb_env_info`'s `me_mapaddr` is only set for
//! `MDB_FIXEDMAP`), so the range comes from `/proc/self/maps`: the mapping of the data file's
//! inode.

use std::ffi::c_void;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Weak};

use super::{LmdbStore, Shared};

/// A handle on a store's memory map that does not keep the store open.
#[derive(Clone)]
pub struct MapResidency {
    shared: Weak<Shared>,
}

impl LmdbStore {
    /// A handle on this store's memory map (see [`MapResidency::with_map`]).
    pub fn map_residency(&self) -> MapResidency {
        MapResidency {
            shared: Arc::downgrade(&self.shared),
        }
    }
}

impl MapResidency {
    /// Calls `f` with the map's start address and length while the environment is held open
    /// (the map stays where it is meanwhile: the store never resizes its map, and the
    /// environment cannot close under `f`); `None` once the store has closed or when the map
    /// is not found.
    pub fn with_map<T>(&self, f: impl FnOnce(*mut c_void, usize) -> T) -> Option<T> {
        let shared = self.shared.upgrade()?;
        let file = shared.env.path().join("data.mdb");
        let inode = std::fs::metadata(&file).ok()?.ino();
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let (start, end) = maps.lines().find_map(|l| map_of(l, inode))?;
        Some(f(start as *mut c_void, end - start))
    }

    /// Whether the store is still open.
    pub fn is_open(&self) -> bool {
        self.shared.strong_count() > 0
    }
}

/// The range of a `/proc/self/maps` line mapping `data.mdb` with this inode
/// (`start-end perms offset dev inode path`).
fn map_of(line: &str, inode: u64) -> Option<(usize, usize)> {
    let mut f = line.split_whitespace();
    let range = f.next()?;
    let ino: u64 = f.nth(3)?.parse().ok()?;
    let path = f.next()?;
    if ino != inode || !path.ends_with("/data.mdb") {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lmdb::StoreConfig;

    #[test]
    fn the_map_is_the_data_file_mapping_and_gone_with_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = LmdbStore::open(dir.path(), StoreConfig::default()).unwrap();
        let residency = store.map_residency();
        let (addr, len) = residency
            .with_map(|addr, len| (addr as usize, len))
            .unwrap();
        assert_eq!(len, StoreConfig::default().map_size);
        // /proc/self/maps names data.mdb at that address
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let file = format!("{}/data.mdb", dir.path().display());
        let line = maps
            .lines()
            .find(|l| l.ends_with(&file))
            .expect("data.mdb is mapped");
        let start = usize::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
        assert_eq!(start, addr);
        drop(store);
        assert!(!residency.is_open());
        assert!(residency.with_map(|_, _| ()).is_none());
    }
}
