//! Giving freed heap back to the system after the few requests that allocate tens of MiB at
//! once (building an OpenAPI document, encoding a large list). glibc's malloc keeps freed
//! memory in its arenas (the controller stayed 15 MiB larger after serving the OpenAPI
//! documents once, and 40 MiB after listing 10,000 Pods); `malloc_trim` returns the free
//! pages. musl's allocator (the static board binary) unmaps large frees by itself, so this is a
//! no-op there.
//!
//! The store's LMDB map is the other large part of the controller's RSS: every page a list or
//! a checkpoint read stays mapped (about 80 MiB with 10,000 Pods). Those are clean pages of the
//! data file, so they are dropped from the process (`MADV_DONTNEED`) with the freed heap, and
//! every [`MAP_TICK`]. This lowers RSS, not the memory in
//! use: the pages stay in the page cache (reclaimable, shared with any other reader of the
//! file) until the kernel needs the memory, and the next read maps them again with a minor
//! fault.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bramble_store::lmdb::residency::MapResidency;
use bramble_store::lmdb::LmdbStore;

/// Responses at least this large ask for a trim once they are sent.
pub const LARGE_RESPONSE_BYTES: usize = 4 << 20;

/// How long after the request a trim runs, so a burst of large requests costs one trim and
/// the response's own buffers are already freed.
const DELAY: Duration = Duration::from_secs(1);

/// How often the store map's pages are dropped.
pub const MAP_TICK: Duration = Duration::from_secs(10);

static PENDING: AtomicBool = AtomicBool::new(false);

/// The maps of the stores open in this process (tests run several controllers in one).
static MAPS: Mutex<Vec<MapResidency>> = Mutex::new(Vec::new());

/// Schedules one trim of the allocator's free memory on the current tokio runtime (at most one
/// is pending at a time).
pub fn release_freed_soon() {
    if PENDING.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        PENDING.store(false, Ordering::SeqCst);
        return;
    };
    rt.spawn(async {
        tokio::time::sleep(DELAY).await;
        PENDING.store(false, Ordering::SeqCst);
        let _ = tokio::task::spawn_blocking(release_freed).await;
    });
}

/// At most this many glibc malloc arenas in the process (glibc's default is 8 per core). Each
/// thread that meets contention gets an arena of its own, and memory freed in one is reused only
/// there: with the default, the controller kept 111 MiB of anonymous memory after listing
/// 10,000 Pods (90 before), with 2 arenas 89 MiB. The controller runs 2 worker threads.
pub const MALLOC_ARENAS: i32 = 2;

/// Allocations at least this large get pages of their own (`mmap`), returned to the system
/// when freed. glibc's default threshold (128 KiB) is dynamic: freeing a mapped block raises
/// it to that block's size (up to 32 MiB), so once the 18 MiB response of a list of 10,000
/// Pods was freed, every later buffer under 18 MiB came from the arenas, where what is freed
/// stays interleaved with long-lived objects. A fixed threshold turns that adjustment off.
pub const MMAP_THRESHOLD: i32 = 256 << 10;

/// Limits glibc's malloc to [`MALLOC_ARENAS`] arenas and fixes its mmap threshold at
/// [`MMAP_THRESHOLD`]; call before any thread starts (arenas already made stay). A no-op
/// with musl, whose allocator has no arenas and unmaps large blocks by itself.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc malloc parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns the allocator's free pages to the system now, and drops the resident pages of every
/// open store's map.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
    let maps = {
        let mut maps = MAPS.lock().unwrap_or_else(|e| e.into_inner());
        maps.retain(MapResidency::is_open);
        maps.clone()
    };
    maps.iter().for_each(release_map);
}

/// Drops the resident pages of a store's map from the process.
pub fn release_map(map: &MapResidency) {
    map.with_map(|addr, len| {
        // SAFETY: the range is LMDB's read-only shared mapping of the data file, held mapped
        // while this runs (`with_map`); MADV_DONTNEED on a shared file mapping only unmaps
        // its pages from this process (the data stays in the file and the page cache), and
        // readers fault them in again. Nothing in the process writes through the map (no
        // MDB_WRITEMAP).
        let r = unsafe { libc::madvise(addr, len, libc::MADV_DONTNEED) };
        if r != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "madvise of the store map");
        }
    });
}

/// Registers `store`'s map with [`release_freed`] and, on the current tokio runtime, drops its
/// pages every [`MAP_TICK`] until the store closes. Not only when idle: a cluster's store is
/// never idle for long (every node renews its Lease every 10 s, and the checkpoints of the
/// write-ahead log read LMDB's pages back in), so what stays mapped is what was read since
/// the last tick.
pub fn track_store_map(store: &Arc<LmdbStore>) {
    let map = store.map_residency();
    MAPS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(map.clone());
    tokio::spawn(async move {
        while map.is_open() {
            tokio::time::sleep(MAP_TICK).await;
            let map = map.clone();
            let _ = tokio::task::spawn_blocking(move || release_map(&map)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_store::lmdb::StoreConfig;
    use bramble_store::Store;

    /// Resident KiB of the mapping of `file` in /proc/self/smaps.
    fn resident_kib(file: &str) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        let mut kib = 0;
        for line in smaps.lines() {
            if let Some(v) = line.strip_prefix("Rss:") {
                if inside {
                    kib += v.split_whitespace().next().unwrap().parse::<u64>().unwrap();
                }
            } else if line
                .split_whitespace()
                .next()
                .is_some_and(|f| f.contains('-'))
            {
                inside = line.ends_with(file);
            }
        }
        kib
    }

    #[test]
    fn the_store_map_loses_its_resident_pages_and_reads_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let store = LmdbStore::open(dir.path(), StoreConfig::default()).unwrap();
        let file = format!("{}/data.mdb", dir.path().display());
        // opening read LMDB's meta pages through the map
        assert!(resident_kib(&file) > 0);
        release_map(&store.map_residency());
        assert_eq!(resident_kib(&file), 0);
        // a read maps them again
        let rev = store.current_revision();
        let listed = store.list("/", Default::default()).unwrap();
        assert_eq!(listed.revision, rev);
        assert!(resident_kib(&file) > 0);
    }
}
