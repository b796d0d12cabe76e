//! Intervals and limits, with upstream's defaults; tests shorten them.

use std::time::Duration;

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// `spec.schedulerName` this scheduler serves.
    pub scheduler_name: String,
    /// First back-off after a failed attempt (upstream `podInitialBackoffSeconds`, 1 s).
    pub initial_backoff: Duration,
    /// Longest back-off (upstream `podMaxBackoffSeconds`, 10 s).
    pub max_backoff: Duration,
    /// An unschedulable pod is retried after this long even if nothing changed (upstream
    /// `podMaxInUnschedulablePodsDuration`, 5 min).
    pub unschedulable_retry: Duration,
    /// Bindings in flight at once (upstream binds every pod in its own goroutine; 64 lets the
    /// store group-commit them).
    pub bind_concurrency: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            scheduler_name: "default-scheduler".into(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            unschedulable_retry: Duration::from_secs(300),
            bind_concurrency: 64,
        }
    }
}

/// The node lifecycle controller's settings.
#[derive(Debug, Clone)]
pub struct NodeLifecycleConfig {
    /// How often every node is checked (upstream `--node-monitor-period`, 5 s).
    pub monitor_period: Duration,
    /// How long a lease may go unrenewed before the node is Unknown (upstream
    /// `--node-monitor-grace-period`, 40 s).
    pub grace_period: Duration,
    /// tolerationSeconds of the not-ready/unreachable NoExecute tolerations the
    /// DefaultTolerationSeconds admission adds (300 s); applied here to pods lacking them.
    pub default_toleration_seconds: i64,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(40),
            default_toleration_seconds: 300,
        }
    }
}

fn env_millis(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
}

impl SchedulerConfig {
    /// Defaults, with `BRAMBLE_SCHEDULER_INITIAL_BACKOFF_MS`, `BRAMBLE_SCHEDULER_MAX_BACKOFF_MS`
    /// and `BRAMBLE_SCHEDULER_UNSCHEDULABLE_RETRY_MS` overriding them (tests shorten them).
    pub fn from_env() -> SchedulerConfig {
        let mut c = SchedulerConfig::default();
        if let Some(d) = env_millis("BRAMBLE_SCHEDULER_INITIAL_BACKOFF_MS") {
            c.initial_backoff = d;
        }
        if let Some(d) = env_millis("BRAMBLE_SCHEDULER_MAX_BACKOFF_MS") {
            c.max_backoff = d;
        }
        if let Some(d) = env_millis("BRAMBLE_SCHEDULER_UNSCHEDULABLE_RETRY_MS") {
            c.unschedulable_retry = d;
        }
        c
    }
}

impl NodeLifecycleConfig {
    /// Defaults, with `BRAMBLE_NODE_MONITOR_PERIOD_MS`, `BRAMBLE_NODE_MONITOR_GRACE_PERIOD_MS`
    /// and `BRAMBLE_DEFAULT_TOLERATION_SECONDS` overriding them (tests shorten them).
    pub fn from_env() -> NodeLifecycleConfig {
        let mut c = NodeLifecycleConfig::default();
        if let Some(d) = env_millis("BRAMBLE_NODE_MONITOR_PERIOD_MS") {
            c.monitor_period = d;
        }
        if let Some(d) = env_millis("BRAMBLE_NODE_MONITOR_GRACE_PERIOD_MS") {
            c.grace_period = d;
        }
        if let Some(s) = std::env::var("BRAMBLE_DEFAULT_TOLERATION_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            c.default_toleration_seconds = s;
        }
        c
    }
}
