//! A write benchmark the CLI can run on the target board: concurrent creates (and then
//! updates) of objects of a given size, reporting throughput, latency percentiles and the
//! bytes written per write, two ways:
//!
//! - `write_bytes` of `/proc/self/io`: what this process dirtied. Kernels with large page
//!   cache folios (ext4 on Linux 6.x) account the whole folio, so this can overstate the
//!   real writes many times (measured here: 210 KB per 4 KiB `pwrite` + `fdatasync`).
//! - sectors written by the block device holding the store (`/sys/dev/block/M:m/stat`):
//!   the real flash wear including the filesystem journal, but also counting whatever
//!   else writes to that device meanwhile.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::lmdb::{LmdbStore, StoreConfig, StoreStats};
use crate::{Op, Store, StoreError};

/// Errors of [`run_create_bench`].
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Opening the store or a write failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A writer task panicked or was cancelled.
    #[error("a benchmark writer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Zero writers or zero creates.
    #[error("benchmark needs at least one writer and one create")]
    Empty,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Concurrent writer tasks.
    pub writers: usize,
    /// Creates in total (spread over the writers).
    pub creates: usize,
    /// Updates in total after the creates, each writer rewriting its own objects in turn
    /// (the steady state of heartbeats and status updates); 0 skips that phase.
    pub updates: usize,
    /// Approximate size of each object's JSON in bytes.
    pub object_size: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            writers: 16,
            creates: 2_000,
            updates: 2_000,
            object_size: 1024,
        }
    }
}

/// Figures of one phase (creates or updates).
#[derive(Debug, Clone)]
pub struct PhaseFigures {
    /// Writes in this phase.
    pub count: usize,
    /// Wall time from the first write sent to the last acknowledged.
    pub elapsed: Duration,
    pub per_sec: f64,
    /// Latency of one write, from sending to the durable acknowledgement.
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Durable commits in this phase (fewer than `count` when group commit batched).
    pub commits: u64,
    /// Bytes this process caused to be written to storage during the phase (`write_bytes`
    /// of `/proc/self/io`); `None` where that file is unavailable.
    pub disk_bytes_written: Option<u64>,
    /// `disk_bytes_written` divided by `count`.
    pub disk_bytes_per_write: Option<f64>,
    /// Bytes the block device holding the store wrote during the phase (all processes);
    /// `None` when the store is not on a block device.
    pub device_bytes_written: Option<u64>,
    /// `device_bytes_written` divided by `count`.
    pub device_bytes_per_write: Option<f64>,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub writers: usize,
    pub object_size: usize,
    pub creates: PhaseFigures,
    pub updates: Option<PhaseFigures>,
    /// Size of the data file afterwards.
    pub data_file_bytes: u64,
    /// Resident set size of the whole process (`VmRSS`) after the run, store still open.
    pub rss_bytes: Option<u64>,
    /// The file-backed part of `rss_bytes` (LMDB's map).
    pub rss_file_bytes: Option<u64>,
    /// Writer counters at the end.
    pub stats: StoreStats,
}

impl std::fmt::Display for PhaseFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {:.2?}: {:.0}/s, p50 {:.2?}, p99 {:.2?}, max {:.2?}, {} commits",
            self.count, self.elapsed, self.per_sec, self.p50, self.p99, self.max, self.commits
        )?;
        if let Some(per) = self.disk_bytes_per_write {
            write!(f, ", process write_bytes {per:.0} B/write")?;
        }
        if let Some(per) = self.device_bytes_per_write {
            write!(f, ", device writes {per:.0} B/write")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} writers, objects of ~{} B",
            self.writers, self.object_size
        )?;
        writeln!(f, "creates: {}", self.creates)?;
        if let Some(updates) = &self.updates {
            writeln!(f, "updates: {updates}")?;
        }
        write!(f, "data file {} B", self.data_file_bytes)?;
        if let Some(rss) = self.rss_bytes {
            write!(f, ", process RSS {:.1} MiB", rss as f64 / (1024.0 * 1024.0))?;
            if let Some(file) = self.rss_file_bytes {
                write!(
                    f,
                    " ({:.1} MiB file-backed)",
                    file as f64 / (1024.0 * 1024.0)
                )?;
            }
        }
        Ok(())
    }
}

/// `write_bytes` of `/proc/self/io`.
pub fn process_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Bytes written so far by the block device that holds `path` (sectors written × 512).
pub fn device_write_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    // The glibc encoding of dev_t.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let stat = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/stat")).ok()?;
    let sectors: u64 = stat.split_whitespace().nth(6)?.parse().ok()?;
    Some(sectors * 512)
}

/// `VmRSS` of `/proc/self/status` in bytes.
pub fn process_rss_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// `RssFile` of `/proc/self/status` in bytes: the file-backed part of the RSS, mostly
/// LMDB's memory map (clean page cache the kernel can drop under pressure).
pub fn process_rss_file_bytes() -> Option<u64> {
    status_bytes("RssFile:")
}

fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|line| line.strip_prefix(field))?;
    kib.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

/// Opens a fresh store in `dir` (which should be empty, on the disk to be measured), runs
/// the creates and then the updates, and closes the store. Needs a tokio runtime.
pub async fn run_create_bench(dir: &Path, config: &BenchConfig) -> Result<BenchReport, BenchError> {
    if config.writers == 0 || config.creates == 0 {
        return Err(BenchError::Empty);
    }
    let store = LmdbStore::open(dir, StoreConfig::default())?;
    let filler: Arc<str> = Arc::from("x".repeat(config.object_size.saturating_sub(120)));
    let creates = run_phase(&store, dir, config, config.creates, &filler, false).await?;
    let updates = if config.updates > 0 {
        Some(run_phase(&store, dir, config, config.updates, &filler, true).await?)
    } else {
        None
    };
    // Everything into LMDB, so the data file's size counts every object.
    store.checkpoint()?;
    let stats = store.stats();
    let data_file_bytes = store.disk_size()?;
    let rss_bytes = process_rss_bytes();
    let rss_file_bytes = process_rss_file_bytes();
    drop(store);
    Ok(BenchReport {
        writers: config.writers,
        object_size: config.object_size,
        creates,
        updates,
        data_file_bytes,
        rss_bytes,
        rss_file_bytes,
        stats,
    })
}

/// Object `i` of `writer`: the same names in both phases, so updates rewrite created objects.
fn object(writer: usize, i: usize, filler: &str, generation: usize) -> (String, serde_json::Value) {
    let name = format!("bench-{writer}-{i}");
    let value = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "bench"},
        "data": {"filler": filler, "generation": generation.to_string()},
    });
    (format!("core/configmaps/bench/{name}"), value)
}

async fn run_phase(
    store: &Arc<LmdbStore>,
    dir: &Path,
    config: &BenchConfig,
    total: usize,
    filler: &Arc<str>,
    update: bool,
) -> Result<PhaseFigures, BenchError> {
    let writers = config.writers;
    // Objects each writer created in the create phase (writer w created `owned(w)` of them).
    let owned = |w: usize| config.creates / writers + usize::from(w < config.creates % writers);
    let commits_before = store.stats().commits;
    let written_before = process_write_bytes();
    let device_before = device_write_bytes(dir);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for writer in 0..writers {
        let count = total / writers + usize::from(writer < total % writers);
        let objects = owned(writer);
        if update && objects == 0 {
            continue;
        }
        let store = store.clone();
        let filler = filler.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for n in 0..count {
                let op = if update {
                    let (key, value) = object(writer, n % objects, &filler, n / objects + 1);
                    Op::Update {
                        key,
                        value,
                        expected_revision: None,
                    }
                } else {
                    let (key, value) = object(writer, n, &filler, 0);
                    Op::Create { key, value }
                };
                let sent = Instant::now();
                store.txn(vec![op]).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, StoreError>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let written_after = process_write_bytes();
    let device_after = device_write_bytes(dir);
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len().saturating_sub(1)) as f64 * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let count = latencies.len();
    let disk_bytes_written = written_before
        .zip(written_after)
        .map(|(b, a)| a.saturating_sub(b));
    let device_bytes_written = device_before
        .zip(device_after)
        .map(|(b, a)| a.saturating_sub(b));
    let per_write = |bytes: Option<u64>| bytes.map(|b| b as f64 / count.max(1) as f64);
    Ok(PhaseFigures {
        count,
        elapsed,
        per_sec: count as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        commits: store.stats().commits - commits_before,
        disk_bytes_written,
        disk_bytes_per_write: per_write(disk_bytes_written),
        device_bytes_written,
        device_bytes_per_write: per_write(device_bytes_written),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ListOptions;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_runs_every_write_and_reports_consistent_figures() {
        let dir = tempfile::tempdir().unwrap();
        let config = BenchConfig {
            writers: 3,
            creates: 40,
            updates: 50,
            object_size: 1024,
        };
        let report = run_create_bench(dir.path(), &config).await.unwrap();
        assert_eq!(report.creates.count, 40);
        assert_eq!(report.updates.as_ref().unwrap().count, 50);
        assert_eq!(report.stats.ops, 90);
        assert_eq!(report.stats.txns_committed, 90);
        let c = &report.creates;
        assert!(c.p50 <= c.p99 && c.p99 <= c.max);
        assert!(c.commits >= 1 && c.commits <= 40);
        assert!(report.data_file_bytes > 40 * 1024);
        // Every object is there, about the requested size, updated in turn.
        let store = LmdbStore::open(dir.path(), StoreConfig::default()).unwrap();
        let listed = store
            .list("core/configmaps/bench/", ListOptions::default())
            .unwrap();
        assert_eq!(listed.items.len(), 40);
        let size = listed.items[0].value.len();
        assert!((900..1200).contains(&size), "object is {size} bytes");
        let updated = listed
            .items
            .iter()
            .filter(|kv| kv.create_revision != kv.mod_revision);
        assert_eq!(
            updated.count(),
            40,
            "50 updates over 40 objects touch each at least once"
        );
        assert!(matches!(
            run_create_bench(
                dir.path(),
                &BenchConfig {
                    writers: 0,
                    ..config
                }
            )
            .await,
            Err(BenchError::Empty)
        ));
    }
}
