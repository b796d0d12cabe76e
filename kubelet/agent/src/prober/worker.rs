//! One probe's state (upstream `worker.go`): its timer entry, consecutive-result counting
//! against the thresholds, and the hold after a liveness or startup failure.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Probe;
use tokio::time::Instant;

use super::run::ProbeTarget;
use super::{Inner, ProbeKind, ProbeParams, ProbeResult};

/// A probe's identity: pod uid, container name, kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub uid: String,
    pub container: String,
    pub kind: ProbeKind,
}

/// A timer entry: run the probe `key` (of `generation`) at `at`. Ordered so the heap pops
/// the earliest first.
#[derive(Debug)]
pub(crate) struct Due {
    pub at: Instant,
    pub generation: u64,
    pub key: Key,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.generation == o.generation
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at).then(o.generation.cmp(&self.generation))
    }
}

/// The state of one probe of one container.
pub(crate) struct Worker {
    pub kind: ProbeKind,
    pub probe: Arc<Probe>,
    pub params: ProbeParams,
    pub container_id: String,
    pub generation: u64,
    /// The verdict the kubelet acts on.
    pub result: ProbeResult,
    last: Option<ProbeResult>,
    run_len: u32,
    on_hold: bool,
    in_flight: bool,
}

impl Worker {
    pub fn new(
        kind: ProbeKind,
        probe: Arc<Probe>,
        params: ProbeParams,
        container_id: String,
        generation: u64,
    ) -> Self {
        // Upstream's initial values: live until proven otherwise, not ready, not started.
        let result = match kind {
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Startup => ProbeResult::Unknown,
        };
        Worker {
            kind,
            probe,
            params,
            container_id,
            generation,
            result,
            last: None,
            run_len: 0,
            on_hold: false,
            in_flight: false,
        }
    }

    /// Counts one probe outcome; returns whether the verdict changed (upstream
    /// `doProbe`'s threshold logic).
    pub fn observe(&mut self, r: ProbeResult) -> bool {
        self.in_flight = false;
        if r == ProbeResult::Unknown {
            // The probe could not run (an error, not a verdict): nothing changes.
            return false;
        }
        if self.last == Some(r) {
            self.run_len = self.run_len.saturating_add(1);
        } else {
            self.last = Some(r);
            self.run_len = 1;
        }
        let threshold = match r {
            ProbeResult::Success => self.params.success_threshold,
            _ => self.params.failure_threshold,
        };
        if self.run_len < threshold {
            return false;
        }
        let changed = self.result != r;
        self.result = r;
        if self.kind != ProbeKind::Readiness && r == ProbeResult::Failure {
            // The container is restarted; stop probing it until a new one replaces it.
            self.on_hold = true;
            self.run_len = 0;
        }
        changed
    }
}

/// A probe to run now.
pub(crate) struct Run {
    pub key: Key,
    pub generation: u64,
    pub probe: Arc<Probe>,
    pub target: ProbeTarget,
}

/// What a recorded outcome did.
pub(crate) struct Outcome {
    pub changed: bool,
    pub result: ProbeResult,
}

/// The grid repeated probes run on: whole seconds from the prober's epoch.
const GRID: Duration = Duration::from_secs(1);

/// `t`, or the first point of the grid after it: probes whose period is a whole number of
/// seconds (all of them, from `periodSeconds`) then fall due together, and the timer wakes
/// once a second for all of them instead of once per probe. A probe's first run stays at
/// its initial delay; its second moves up to a second later, and every one after keeps the
/// period (upstream's workers tick from when each started, its first probe after the
/// initial delay up to a period late). A period under the grid's is left as it is.
pub(crate) fn on_grid(epoch: Instant, t: Instant, period: Duration) -> Instant {
    if period < GRID || t <= epoch {
        return t;
    }
    let since = t - epoch;
    let grid = GRID.as_nanos();
    let rest = since.as_nanos() % grid;
    if rest == 0 {
        return t;
    }
    t + Duration::from_nanos((grid - rest) as u64)
}

/// Takes a due timer entry: reschedules it one period later and returns the probe to run,
/// unless it is stale, on hold, held back by a startup probe, or still running.
pub(crate) fn prepare(inner: &mut Inner, d: Due, now: Instant) -> Option<Run> {
    let epoch = inner.epoch;
    let startup_done = {
        let startup_key = Key {
            kind: ProbeKind::Startup,
            ..d.key.clone()
        };
        inner
            .workers
            .get(&startup_key)
            .is_none_or(|w| w.result == ProbeResult::Success)
    };
    let w = inner.workers.get_mut(&d.key)?;
    if w.generation != d.generation {
        return None;
    }
    if w.kind == ProbeKind::Startup && w.result == ProbeResult::Success {
        // Startup is done for this container: the probe stops.
        return None;
    }
    let mut next = d.at + w.params.period;
    if next <= now {
        next = now + w.params.period;
    }
    let next = on_grid(epoch, next, w.params.period);
    let (probe, container_id, generation, timeout) = (
        w.probe.clone(),
        w.container_id.clone(),
        w.generation,
        w.params.timeout,
    );
    let skip = w.on_hold || w.in_flight || (w.kind != ProbeKind::Startup && !startup_done);
    if !skip {
        w.in_flight = true;
    }
    inner.heap.push(Due {
        at: next,
        generation: d.generation,
        key: d.key.clone(),
    });
    if skip {
        return None;
    }
    let pod = inner.pods.get(&d.key.uid)?;
    let container = pod
        .containers
        .iter()
        .find(|c| c.spec.name == d.key.container)?;
    let target = ProbeTarget {
        netns: pod.netns.clone(),
        pod_ip: pod.pod_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        container: container.spec.clone(),
        container_id,
        timeout,
    };
    Some(Run {
        key: d.key,
        generation,
        probe,
        target,
    })
}

/// Records the outcome of `run` on its worker (if it still exists).
pub(crate) fn record(inner: &mut Inner, run: &Run, r: ProbeResult) -> Outcome {
    match inner
        .workers
        .get_mut(&run.key)
        .filter(|w| w.generation == run.generation)
    {
        Some(w) => {
            let changed = w.observe(r);
            Outcome {
                changed,
                result: w.result,
            }
        }
        None => Outcome {
            changed: false,
            result: r,
        },
    }
}
