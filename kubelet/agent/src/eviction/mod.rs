//! Node-pressure eviction (upstream `pkg/kubelet/eviction`): every monitoring interval the
//! [`manager::EvictionManager`] observes the signals ([`signals::SignalSource`]), decides
//! which thresholds are met (hard at once, soft after their grace period), reports the node
//! conditions MemoryPressure / DiskPressure / PIDPressure (held for the pressure transition
//! period), reclaims node-level resources first (dead containers, unused images) and then
//! evicts one pod per interval, ranked as upstream ([`ranking`]). Before any threshold is
//! acted on, pods over their local ephemeral storage limits (emptyDir `sizeLimit`, pod and
//! container `ephemeral-storage` limits) are evicted at once ([`local_storage`]).

pub mod local_storage;
pub mod manager;
pub mod ranking;
pub mod signals;
pub mod thresholds;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

pub use local_storage::{DiskUsage, StorageLayout};
pub use manager::{EvictionManager, PressureState};
pub use signals::{NodeSignals, Observations, PodUsage, SignalSource};
pub use thresholds::{Observation, Signal, Threshold, ThresholdValue};

/// Eviction settings (the `eviction*` and `imageGC*` fields of the kubelet configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct EvictionConfig {
    /// Hard and soft thresholds.
    pub thresholds: Vec<Threshold>,
    /// How long a pressure condition stays true after its threshold stops being met
    /// (`evictionPressureTransitionPeriod`, upstream 5m).
    pub pressure_transition_period: Duration,
    /// Upper bound of the grace period of pods evicted for a soft threshold
    /// (`evictionMaxPodGracePeriod`, seconds; 0 uses each pod's own).
    pub max_pod_grace_period_seconds: i64,
    /// `imageGCHighThresholdPercent` (85).
    pub image_gc_high_percent: u8,
    /// `imageGCLowThresholdPercent` (80).
    pub image_gc_low_percent: u8,
    /// How often signals are observed (upstream's housekeeping interval, 10 s).
    pub monitoring_interval: Duration,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            thresholds: thresholds::default_hard(),
            pressure_transition_period: Duration::from_secs(300),
            max_pod_grace_period_seconds: 0,
            image_gc_high_percent: bramble_images::gc::DEFAULT_HIGH_THRESHOLD_PERCENT,
            image_gc_low_percent: bramble_images::gc::DEFAULT_LOW_THRESHOLD_PERCENT,
            monitoring_interval: Duration::from_secs(10),
        }
    }
}

impl EvictionConfig {
    /// The hard threshold amount of `signal` for a resource of `capacity` (0 when none), as
    /// subtracted from node allocatable.
    pub fn hard_amount(&self, signal: Signal, capacity: i64) -> i64 {
        self.thresholds
            .iter()
            .filter(|t| t.hard && t.signal == signal)
            .map(|t| t.value.amount(capacity))
            .max()
            .unwrap_or(0)
    }
}

/// The eviction of `pod`: decided by this kubelet (in `evictions`), or reported in its API
/// status by an earlier run (phase `Failed`, reason `Evicted`), so a restarted kubelet does
/// not start an evicted pod again.
pub fn eviction_of(evictions: &manager::Evictions, pod: &Pod) -> Option<manager::Eviction> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    evictions.get(uid).or_else(|| {
        let s = pod.status.as_ref()?;
        (s.phase.as_deref() == Some("Failed") && s.reason.as_deref() == Some("Evicted")).then(
            || manager::Eviction {
                message: s.message.clone().unwrap_or_default(),
                grace_seconds: 0,
                disruption_condition: s
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "DisruptionTarget"),
            },
        )
    })
}
