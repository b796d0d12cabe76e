//! Which pod goes first (upstream `rankMemoryPressure`, `rankPIDPressure`,
//! `rankDiskPressureFunc`): under memory pressure pods whose usage exceeds their requests
//! first (so BestEffort, then Burstable over request), then lower priority, then larger
//! usage above request; under PID pressure lower priority, then more processes; under disk
//! pressure lower priority, then the weaker QoS class. Critical pods (static, mirror, or
//! priority at least 2000000000) are never ranked.

use std::cmp::Ordering;

use bramble_cgroups::QosClass;
use k8s_openapi::api::core::v1::Pod;

use super::signals::PodUsage;
use super::thresholds::Signal;

/// Upstream's `SystemCriticalPriority`.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// A pod as ranking sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// Its QoS class.
    pub qos: QosClass,
    /// Sum of its containers' memory requests, bytes.
    pub memory_request: u64,
    /// Its usage (zero when not measured).
    pub usage: PodUsage,
}

/// `spec.priority` (0 when unset).
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// Whether eviction must spare the pod (upstream `IsCriticalPod`).
pub fn is_critical(pod: &Pod) -> bool {
    let annotations = pod.metadata.annotations.as_ref();
    let static_or_mirror = annotations.is_some_and(|a| {
        a.contains_key("kubernetes.io/config.mirror")
            || a.get("kubernetes.io/config.source")
                .is_some_and(|s| s != "api")
    });
    static_or_mirror || priority(pod) >= SYSTEM_CRITICAL_PRIORITY
}

fn exceeds(c: &Candidate<'_>) -> bool {
    c.usage.memory_working_set > c.memory_request
}

fn qos_rank(q: QosClass) -> u8 {
    match q {
        QosClass::BestEffort => 0,
        QosClass::Burstable => 1,
        QosClass::Guaranteed => 2,
    }
}

/// Compares two candidates for `signal`: `Less` is evicted first.
pub fn compare(signal: Signal, a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    let by_priority = priority(a.pod).cmp(&priority(b.pod));
    match signal {
        Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => {
            exceeds(b).cmp(&exceeds(a)).then(by_priority).then_with(|| {
                let over = |c: &Candidate<'_>| {
                    c.usage.memory_working_set as i128 - c.memory_request as i128
                };
                over(b).cmp(&over(a))
            })
        }
        Signal::PidAvailable => by_priority.then(b.usage.processes.cmp(&a.usage.processes)),
        _ => by_priority.then(qos_rank(a.qos).cmp(&qos_rank(b.qos))),
    }
}

/// Ranks `candidates` for `signal`, critical pods removed; the first is evicted first.
pub fn rank<'a>(signal: Signal, mut candidates: Vec<Candidate<'a>>) -> Vec<Candidate<'a>> {
    candidates.retain(|c| !is_critical(c.pod));
    candidates.sort_by(|a, b| compare(signal, a, b));
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, prio: Option<i32>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            priority: prio,
            ..Default::default()
        });
        p
    }

    fn cand(p: &Pod, qos: QosClass, request: u64, ws: u64) -> Candidate<'_> {
        Candidate {
            pod: p,
            qos,
            memory_request: request,
            usage: PodUsage {
                memory_working_set: ws,
                processes: 1,
            },
        }
    }

    fn names(r: &[Candidate<'_>]) -> Vec<String> {
        r.iter()
            .map(|c| c.pod.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn memory_ranks_best_effort_then_burstable_over_request() {
        let (g, bu, be, bu2) = (
            pod("guaranteed", None),
            pod("burstable-over", None),
            pod("besteffort", None),
            pod("burstable-under", None),
        );
        let r = rank(
            Signal::MemoryAvailable,
            vec![
                cand(&g, QosClass::Guaranteed, 100 << 20, 90 << 20),
                cand(&bu2, QosClass::Burstable, 100 << 20, 10 << 20),
                cand(&bu, QosClass::Burstable, 10 << 20, 20 << 20),
                cand(&be, QosClass::BestEffort, 0, 50 << 20),
            ],
        );
        // Within requests QoS does not matter: usage above request decides (the
        // Guaranteed pod's -10Mi before the Burstable pod's -90Mi), as upstream.
        assert_eq!(
            names(&r),
            [
                "besteffort",
                "burstable-over",
                "guaranteed",
                "burstable-under"
            ]
        );
    }

    #[test]
    fn priority_breaks_ties_and_critical_pods_are_spared() {
        let (low, high, crit) = (
            pod("low", Some(-10)),
            pod("high", Some(1000)),
            pod("crit", Some(SYSTEM_CRITICAL_PRIORITY)),
        );
        let r = rank(
            Signal::MemoryAvailable,
            vec![
                cand(&high, QosClass::BestEffort, 0, 500 << 20),
                cand(&low, QosClass::BestEffort, 0, 1 << 20),
                cand(&crit, QosClass::BestEffort, 0, 900 << 20),
            ],
        );
        assert_eq!(names(&r), ["low", "high"]);
        let mut mirror = pod("mirror", None);
        mirror.metadata.annotations = Some(
            [("kubernetes.io/config.mirror".to_string(), "x".to_string())]
                .into_iter()
                .collect(),
        );
        assert!(is_critical(&mirror));
    }
}
