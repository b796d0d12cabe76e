//! Image garbage collection as the kubelet's image GC manager does it: when the filesystem
//! holding the store is at or above `imageGCHighThresholdPercent` used, remove unused images,
//! least recently used first, until usage is below `imageGCLowThresholdPercent`. Images younger
//! than the minimum age (`imageMinimumGCAge`, 2 minutes upstream) are kept. Layers and blobs no
//! image references are always removed.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::store::{unix_ms, ImageRecord, ImageStore, StoreError};

/// Upstream default `imageGCHighThresholdPercent`.
pub const DEFAULT_HIGH_THRESHOLD_PERCENT: u8 = 85;
/// Upstream default `imageGCLowThresholdPercent`.
pub const DEFAULT_LOW_THRESHOLD_PERCENT: u8 = 80;
/// Upstream default `imageMinimumGCAge`.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(120);

/// Capacity and free space of a filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    /// Total bytes.
    pub capacity: u64,
    /// Bytes available to unprivileged users.
    pub available: u64,
}

impl FsUsage {
    /// Used percentage as upstream computes it: `100 - available*100/capacity`.
    pub fn used_percent(&self) -> u8 {
        if self.capacity == 0 {
            return 0;
        }
        (100 - (self.available.saturating_mul(100) / self.capacity).min(100)) as u8
    }
}

/// Source of filesystem usage for the GC (a seam: statvfs in production).
pub trait DiskStats: Send + Sync {
    /// Usage of the filesystem holding `path`.
    fn usage(&self, path: &Path) -> io::Result<FsUsage>;
}

/// [`DiskStats`] from `statvfs(2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Statvfs;

impl DiskStats for Statvfs {
    fn usage(&self, path: &Path) -> io::Result<FsUsage> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: zeroed statvfs is a valid out-parameter; `c` is NUL-terminated.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let frsize = s.f_frsize as u64;
        Ok(FsUsage {
            capacity: s.f_blocks as u64 * frsize,
            available: s.f_bavail as u64 * frsize,
        })
    }
}

/// GC thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// Start collecting at or above this used percentage (100 disables image eviction).
    pub high_threshold_percent: u8,
    /// Collect until usage is below this percentage.
    pub low_threshold_percent: u8,
    /// Images pulled more recently than this are never evicted.
    pub min_age: Duration,
}

impl Default for GcPolicy {
    fn default() -> Self {
        GcPolicy {
            high_threshold_percent: DEFAULT_HIGH_THRESHOLD_PERCENT,
            low_threshold_percent: DEFAULT_LOW_THRESHOLD_PERCENT,
            min_age: DEFAULT_MIN_AGE,
        }
    }
}

/// Errors of a GC run.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// Thresholds out of range, as upstream validates them.
    #[error(
        "invalid image GC thresholds: high {high}%, low {low}% (need 0 <= low <= high <= 100)"
    )]
    InvalidThresholds {
        /// High threshold.
        high: u8,
        /// Low threshold.
        low: u8,
    },
    /// Disk usage could not be read.
    #[error("reading disk usage of {path}: {source}")]
    DiskStats {
        /// The store root.
        path: std::path::PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Still above the low threshold after removing every unused image (upstream message).
    #[error("Failed to garbage collect required amount of images. Attempted to free {wanted} bytes, but only found {freed} bytes eligible to free.")]
    NotEnoughFreed {
        /// Bytes that needed freeing.
        wanted: u64,
        /// Bytes actually freed.
        freed: u64,
    },
}

/// What a GC run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Used percentage before the run.
    pub used_percent_before: u8,
    /// Used percentage after the run.
    pub used_percent_after: u8,
    /// References of evicted images, in eviction order.
    pub removed_images: Vec<String>,
    /// Unreferenced blobs/layers/temporaries deleted.
    pub pruned_entries: usize,
    /// Bytes the filesystem gained (available after - before).
    pub freed_bytes: u64,
}

impl ImageStore {
    /// Capacity and free space of the filesystem holding the store (the kubelet's imagefs).
    pub fn disk_usage(&self) -> Result<FsUsage, GcError> {
        self.disk
            .usage(&self.root)
            .map_err(|source| GcError::DiskStats {
                path: self.root.clone(),
                source,
            })
    }

    /// Runs GC with upstream's thresholds semantics and the default minimum age; `in_use` tells
    /// which images containers use (those are never removed).
    pub fn gc(
        &self,
        high_threshold_percent: u8,
        low_threshold_percent: u8,
        in_use: impl Fn(&ImageRecord) -> bool,
    ) -> Result<GcReport, GcError> {
        self.gc_with_policy(
            &GcPolicy {
                high_threshold_percent,
                low_threshold_percent,
                min_age: DEFAULT_MIN_AGE,
            },
            in_use,
        )
    }

    /// Runs GC with an explicit policy.
    pub fn gc_with_policy(
        &self,
        policy: &GcPolicy,
        in_use: impl Fn(&ImageRecord) -> bool,
    ) -> Result<GcReport, GcError> {
        let (high, low) = (policy.high_threshold_percent, policy.low_threshold_percent);
        if high > 100 || low > high {
            return Err(GcError::InvalidThresholds { high, low });
        }
        let _span = tracing::info_span!("image_gc", high, low).entered();
        let start = self.disk_usage()?;
        let mut report = GcReport {
            used_percent_before: start.used_percent(),
            pruned_entries: self.prune()?,
            ..Default::default()
        };
        let mut usage = self.disk_usage()?;
        if usage.used_percent() >= high {
            // Upstream: amountToFree = capacity*(100-low)/100 - available.
            let target_available = usage.capacity * (100 - low as u64) / 100;
            let wanted = target_available.saturating_sub(usage.available);
            let now = unix_ms(SystemTime::now());
            let min_age_ms = policy.min_age.as_millis() as u64;
            let mut candidates: Vec<ImageRecord> = self
                .list()?
                .into_iter()
                .filter(|r| !in_use(r) && now.saturating_sub(r.created_ms) >= min_age_ms)
                .collect();
            candidates.sort_by_key(|r| (r.last_used_ms, r.created_ms));
            for rec in candidates {
                if usage.available >= target_available {
                    break;
                }
                tracing::info!(image = %rec.reference, last_used_ms = rec.last_used_ms, "evicting image");
                self.remove_record(&rec)?;
                report.pruned_entries += self.prune()?;
                report.removed_images.push(rec.reference);
                usage = self.disk_usage()?;
            }
            if usage.available < target_available {
                report.used_percent_after = usage.used_percent();
                return Err(GcError::NotEnoughFreed {
                    wanted,
                    freed: usage.available.saturating_sub(start.available),
                });
            }
        }
        report.used_percent_after = usage.used_percent();
        report.freed_bytes = usage.available.saturating_sub(start.available);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_percent_matches_upstream_rounding() {
        let u = FsUsage {
            capacity: 1000,
            available: 151,
        };
        // 100 - 15 = 85
        assert_eq!(u.used_percent(), 85);
        assert_eq!(
            FsUsage {
                capacity: 0,
                available: 0
            }
            .used_percent(),
            0
        );
    }

    #[test]
    fn statvfs_reads_a_real_filesystem() {
        let u = Statvfs.usage(Path::new("/")).unwrap();
        assert!(u.capacity > 0 && u.available <= u.capacity);
    }
}
