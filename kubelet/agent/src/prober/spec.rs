//! Probe kinds and timing parameters with upstream's defaults.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};

/// Which probe of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    /// `livenessProbe`: failure restarts the container.
    Liveness,
    /// `readinessProbe`: drives `ready`.
    Readiness,
    /// `startupProbe`: holds the other two back until it succeeds.
    Startup,
}

impl ProbeKind {
    /// Upstream's capitalised name (`Liveness probe failed: ...`).
    pub fn label(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    /// The container's probe of this kind.
    pub fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
            ProbeKind::Startup => c.startup_probe.as_ref(),
        }
    }
}

/// A probe's timing, defaults filled in as upstream's `SetDefaults_Probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeParams {
    /// `initialDelaySeconds` (0).
    pub initial_delay: Duration,
    /// `periodSeconds` (10).
    pub period: Duration,
    /// `timeoutSeconds` (1).
    pub timeout: Duration,
    /// `successThreshold` (1; always 1 for liveness and startup).
    pub success_threshold: u32,
    /// `failureThreshold` (3).
    pub failure_threshold: u32,
}

fn secs(v: Option<i32>, default: i32, min: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(min) as u64)
}

impl ProbeParams {
    /// The parameters of `p` used as a `kind` probe.
    pub fn from_probe(kind: ProbeKind, p: &Probe) -> Self {
        let success = match kind {
            ProbeKind::Readiness => p.success_threshold.unwrap_or(1).max(1) as u32,
            _ => 1,
        };
        ProbeParams {
            initial_delay: secs(p.initial_delay_seconds, 0, 0),
            period: secs(p.period_seconds, 10, 1),
            timeout: secs(p.timeout_seconds, 1, 1),
            success_threshold: success,
            failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
        }
    }

    /// How long from now until the first probe: the initial delay counted from the
    /// container's start (`started_at`, RFC 3339), or from now when it is unknown.
    pub fn initial_delay_from(&self, started_at: Option<&str>) -> Duration {
        let Some(started) = started_at.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        else {
            return self.initial_delay;
        };
        let ran = (chrono::Utc::now() - started.with_timezone(&chrono::Utc))
            .to_std()
            .unwrap_or_default();
        self.initial_delay.saturating_sub(ran)
    }
}
