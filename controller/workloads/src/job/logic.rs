//! Pure Job decisions: how many pods to run, completion indexes, pod failure policy,
//! re-creation back-off (upstream `job_controller.go`, `indexed_job_utils.go`,
//! `pod_failure_policy.go`, `backoff_utils.go`).

use std::collections::BTreeSet;

use bramble_informer::pod::Pod;
use jiff::SignedDuration;
use k8s_openapi::api::batch::v1::PodFailurePolicy;

/// Upstream `DefaultJobPodFailureBackOff` and its cap.
pub const BACKOFF_BASE: SignedDuration = SignedDuration::from_secs(10);
pub const BACKOFF_MAX: SignedDuration = SignedDuration::from_secs(360);

/// How many pods should be active (non-indexed; upstream `manageJob`).
pub fn want_active(completions: Option<i32>, parallelism: i32, succeeded: i32, active: i32) -> i32 {
    match completions {
        None if succeeded > 0 => active,
        None => parallelism,
        Some(c) => (c - succeeded).clamp(0, parallelism),
    }
}

/// Parses `completedIndexes` ("1,3-5,7").
pub fn parse_indexes(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
            for i in a..=b.min(completions - 1) {
                out.insert(i);
            }
        }
    }
    out
}

/// Formats indexes as `completedIndexes` does (ranges of 3+ as `a-b`, pairs as `a,b`).
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let v: Vec<i32> = set.iter().copied().collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        if j == i {
            parts.push(v[i].to_string());
        } else {
            parts.push(format!("{}-{}", v[i], v[j]));
        }
        i = j + 1;
    }
    parts.join(",")
}

/// The indexes (lowest first) that need a new pod: neither completed nor active.
pub fn missing_indexes(
    completions: i32,
    completed: &BTreeSet<i32>,
    active: &BTreeSet<i32>,
    max: usize,
) -> Vec<i32> {
    (0..completions)
        .filter(|i| !completed.contains(i) && !active.contains(i))
        .take(max)
        .collect()
}

/// What a pod failure policy says about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// `FailJob`: the message for the Failed condition.
    FailJob(String),
    /// `Ignore`: the failure is not counted against backoffLimit.
    Ignore,
    /// `Count` or no rule matched.
    Count,
}

/// Evaluates `policy` against a failed pod (upstream `matchPodFailurePolicy`).
pub fn match_failure_policy(policy: &PodFailurePolicy, pod: &Pod) -> PolicyOutcome {
    let status = pod.status.clone().unwrap_or_default();
    let pod_name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    );
    for (i, rule) in policy.rules.iter().enumerate() {
        let mut matched: Option<String> = None;
        if let Some(ec) = &rule.on_exit_codes {
            let all = status
                .init_container_statuses
                .iter()
                .flatten()
                .chain(status.container_statuses.iter().flatten());
            for cs in all {
                if ec.container_name.as_ref().is_some_and(|n| n != &cs.name) {
                    continue;
                }
                let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
                    continue;
                };
                if t.exit_code == 0 {
                    continue;
                }
                let hit = ec.values.contains(&t.exit_code);
                let ok = match ec.operator.as_str() {
                    "In" => hit,
                    "NotIn" => !hit,
                    _ => false,
                };
                if ok {
                    matched = Some(format!(
                        "Container {} for pod {pod_name} failed with exit code {} matching {} rule at index {i}",
                        cs.name, t.exit_code, rule.action
                    ));
                    break;
                }
            }
        }
        for pat in rule.on_pod_conditions.iter().flatten() {
            let want = pat.status.as_str();
            if status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == pat.type_ && c.status == want)
            {
                matched = Some(format!(
                    "Pod {pod_name} has condition {} matching {} rule at index {i}",
                    pat.type_, rule.action
                ));
                break;
            }
        }
        if let Some(msg) = matched {
            return match rule.action.as_str() {
                "FailJob" => PolicyOutcome::FailJob(msg),
                "Ignore" => PolicyOutcome::Ignore,
                _ => PolicyOutcome::Count,
            };
        }
    }
    PolicyOutcome::Count
}

/// Delay before replacing failed pods after `failures` consecutive failures.
pub fn backoff(failures: i32) -> SignedDuration {
    if failures <= 0 {
        return SignedDuration::ZERO;
    }
    let mut d = BACKOFF_BASE;
    for _ in 1..failures {
        d = d.checked_mul(2).unwrap_or(BACKOFF_MAX);
        if d >= BACKOFF_MAX {
            return BACKOFF_MAX;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_informer::pod::{ContainerStatus, PodStatus};
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
    };
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated};

    #[test]
    fn active_pods_follow_completions_and_parallelism() {
        assert_eq!(want_active(Some(5), 2, 0, 0), 2);
        assert_eq!(want_active(Some(5), 2, 4, 1), 1);
        assert_eq!(want_active(Some(5), 2, 5, 0), 0);
        assert_eq!(want_active(None, 3, 0, 0), 3);
        assert_eq!(want_active(None, 3, 1, 2), 2);
    }

    #[test]
    fn completed_indexes_round_trip() {
        let s = parse_indexes("0,2-4,7", 8);
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec![0, 2, 3, 4, 7]);
        assert_eq!(format_indexes(&s), "0,2-4,7");
        let active: BTreeSet<i32> = [1].into();
        assert_eq!(missing_indexes(8, &s, &active, 10), vec![5, 6]);
    }

    #[test]
    fn backoff_doubles_up_to_six_minutes() {
        assert_eq!(backoff(1), SignedDuration::from_secs(10));
        assert_eq!(backoff(3), SignedDuration::from_secs(40));
        assert_eq!(backoff(10), BACKOFF_MAX);
    }

    #[test]
    fn failure_policy_matches_exit_codes() {
        let policy = PodFailurePolicy {
            rules: vec![
                PodFailurePolicyRule {
                    action: "Ignore".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: None,
                        operator: "In".into(),
                        values: vec![137],
                    }),
                    on_pod_conditions: None,
                },
                PodFailurePolicyRule {
                    action: "FailJob".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some("main".into()),
                        operator: "In".into(),
                        values: vec![42],
                    }),
                    on_pod_conditions: None,
                },
            ],
        };
        let pod = |code: i32| Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "main".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: code,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        };
        assert_eq!(
            match_failure_policy(&policy, &pod(137)),
            PolicyOutcome::Ignore
        );
        assert_eq!(
            match_failure_policy(&policy, &pod(42)),
            PolicyOutcome::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into()
            )
        );
        assert_eq!(match_failure_policy(&policy, &pod(1)), PolicyOutcome::Count);
    }
}
