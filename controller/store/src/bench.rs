//! A write benchmark the CLI can run on the target board: concurrent creates of objects of
//! a given size, reporting throughput, latency percentiles and the bytes the process sent
//! to the storage layer per create (from `/proc/self/io`, so it includes LMDB's page and
//! meta writes, i.e. the flash wear).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::lmdb::{LmdbStore, StoreConfig, StoreStats};
use crate::{Op, Store, StoreError};

/// Errors of [`run_create_bench`].
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Opening the store or a create failed.
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
    /// Approximate size of each object's JSON in bytes.
    pub object_size: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            writers: 16,
            creates: 2_000,
            object_size: 1024,
        }
    }
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The configuration that ran.
    pub writers: usize,
    pub creates: usize,
    pub object_size: usize,
    /// Wall time from the first create sent to the last acknowledged.
    pub elapsed: Duration,
    pub creates_per_sec: f64,
    /// Median latency of one create, from sending to the durable acknowledgement.
    pub p50: Duration,
    /// 99th percentile and worst latency.
    pub p99: Duration,
    pub max: Duration,
    /// Bytes this process caused to be written to storage during the run (`write_bytes`
    /// of `/proc/self/io`); `None` where that file is unavailable.
    pub disk_bytes_written: Option<u64>,
    /// `disk_bytes_written` divided by the number of creates.
    pub disk_bytes_per_create: Option<f64>,
    /// Size of the data file afterwards.
    pub data_file_bytes: u64,
    /// Resident set size of the whole process (`VmRSS`) after the run, store still open.
    pub rss_bytes: Option<u64>,
    /// Writer counters (commits shows how much group commit batched).
    pub stats: StoreStats,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} creates of ~{} B by {} writers in {:.2?}: {:.0} creates/s, p50 {:.2?}, p99 {:.2?}, \
             max {:.2?}, {} commits",
            self.creates,
            self.object_size,
            self.writers,
            self.elapsed,
            self.creates_per_sec,
            self.p50,
            self.p99,
            self.max,
            self.stats.commits
        )?;
        if let (Some(total), Some(per)) = (self.disk_bytes_written, self.disk_bytes_per_create) {
            write!(f, ", {total} B written to disk ({per:.0} B/create)")?;
        }
        write!(f, ", data file {} B", self.data_file_bytes)?;
        if let Some(rss) = self.rss_bytes {
            write!(f, ", process RSS {:.1} MiB", rss as f64 / (1024.0 * 1024.0))?;
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

/// `VmRSS` of `/proc/self/status` in bytes.
pub fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    kib.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

/// Opens a fresh store in `dir` (which should be empty, on the disk to be measured), runs
/// the creates and closes the store. Needs a tokio runtime.
pub async fn run_create_bench(dir: &Path, config: &BenchConfig) -> Result<BenchReport, BenchError> {
    if config.writers == 0 || config.creates == 0 {
        return Err(BenchError::Empty);
    }
    let store = LmdbStore::open(dir, StoreConfig::default())?;
    let filler = "x".repeat(config.object_size.saturating_sub(120));
    let written_before = process_write_bytes();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(config.writers);
    for writer in 0..config.writers {
        let store = store.clone();
        let filler = filler.clone();
        let count =
            config.creates / config.writers + usize::from(writer < config.creates % config.writers);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for i in 0..count {
                let name = format!("bench-{writer}-{i}");
                let value = json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": "bench"},
                    "data": {"filler": filler},
                });
                let key = format!("core/configmaps/bench/{name}");
                let sent = Instant::now();
                store.txn(vec![Op::Create { key, value }]).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, StoreError>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(config.creates);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let written_after = process_write_bytes();
    let stats = store.stats();
    let data_file_bytes = store.disk_size()?;
    let rss_bytes = process_rss_bytes();
    drop(store);

    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let disk_bytes_written = written_before
        .zip(written_after)
        .map(|(b, a)| a.saturating_sub(b));
    Ok(BenchReport {
        writers: config.writers,
        creates: config.creates,
        object_size: config.object_size,
        elapsed,
        creates_per_sec: config.creates as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        max: *latencies.last().unwrap_or(&Duration::ZERO),
        disk_bytes_written,
        disk_bytes_per_create: disk_bytes_written.map(|b| b as f64 / config.creates as f64),
        data_file_bytes,
        rss_bytes,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_runs_every_create_and_reports_consistent_figures() {
        let dir = tempfile::tempdir().unwrap();
        let config = BenchConfig {
            writers: 3,
            creates: 40,
            object_size: 1024,
        };
        let report = run_create_bench(dir.path(), &config).await.unwrap();
        assert_eq!(report.stats.ops, 40);
        assert_eq!(report.stats.txns_committed, 40);
        assert!(report.p50 <= report.p99 && report.p99 <= report.max);
        assert!(report.data_file_bytes > 40 * 1024);
        // Every object is there, about the requested size.
        let store = LmdbStore::open(dir.path(), StoreConfig::default()).unwrap();
        let listed = store
            .list("core/configmaps/bench/", Default::default())
            .unwrap();
        assert_eq!(listed.items.len(), 40);
        let size = listed.items[0].value.len();
        assert!((900..1200).contains(&size), "object is {size} bytes");
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
