//! The replica calculation of upstream's `ReplicaCalculator` for Resource metrics, as pure
//! functions over plain samples: pods grouped into ready / unready / missing-metric /
//! ignored, the usage ratio against the target, the 0.1 tolerance, and the rebalancing of
//! unready and missing pods (0% on a scale-up, 100% of the request on a scale-down).

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

/// A pod's phase as the calculator needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet.
    Pending,
    /// Running (or Succeeded/Unknown: upstream treats every other phase alike).
    Running,
    /// Failed.
    Failed,
}

/// The Ready condition of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// `status == "True"`.
    pub ready: bool,
    /// `status == "False"` (not "Unknown").
    pub not_ready: bool,
    /// When the condition last changed.
    pub last_transition: Timestamp,
}

/// A pod of the scale target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSample {
    /// The pod's name.
    pub name: String,
    /// The pod's phase.
    pub phase: Phase,
    /// Whether the pod has a deletion timestamp.
    pub deleting: bool,
    /// The Ready condition, if reported.
    pub readiness: Option<Readiness>,
    /// `status.startTime`.
    pub start_time: Option<Timestamp>,
    /// The sum of the containers' requests of the resource (milli-units), or the name of
    /// the first container without one.
    pub request: Result<i64, String>,
}

/// One pod's usage from the resource metrics API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodMetric {
    /// Summed container usage in milli-units.
    pub value: i64,
    /// When the sample was taken.
    pub timestamp: Timestamp,
    /// The sample's window.
    pub window: SignedDuration,
}

/// Upstream's `--horizontal-pod-autoscaler-*` calculation knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalcConfig {
    /// Relative change below which nothing is done (`--horizontal-pod-autoscaler-tolerance`).
    pub tolerance: f64,
    /// A pod started less than this ago has its cpu sample ignored until one whole window
    /// was collected after it became ready (`--horizontal-pod-autoscaler-cpu-initialization-period`).
    pub cpu_initialization_period: SignedDuration,
    /// An unready pod that never was ready within this of its start is ignored
    /// (`--horizontal-pod-autoscaler-initial-readiness-delay`).
    pub initial_readiness_delay: SignedDuration,
}

impl Default for CalcConfig {
    fn default() -> Self {
        CalcConfig {
            tolerance: 0.1,
            cpu_initialization_period: SignedDuration::from_secs(300),
            initial_readiness_delay: SignedDuration::from_secs(30),
        }
    }
}

/// What the calculation fails with; the messages are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// The selector matched no pods.
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    /// Every pod was unready or had no sample.
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoReadyMetrics,
    /// A container lacks a request of the resource (utilization targets only).
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        resource: String,
        container: String,
        pod: String,
    },
    /// No sample belonged to a pod with requests.
    #[error("no metrics returned matched known pods")]
    NoMatchingPods,
}

/// The pods sorted by how the calculation treats them (upstream `groupPods`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Groups {
    /// Pods counted as ready with a sample.
    pub ready: usize,
    /// Pending pods and, for cpu, pods still initializing or unready.
    pub unready: BTreeSet<String>,
    /// Running pods without a sample.
    pub missing: BTreeSet<String>,
    /// Deleted and failed pods: left out altogether.
    pub ignored: BTreeSet<String>,
}

/// Upstream `groupPods`.
pub fn group_pods(
    pods: &[PodSample],
    metrics: &BTreeMap<String, PodMetric>,
    is_cpu: bool,
    now: Timestamp,
    cfg: &CalcConfig,
) -> Groups {
    let mut g = Groups::default();
    for pod in pods {
        if pod.deleting || pod.phase == Phase::Failed {
            g.ignored.insert(pod.name.clone());
            continue;
        }
        if pod.phase == Phase::Pending {
            g.unready.insert(pod.name.clone());
            continue;
        }
        let Some(metric) = metrics.get(&pod.name) else {
            g.missing.insert(pod.name.clone());
            continue;
        };
        if is_cpu && cpu_sample_unready(pod, metric, now, cfg) {
            g.unready.insert(pod.name.clone());
            continue;
        }
        g.ready += 1;
    }
    g
}

/// Whether a pod's cpu sample must not be trusted yet.
fn cpu_sample_unready(
    pod: &PodSample,
    metric: &PodMetric,
    now: Timestamp,
    cfg: &CalcConfig,
) -> bool {
    let (Some(cond), Some(start)) = (pod.readiness, pod.start_time) else {
        return true;
    };
    if start + cfg.cpu_initialization_period > now {
        // Still initializing: unready, or no whole window collected since the transition.
        cond.not_ready || metric.timestamp < cond.last_transition + metric.window
    } else {
        // Unready and never ready since the start.
        cond.not_ready && start + cfg.initial_readiness_delay > cond.last_transition
    }
}

/// The per-pod requests (upstream `calculateRequests`): every pod must request the resource.
pub fn requests(pods: &[PodSample], resource: &str) -> Result<BTreeMap<String, i64>, CalcError> {
    pods.iter()
        .map(|p| match &p.request {
            Ok(r) => Ok((p.name.clone(), *r)),
            Err(container) => Err(CalcError::MissingRequest {
                resource: resource.to_string(),
                container: container.clone(),
                pod: p.name.clone(),
            }),
        })
        .collect()
}

/// Upstream `GetResourceUtilizationRatio`: (usage ratio, utilization percent, average raw
/// usage in milli-units) over the samples of pods with requests.
pub fn utilization_ratio(
    metrics: &BTreeMap<String, i64>,
    requests: &BTreeMap<String, i64>,
    target_utilization: i32,
) -> Result<(f64, i32, i64), CalcError> {
    let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
    for (pod, value) in metrics {
        if let Some(r) = requests.get(pod) {
            used += value;
            requested += r;
            n += 1;
        }
    }
    if requested == 0 {
        return Err(CalcError::NoMatchingPods);
    }
    let utilization = i32::try_from(used * 100 / requested).unwrap_or(i32::MAX);
    Ok((
        f64::from(utilization) / f64::from(target_utilization),
        utilization,
        used / n,
    ))
}

/// Upstream `GetMetricUsageRatio`: (usage ratio, average usage) against an average target.
pub fn usage_ratio(metrics: &BTreeMap<String, i64>, target: i64) -> (f64, i64) {
    let total: i64 = metrics.values().sum();
    let avg = total / i64::try_from(metrics.len().max(1)).unwrap_or(1);
    (avg as f64 / target as f64, avg)
}

/// What a Resource metric proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    /// Desired replicas.
    pub replicas: i32,
    /// Current utilization in percent of the request (Utilization targets).
    pub utilization: Option<i32>,
    /// Current average usage in milli-units.
    pub average: i64,
}

/// The target of a Resource metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `averageUtilization` in percent of the request.
    Utilization(i32),
    /// `averageValue` in milli-units.
    AverageValue(i64),
}

/// Upstream `GetResourceReplicas` (Utilization) and `GetRawResourceReplicas` (AverageValue)
/// over already fetched pods and samples.
pub fn resource_replicas(
    current: i32,
    target: Target,
    resource: &str,
    pods: &[PodSample],
    samples: &BTreeMap<String, PodMetric>,
    now: Timestamp,
    cfg: &CalcConfig,
) -> Result<Proposal, CalcError> {
    if pods.is_empty() {
        return Err(CalcError::NoPods);
    }
    let groups = group_pods(pods, samples, resource == "cpu", now, cfg);
    let mut metrics: BTreeMap<String, i64> = samples
        .iter()
        .filter(|(name, _)| !groups.ignored.contains(*name) && !groups.unready.contains(*name))
        .map(|(name, m)| (name.clone(), m.value))
        .collect();
    if metrics.is_empty() {
        return Err(CalcError::NoReadyMetrics);
    }
    let reqs = match target {
        Target::Utilization(_) => requests(pods, resource)?,
        Target::AverageValue(_) => BTreeMap::new(),
    };
    let ratio = |m: &BTreeMap<String, i64>| -> Result<(f64, Option<i32>, i64), CalcError> {
        match target {
            Target::Utilization(t) => {
                utilization_ratio(m, &reqs, t).map(|(r, u, avg)| (r, Some(u), avg))
            }
            Target::AverageValue(t) => {
                let (r, avg) = usage_ratio(m, t);
                Ok((r, None, avg))
            }
        }
    };
    let (usage_ratio, utilization, average) = ratio(&metrics)?;
    let keep = |replicas| Proposal {
        replicas,
        utilization,
        average,
    };
    let within = |r: f64| (1.0 - r).abs() <= cfg.tolerance;

    let scale_up_with_unready = !groups.unready.is_empty() && usage_ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if within(usage_ratio) {
            return Ok(keep(current));
        }
        return Ok(keep(ceil(usage_ratio * groups.ready as f64)));
    }

    if !groups.missing.is_empty() {
        for pod in &groups.missing {
            let assumed = if usage_ratio < 1.0 {
                // On a scale-down a missing pod counts as using exactly its target.
                match target {
                    Target::Utilization(_) => reqs.get(pod).copied().unwrap_or(0),
                    Target::AverageValue(t) => t,
                }
            } else {
                0
            };
            metrics.insert(pod.clone(), assumed);
        }
    }
    if scale_up_with_unready {
        for pod in &groups.unready {
            metrics.insert(pod.clone(), 0);
        }
    }
    let (new_ratio, _, _) = ratio(&metrics)?;
    if within(new_ratio)
        || (usage_ratio < 1.0 && new_ratio > 1.0)
        || (usage_ratio > 1.0 && new_ratio < 1.0)
    {
        // Too small a change, or the rebalanced samples reverse the direction.
        return Ok(keep(current));
    }
    let replicas = ceil(new_ratio * metrics.len() as f64);
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(keep(current));
    }
    Ok(keep(replicas))
}

fn ceil(v: f64) -> i32 {
    // Saturating float-to-int cast: replica counts stay far below i32::MAX.
    v.ceil() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T00:10:00Z".parse().unwrap()
    }

    /// A running pod, ready for a long time, requesting `request` milli-units.
    fn pod(name: &str, request: i64) -> PodSample {
        PodSample {
            name: name.into(),
            phase: Phase::Running,
            deleting: false,
            readiness: Some(Readiness {
                ready: true,
                not_ready: false,
                last_transition: now() - SignedDuration::from_secs(500),
            }),
            start_time: Some(now() - SignedDuration::from_secs(600)),
            request: Ok(request),
        }
    }

    fn sample(value: i64) -> PodMetric {
        PodMetric {
            value,
            timestamp: now(),
            window: SignedDuration::from_secs(10),
        }
    }

    fn calc(
        current: i32,
        target: Target,
        pods: &[PodSample],
        usage: &[(&str, i64)],
    ) -> Result<Proposal, CalcError> {
        let samples = usage
            .iter()
            .map(|(n, v)| (n.to_string(), sample(*v)))
            .collect();
        resource_replicas(
            current,
            target,
            "cpu",
            pods,
            &samples,
            now(),
            &CalcConfig::default(),
        )
    }

    /// (replicas, request per pod, usage per pod, target %, desired, utilization %)
    type Row = (usize, i64, &'static [i64], i32, i32, i32);

    #[test]
    fn utilization_table() {
        let table: &[Row] = &[
            (1, 100, &[80], 50, 2, 80),
            (3, 100, &[90, 90, 90], 50, 6, 90),
            (3, 100, &[10, 10, 10], 50, 1, 10),
            (2, 200, &[100, 100], 50, 2, 50),
            // within the 0.1 tolerance: 54% of 50% is a 1.08 ratio
            (4, 100, &[54, 54, 54, 54], 50, 4, 54),
            (4, 100, &[45, 46, 45, 46], 50, 4, 45),
            // just outside: 56% / 50% = 1.12
            (4, 100, &[56, 56, 56, 56], 50, 5, 56),
            (5, 500, &[0, 0, 0, 0, 0], 50, 0, 0),
            (2, 100, &[300, 100], 80, 5, 200),
        ];
        for (n, req, usage, target, want, util) in table {
            let pods: Vec<_> = (0..*n).map(|i| pod(&format!("p{i}"), *req)).collect();
            let names: Vec<String> = (0..*n).map(|i| format!("p{i}")).collect();
            let samples: Vec<(&str, i64)> = names
                .iter()
                .map(String::as_str)
                .zip(usage.iter().copied())
                .collect();
            let got = calc(*n as i32, Target::Utilization(*target), &pods, &samples).unwrap();
            assert_eq!(
                got.replicas, *want,
                "{n} pods at {usage:?} of {req}m, target {target}%"
            );
            assert_eq!(got.utilization, Some(*util));
        }
    }

    #[test]
    fn average_value_targets() {
        let pods = [pod("a", 0), pod("b", 0)];
        // 300m and 500m average 400m against a 100m target: 8 replicas.
        let got = calc(
            2,
            Target::AverageValue(100),
            &pods,
            &[("a", 300), ("b", 500)],
        )
        .unwrap();
        assert_eq!(got.replicas, 8);
        assert_eq!(got.average, 400);
        assert_eq!(got.utilization, None);
        // Requests are not needed for AverageValue.
        let got = calc(
            2,
            Target::AverageValue(400),
            &pods,
            &[("a", 420), ("b", 400)],
        )
        .unwrap();
        assert_eq!(got.replicas, 2);
    }

    #[test]
    fn missing_samples_count_as_target_on_scale_down_and_zero_on_scale_up() {
        let pods = [pod("a", 100), pod("b", 100), pod("c", 100)];
        // Scale-down: a and b at 10%, c missing counts as 100%: (10+10+100)/3 = 40% of 50%
        // is 0.8 -> ceil(0.8 * 3) = 3 (upstream keeps the count when the direction holds).
        let got = calc(3, Target::Utilization(50), &pods, &[("a", 10), ("b", 10)]).unwrap();
        assert_eq!(got.replicas, 3);
        // Scale-up: a and b at 150%, c missing counts as 0: 100% of 50% -> 6.
        let got = calc(3, Target::Utilization(50), &pods, &[("a", 150), ("b", 150)]).unwrap();
        assert_eq!(got.replicas, 6);
        // The first ratio is over the pods with samples: 150%.
        assert_eq!(got.utilization, Some(150));
    }

    #[test]
    fn unready_pods_count_as_zero_only_on_scale_up() {
        let mut pending = pod("p", 100);
        pending.phase = Phase::Pending;
        let pods = [pod("a", 100), pod("b", 100), pending];
        // a, b at 100% of a 50% target; the pending pod counts as 0: 66% -> ceil(1.33*3)=4.
        let got = calc(3, Target::Utilization(50), &pods, &[("a", 100), ("b", 100)]).unwrap();
        assert_eq!(got.replicas, 4);
        // Scale-down ignores unready pods: 20% of 50% over 2 ready pods -> 1.
        let got = calc(3, Target::Utilization(50), &pods, &[("a", 20), ("b", 20)]).unwrap();
        assert_eq!(got.replicas, 1);
    }

    #[test]
    fn cpu_samples_of_initializing_pods_are_unready() {
        let mut fresh = pod("fresh", 100);
        fresh.start_time = Some(now() - SignedDuration::from_secs(60));
        fresh.readiness = Some(Readiness {
            ready: true,
            not_ready: false,
            // became ready 5 s ago: no whole 10 s window since
            last_transition: now() - SignedDuration::from_secs(5),
        });
        let samples: BTreeMap<_, _> = [("fresh".to_string(), sample(500))].into();
        let g = group_pods(
            &[fresh.clone()],
            &samples,
            true,
            now(),
            &CalcConfig::default(),
        );
        assert!(g.unready.contains("fresh"));
        // Memory samples are always trusted.
        let g = group_pods(
            &[fresh.clone()],
            &samples,
            false,
            now(),
            &CalcConfig::default(),
        );
        assert_eq!(g.ready, 1);
        // After a whole window it counts.
        fresh.readiness.as_mut().unwrap().last_transition = now() - SignedDuration::from_secs(11);
        let g = group_pods(&[fresh], &samples, true, now(), &CalcConfig::default());
        assert_eq!(g.ready, 1);
    }

    #[test]
    fn deleted_and_failed_pods_are_ignored() {
        let mut gone = pod("gone", 100);
        gone.deleting = true;
        let mut failed = pod("failed", 100);
        failed.phase = Phase::Failed;
        let pods = [pod("a", 100), gone, failed];
        let got = calc(
            3,
            Target::Utilization(50),
            &pods,
            &[("a", 100), ("gone", 1000), ("failed", 1000)],
        )
        .unwrap();
        assert_eq!(got.replicas, 2);
        assert_eq!(got.utilization, Some(100));
    }

    #[test]
    fn errors_as_upstream() {
        assert_eq!(
            calc(1, Target::Utilization(50), &[], &[]).unwrap_err(),
            CalcError::NoPods
        );
        let mut pending = pod("p", 100);
        pending.phase = Phase::Pending;
        let err = calc(1, Target::Utilization(50), &[pending], &[("p", 10)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "did not receive metrics for targeted pods (pods might be unready)"
        );
        let mut bare = pod("bare", 0);
        bare.request = Err("main".into());
        let err = calc(1, Target::Utilization(50), &[bare], &[("bare", 10)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing request for cpu in container main of Pod bare"
        );
    }
}
