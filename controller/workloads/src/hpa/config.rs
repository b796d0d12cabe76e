//! The autoscaler's settings, upstream's `--horizontal-pod-autoscaler-*` flags with their
//! defaults; `BRAMBLE_HPA_*` environment variables override them (tests shorten them).

use std::time::Duration;

use jiff::SignedDuration;

use super::replicas::CalcConfig;

/// Settings of the HorizontalPodAutoscaler controller.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaConfig {
    /// How often each autoscaler is synced (`--horizontal-pod-autoscaler-sync-period`, 15 s).
    pub sync_period: Duration,
    /// How long a scale-down waits for the highest recent recommendation to age out
    /// (`--horizontal-pod-autoscaler-downscale-stabilization`, 5 min); also the default
    /// `behavior.scaleDown.stabilizationWindowSeconds`.
    pub downscale_stabilization: SignedDuration,
    /// Tolerance, cpu initialization period and initial readiness delay.
    pub calc: CalcConfig,
}

impl Default for HpaConfig {
    fn default() -> Self {
        HpaConfig {
            sync_period: Duration::from_secs(15),
            downscale_stabilization: SignedDuration::from_secs(300),
            calc: CalcConfig::default(),
        }
    }
}

fn env_millis(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn signed_millis(ms: u64) -> SignedDuration {
    SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

impl HpaConfig {
    /// Defaults, with `BRAMBLE_HPA_SYNC_PERIOD_MS`, `BRAMBLE_HPA_DOWNSCALE_STABILIZATION_MS`,
    /// `BRAMBLE_HPA_TOLERANCE`, `BRAMBLE_HPA_CPU_INITIALIZATION_PERIOD_MS` and
    /// `BRAMBLE_HPA_INITIAL_READINESS_DELAY_MS` overriding them.
    pub fn from_env() -> HpaConfig {
        let mut c = HpaConfig::default();
        if let Some(ms) = env_millis("BRAMBLE_HPA_SYNC_PERIOD_MS") {
            c.sync_period = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = env_millis("BRAMBLE_HPA_DOWNSCALE_STABILIZATION_MS") {
            c.downscale_stabilization = signed_millis(ms);
        }
        if let Some(t) = std::env::var("BRAMBLE_HPA_TOLERANCE")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
        {
            c.calc.tolerance = t;
        }
        if let Some(ms) = env_millis("BRAMBLE_HPA_CPU_INITIALIZATION_PERIOD_MS") {
            c.calc.cpu_initialization_period = signed_millis(ms);
        }
        if let Some(ms) = env_millis("BRAMBLE_HPA_INITIAL_READINESS_DELAY_MS") {
            c.calc.initial_readiness_delay = signed_millis(ms);
        }
        c
    }

    /// The default scale-down window in whole seconds (for `behavior`).
    pub fn downscale_window_seconds(&self) -> i32 {
        i32::try_from(self.downscale_stabilization.as_secs()).unwrap_or(i32::MAX)
    }
}
