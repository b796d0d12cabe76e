//! Loading a board's module list on several threads at boot. Most of a module's load is the
//! kernel relocating it and running its init function, which may wait (RCU grace periods,
//! device probes); independent modules can do that side by side. A file starts once every file
//! it depends on (`modules.dep`) has loaded; a file whose dependency failed is not tried.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Condvar, Mutex};

use crate::error::InitError;
use crate::kmod::ModuleIndex;

/// What a parallel load did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Files loaded (or found already loaded), in the order they finished.
    pub loaded: Vec<String>,
    /// Names of the list that are no module or alias, and files that failed (or whose
    /// dependency did), each with why.
    pub failed: Vec<(String, InitError)>,
}

/// One file to load and the files it needs first.
struct Job {
    file: String,
    deps: Vec<String>,
}

#[derive(Default)]
struct Progress {
    /// Jobs not started, in list order.
    pending: Vec<Job>,
    loading: usize,
    done: BTreeSet<String>,
    failed: BTreeSet<String>,
    report: LoadReport,
}

enum Next {
    Load(Job),
    Wait,
    Finished,
}

impl Progress {
    /// The first pending job whose dependencies are loaded; jobs whose dependency failed are
    /// failed on the way.
    fn next(&mut self) -> Next {
        let mut i = 0;
        while i < self.pending.len() {
            let job = &self.pending[i];
            if let Some(dep) = job.deps.iter().find(|d| self.failed.contains(*d)).cloned() {
                let job = self.pending.remove(i);
                let err = InitError::ModuleDependency(job.file.clone(), dep);
                self.failed.insert(job.file.clone());
                self.report.failed.push((job.file, err));
                continue;
            }
            if job.deps.iter().all(|d| self.done.contains(d)) {
                self.loading += 1;
                return Next::Load(self.pending.remove(i));
            }
            i += 1;
        }
        if self.loading == 0 {
            Next::Finished
        } else {
            Next::Wait
        }
    }
}

/// Load the modules (or aliases) `names` with their dependencies on `threads` threads, each
/// file through `load` (given the file's path under the index's directory).
pub fn load_all<F>(index: &ModuleIndex, names: &[&str], threads: usize, load: F) -> LoadReport
where
    F: Fn(&Path) -> Result<(), InitError> + Sync,
{
    let mut progress = Progress::default();
    let mut queued = BTreeSet::new();
    let mut deps_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in names {
        match index.files_of(name) {
            Ok(files) => {
                for (file, deps) in files {
                    if queued.insert(file.clone()) {
                        deps_of.insert(file.clone(), deps.clone());
                        progress.pending.push(Job { file, deps });
                    }
                }
            }
            Err(e) => progress.report.failed.push((name.to_string(), e)),
        }
    }
    // A dependency modules.dep names but that has no entry of its own cannot be waited for:
    // drop it from the waits and let the kernel say what is missing.
    for job in &mut progress.pending {
        job.deps.retain(|d| deps_of.contains_key(d));
    }
    let state = (Mutex::new(progress), Condvar::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| worker(index.dir(), &state, &load));
        }
    });
    let (progress, _) = state;
    progress
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .report
}

fn worker<F>(dir: &Path, (lock, cv): &(Mutex<Progress>, Condvar), load: &F)
where
    F: Fn(&Path) -> Result<(), InitError>,
{
    let mut progress = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        match progress.next() {
            Next::Finished => {
                cv.notify_all();
                return;
            }
            Next::Wait => progress = cv.wait(progress).unwrap_or_else(|e| e.into_inner()),
            Next::Load(job) => {
                drop(progress);
                let result = load(&dir.join(&job.file));
                progress = lock.lock().unwrap_or_else(|e| e.into_inner());
                progress.loading -= 1;
                match result {
                    Ok(()) => {
                        progress.done.insert(job.file.clone());
                        progress.report.loaded.push(job.file);
                    }
                    Err(e) => {
                        progress.failed.insert(job.file.clone());
                        progress.report.failed.push((job.file, e));
                    }
                }
                cv.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    const DEP: &str = "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\nkernel/crypto/crc32c_generic.ko:\n\
kernel/net/netfilter/nft_chain_nat.ko: kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nf_nat.ko\n\
kernel/net/netfilter/nf_nat.ko:\nkernel/net/netfilter/nf_tables.ko:\n\
kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko\nkernel/net/bridge/bridge.ko:\n";
    const ALIAS: &str = "alias fs-ext4 ext4\nalias nft-chain-*-nat nft_chain_nat\n";

    fn index() -> ModuleIndex {
        ModuleIndex::parse(Path::new("/m"), DEP, ALIAS)
    }

    /// The files modules.dep says `file` needs.
    fn needs(file: &str) -> Vec<String> {
        let line = DEP
            .lines()
            .find(|l| l.starts_with(&format!("{file}:")))
            .unwrap();
        let deps = line.split_once(':').unwrap().1;
        deps.split_whitespace().map(str::to_string).collect()
    }

    fn rel(p: &Path) -> String {
        p.strip_prefix("/m").unwrap().to_string_lossy().into_owned()
    }

    /// Each file's load sees every file it depends on loaded, whatever the threads' timing.
    #[test]
    fn every_file_loads_after_its_dependencies() {
        let idx = index();
        for threads in [1, 2, 4, 8] {
            let loaded = Mutex::new(Vec::<String>::new());
            let report = load_all(
                &idx,
                &["ext4", "nft-chain-2-nat", "br_netfilter", "crc32c_generic"],
                threads,
                |p| {
                    let file = rel(p);
                    let seen = loaded.lock().unwrap().clone();
                    for d in needs(&file) {
                        assert!(seen.contains(&d), "{file} loaded before {d}");
                    }
                    std::thread::sleep(Duration::from_millis(2));
                    loaded.lock().unwrap().push(file);
                    Ok(())
                },
            );
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            assert_eq!(report.loaded.len(), 10, "{:?}", report.loaded);
            // The same files (the two lists' orders may differ: a thread records its file
            // in `loaded` before it reports back).
            let mut seen = loaded.lock().unwrap().clone();
            let mut reported = report.loaded.clone();
            seen.sort();
            reported.sort();
            assert_eq!(seen, reported);
        }
    }

    /// Independent files do load side by side.
    #[test]
    fn independent_files_load_at_once() {
        let idx = index();
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        load_all(&idx, &["crc16", "mbcache", "jbd2", "nf_nat"], 4, |_| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            // Stay until another load is under way too (a serial loader never gets there).
            let start = std::time::Instant::now();
            while most.load(Ordering::SeqCst) < 2 && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(1));
            }
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
        assert!(most.load(Ordering::SeqCst) > 1);
    }

    /// A failed file fails what depends on it, named; unknown names are reported; the rest
    /// loads.
    #[test]
    fn failures_reach_dependents_and_nothing_else() {
        let idx = index();
        let report = load_all(&idx, &["br_netfilter", "nope", "ext4"], 2, |p| {
            if rel(p).ends_with("bridge.ko") {
                Err(InitError::ModuleNotFound("bridge".into(), p.into()))
            } else {
                Ok(())
            }
        });
        let failed: Vec<&str> = report.failed.iter().map(|(n, _)| n.as_str()).collect();
        assert!(failed.contains(&"nope"));
        assert!(failed.contains(&"kernel/net/bridge/bridge.ko"));
        assert!(failed.contains(&"kernel/net/bridge/br_netfilter.ko"));
        let dep_err = report
            .failed
            .iter()
            .find(|(n, _)| n.ends_with("br_netfilter.ko"))
            .unwrap();
        assert!(dep_err.1.to_string().contains("bridge.ko"), "{}", dep_err.1);
        assert_eq!(report.loaded.len(), 4);
    }
}
