//! From a metric proposal to the replica count to set (upstream `normalizeDesiredReplicas`
//! and `normalizeDesiredReplicasWithBehaviors`): the recommendation history of the
//! stabilization windows, the scale events the `behavior` policies limit, and the clamp to
//! minReplicas/maxReplicas, each with the condition reason and message upstream reports.

use jiff::{SignedDuration, Timestamp};

/// Scale-up limit without `behavior`: at most double, or 4, whichever is more.
const SCALE_UP_LIMIT_FACTOR: f64 = 2.0;
const SCALE_UP_LIMIT_MINIMUM: f64 = 4.0;

/// `selectPolicy` of a scaling rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// The policy allowing the biggest change (default).
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// `type` of a scaling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// An absolute number of pods per period.
    Pods,
    /// A percentage of the replicas at the period's start.
    Percent,
}

/// One scaling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Pods or Percent.
    pub kind: PolicyKind,
    /// The amount.
    pub value: i32,
    /// The period it applies over.
    pub period_seconds: i32,
}

/// A scale-up or scale-down rule with its defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Stabilization window.
    pub stabilization_window_seconds: i32,
    /// Which policy wins.
    pub select: Select,
    /// The policies.
    pub policies: Vec<Policy>,
}

impl Rules {
    /// Upstream's default scale-up rule: no window, 4 pods or 100% per 15 s, the larger.
    pub fn default_up() -> Rules {
        Rules {
            stabilization_window_seconds: 0,
            select: Select::Max,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period_seconds: 15,
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_seconds: 15,
                },
            ],
        }
    }

    /// Upstream's default scale-down rule: the controller's window, 100% per 15 s.
    pub fn default_down(window_seconds: i32) -> Rules {
        Rules {
            stabilization_window_seconds: window_seconds,
            select: Select::Max,
            policies: vec![Policy {
                kind: PolicyKind::Percent,
                value: 100,
                period_seconds: 15,
            }],
        }
    }

    fn longest_period(&self) -> i32 {
        self.policies
            .iter()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(0)
    }
}

/// `spec.behavior` with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behavior {
    /// Scale-up rule.
    pub up: Rules,
    /// Scale-down rule.
    pub down: Rules,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recommendation {
    replicas: i32,
    at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScaleEvent {
    change: i32,
    at: Timestamp,
    outdated: bool,
}

/// A condition to set: (status, reason, message).
pub type Verdict = (bool, &'static str, &'static str);

/// The outcome of a normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalized {
    /// Replicas to set.
    pub replicas: i32,
    /// AbleToScale (always True here: ScaleUpStabilized, ScaleDownStabilized or
    /// ReadyForNewScale).
    pub able_to_scale: Verdict,
    /// ScalingLimited.
    pub scaling_limited: Verdict,
}

/// What one autoscaler remembers between syncs (upstream keeps it in memory too; after a
/// restart it starts again from the current scale).
#[derive(Debug, Clone, Default)]
pub struct History {
    recommendations: Vec<Recommendation>,
    up_events: Vec<ScaleEvent>,
    down_events: Vec<ScaleEvent>,
}

impl History {
    /// Upstream `recordInitialRecommendation`: the first sync remembers the current scale.
    pub fn record_initial(&mut self, current: i32, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommendation {
                replicas: current,
                at: now,
            });
        }
    }

    fn record(&mut self, replicas: i32, now: Timestamp, old: Option<usize>) {
        let rec = Recommendation { replicas, at: now };
        match old {
            Some(i) => self.recommendations[i] = rec,
            None => self.recommendations.push(rec),
        }
    }

    /// Upstream `normalizeDesiredReplicas` (no `behavior`): the highest recommendation of
    /// the downscale window, then at most max(2 x current, 4) and within min/max.
    pub fn normalize(
        &mut self,
        current: i32,
        desired: i32,
        min: i32,
        max: i32,
        downscale_window: SignedDuration,
        now: Timestamp,
    ) -> Normalized {
        let cutoff = now - downscale_window;
        let mut stabilized = desired;
        let mut old = None;
        for (i, rec) in self.recommendations.iter().enumerate() {
            if rec.at < cutoff {
                old = Some(i);
            } else if rec.replicas > stabilized {
                stabilized = rec.replicas;
            }
        }
        self.record(desired, now, old);
        let able_to_scale = if stabilized != desired {
            (
                true,
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation",
            )
        } else {
            (
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            )
        };
        let (replicas, reason, message) = clamp_with_rules(current, stabilized, min, max);
        Normalized {
            replicas,
            able_to_scale,
            scaling_limited: (replicas != stabilized, reason, message),
        }
    }

    /// Upstream `normalizeDesiredReplicasWithBehaviors`: both stabilization windows, then
    /// the rate the policies allow, then min/max.
    pub fn normalize_with_behavior(
        &mut self,
        behavior: &Behavior,
        current: i32,
        desired: i32,
        min: i32,
        max: i32,
        now: Timestamp,
    ) -> Normalized {
        let stabilized = self.stabilize(behavior, current, desired, now);
        let able_to_scale = if stabilized != desired {
            if desired >= current {
                (
                    true,
                    "ScaleUpStabilized",
                    "recent recommendations were lower than current one, applying the lowest recent recommendation",
                )
            } else {
                (
                    true,
                    "ScaleDownStabilized",
                    "recent recommendations were higher than current one, applying the highest recent recommendation",
                )
            }
        } else {
            (
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            )
        };
        let (replicas, reason, message) =
            self.limit_rate(behavior, current, stabilized, min, max, now);
        Normalized {
            replicas,
            able_to_scale,
            scaling_limited: (replicas != stabilized, reason, message),
        }
    }

    /// Upstream `stabilizeRecommendationWithBehaviors`.
    fn stabilize(&mut self, b: &Behavior, current: i32, desired: i32, now: Timestamp) -> i32 {
        let up_cutoff = now - SignedDuration::from_secs(b.up.stabilization_window_seconds.into());
        let down_cutoff =
            now - SignedDuration::from_secs(b.down.stabilization_window_seconds.into());
        let (mut up, mut down) = (desired, desired);
        let mut old = None;
        for (i, rec) in self.recommendations.iter().enumerate() {
            if rec.at > up_cutoff {
                up = up.min(rec.replicas);
            }
            if rec.at > down_cutoff {
                down = down.max(rec.replicas);
            }
            if rec.at < up_cutoff && rec.at < down_cutoff {
                old = Some(i);
            }
        }
        self.record(desired, now, old);
        current.max(up).min(down)
    }

    /// Upstream `convertDesiredReplicasWithBehaviorRate`.
    fn limit_rate(
        &self,
        b: &Behavior,
        current: i32,
        desired: i32,
        min: i32,
        max: i32,
        now: Timestamp,
    ) -> (i32, &'static str, &'static str) {
        if desired > current {
            let limit = scale_limit(
                &b.up,
                current,
                &self.up_events,
                &self.down_events,
                now,
                true,
            )
            .max(current);
            let (allowed, reason, message) = upper_bound(max, limit);
            if desired > allowed {
                return (allowed, reason, message);
            }
        } else if desired < current {
            let limit = scale_limit(
                &b.down,
                current,
                &self.up_events,
                &self.down_events,
                now,
                false,
            )
            .min(current);
            let (allowed, reason, message) = if min < limit {
                (
                    limit,
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate",
                )
            } else {
                (
                    min,
                    "TooFewReplicas",
                    "the desired replica count is less than the minimum replica count",
                )
            };
            if desired < allowed {
                return (allowed, reason, message);
            }
        }
        (
            desired,
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        )
    }

    /// Upstream `storeScaleEvent`: only kept when the autoscaler has a `behavior`; an event
    /// older than the direction's longest policy period is reused.
    pub fn store_scale_event(
        &mut self,
        behavior: Option<&Behavior>,
        previous: i32,
        new: i32,
        now: Timestamp,
    ) {
        let Some(b) = behavior else {
            return;
        };
        let (events, rules, change) = if new > previous {
            (&mut self.up_events, &b.up, new - previous)
        } else {
            (&mut self.down_events, &b.down, previous - new)
        };
        let cutoff = now - SignedDuration::from_secs(rules.longest_period().into());
        for e in events.iter_mut() {
            if e.at < cutoff {
                e.outdated = true;
            }
        }
        let event = ScaleEvent {
            change,
            at: now,
            outdated: false,
        };
        match events.iter().rposition(|e| e.outdated) {
            Some(i) => events[i] = event,
            None => events.push(event),
        }
    }
}

/// Replicas added (or removed) by the events of the last `period_seconds`.
fn change_in_period(period_seconds: i32, events: &[ScaleEvent], now: Timestamp) -> i32 {
    let cutoff = now - SignedDuration::from_secs(period_seconds.into());
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| e.change)
        .sum()
}

/// Upstream `calculateScaleUpLimitWithScalingRules` (`up`) and
/// `calculateScaleDownLimitWithBehaviors` (`!up`).
fn scale_limit(
    rules: &Rules,
    current: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    now: Timestamp,
    up: bool,
) -> i32 {
    // For a scale-up the biggest change is the highest limit; for a scale-down the lowest.
    let biggest_change_wins = rules.select == Select::Max;
    let pick_higher = biggest_change_wins == up;
    let mut result = match rules.select {
        Select::Disabled => return current,
        _ if pick_higher => i32::MIN,
        _ => i32::MAX,
    };
    for p in &rules.policies {
        let added = change_in_period(p.period_seconds, up_events, now);
        let removed = change_in_period(p.period_seconds, down_events, now);
        let start = f64::from(current - added + removed);
        let proposed = match (p.kind, up) {
            (PolicyKind::Pods, true) => start as i32 + p.value,
            (PolicyKind::Pods, false) => start as i32 - p.value,
            // Rounded up, or a small percentage would never add a pod.
            (PolicyKind::Percent, true) => {
                (start * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32
            }
            (PolicyKind::Percent, false) => (start * (1.0 - f64::from(p.value) / 100.0)) as i32,
        };
        result = if pick_higher {
            result.max(proposed)
        } else {
            result.min(proposed)
        };
    }
    result
}

/// The highest count allowed by `max` and a scale-up rate `limit`, with the condition
/// reason and message upstream gives when it holds the count back.
fn upper_bound(max: i32, limit: i32) -> (i32, &'static str, &'static str) {
    if max > limit {
        (
            limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    } else {
        (
            max,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    }
}

/// Upstream `convertDesiredReplicasWithRules`.
pub fn clamp_with_rules(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
) -> (i32, &'static str, &'static str) {
    let scale_up_limit =
        (SCALE_UP_LIMIT_FACTOR * f64::from(current)).max(SCALE_UP_LIMIT_MINIMUM) as i32;
    let (maximum, reason, message) = upper_bound(max, scale_up_limit);
    if desired < min {
        return (
            min,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        );
    }
    if desired > maximum {
        return (maximum, reason, message);
    }
    (
        desired,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn secs(s: i64) -> SignedDuration {
        SignedDuration::from_secs(s)
    }

    #[test]
    fn min_max_and_the_default_scale_up_limit() {
        // (current, desired, min, max) -> (replicas, reason)
        let table = [
            ((3, 5, 1, 10), (5, "DesiredWithinRange")),
            ((3, 0, 1, 10), (1, "TooFewReplicas")),
            ((3, 12, 1, 10), (6, "ScaleUpLimit")),
            ((1, 9, 1, 10), (4, "ScaleUpLimit")),
            ((3, 12, 1, 5), (5, "TooManyReplicas")),
            ((2, 2, 2, 2), (2, "DesiredWithinRange")),
        ];
        for ((cur, want, min, max), (got, reason)) in table {
            let (r, why, _) = clamp_with_rules(cur, want, min, max);
            assert_eq!((r, why), (got, reason), "{cur} -> {want} in [{min}, {max}]");
        }
    }

    #[test]
    fn scale_down_waits_for_the_window() {
        let mut h = History::default();
        let window = secs(300);
        h.record_initial(5, t0());
        // Metrics want 2 right away: the recommendation of 5 is within the window.
        let n = h.normalize(5, 2, 1, 10, window, t0() + secs(15));
        assert_eq!(n.replicas, 5);
        assert_eq!(n.able_to_scale.1, "ScaleDownStabilized");
        assert!(!n.scaling_limited.0);
        // Still within 300 s of the first recommendation.
        let n = h.normalize(5, 2, 1, 10, window, t0() + secs(299));
        assert_eq!(n.replicas, 5);
        // Past it, the highest recommendation left is 2.
        let n = h.normalize(5, 2, 1, 10, window, t0() + secs(301));
        assert_eq!(n.replicas, 2);
        assert_eq!(n.able_to_scale.1, "ReadyForNewScale");
        // Scale-up is immediate.
        let n = h.normalize(2, 6, 1, 10, window, t0() + secs(302));
        assert_eq!(n.replicas, 4);
        assert_eq!(
            n.scaling_limited,
            (
                true,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate"
            )
        );
    }

    fn behavior(down_window: i32) -> Behavior {
        Behavior {
            up: Rules::default_up(),
            down: Rules::default_down(down_window),
        }
    }

    #[test]
    fn behavior_stabilization_window_seconds() {
        let b = behavior(60);
        let mut h = History::default();
        h.record_initial(4, t0());
        let n = h.normalize_with_behavior(&b, 4, 1, 1, 10, t0() + secs(30));
        assert_eq!(n.replicas, 4);
        assert_eq!(n.able_to_scale.1, "ScaleDownStabilized");
        let n = h.normalize_with_behavior(&b, 4, 1, 1, 10, t0() + secs(61));
        assert_eq!(n.replicas, 1);
        assert_eq!(n.able_to_scale.1, "ReadyForNewScale");

        // A scale-up window keeps the lowest recent recommendation.
        let mut b = behavior(0);
        b.up.stabilization_window_seconds = 120;
        let mut h = History::default();
        h.record_initial(2, t0());
        let n = h.normalize_with_behavior(&b, 2, 8, 1, 10, t0() + secs(10));
        assert_eq!(n.replicas, 2);
        assert_eq!(n.able_to_scale.1, "ScaleUpStabilized");
        // Past the window 8 is the recommendation; the default policies allow +4 of 2.
        let n = h.normalize_with_behavior(&b, 2, 8, 1, 10, t0() + secs(125));
        assert_eq!((n.replicas, n.scaling_limited.1), (6, "ScaleUpLimit"));
    }

    #[test]
    fn behavior_policies_limit_the_rate() {
        let mut b = behavior(0);
        b.up.policies = vec![Policy {
            kind: PolicyKind::Pods,
            value: 2,
            period_seconds: 60,
        }];
        let mut h = History::default();
        h.record_initial(2, t0());
        let n = h.normalize_with_behavior(&b, 2, 9, 1, 10, t0() + secs(1));
        assert_eq!(n.replicas, 4);
        assert_eq!(n.scaling_limited.1, "ScaleUpLimit");
        h.store_scale_event(Some(&b), 2, 4, t0() + secs(1));
        // 2 pods were added within the last 60 s: no more now.
        let n = h.normalize_with_behavior(&b, 4, 9, 1, 10, t0() + secs(30));
        assert_eq!(n.replicas, 4);
        // After the period another 2.
        let n = h.normalize_with_behavior(&b, 4, 9, 1, 10, t0() + secs(62));
        assert_eq!(n.replicas, 6);

        // Percent scale-down of 50% per 60 s, Min select = smallest change.
        let mut b = behavior(0);
        b.down.policies = vec![
            Policy {
                kind: PolicyKind::Percent,
                value: 50,
                period_seconds: 60,
            },
            Policy {
                kind: PolicyKind::Pods,
                value: 1,
                period_seconds: 60,
            },
        ];
        let mut h = History::default();
        h.record_initial(8, t0());
        let n = h.normalize_with_behavior(&b, 8, 1, 1, 10, t0() + secs(1));
        assert_eq!(n.replicas, 4, "Max select: the 50% policy removes more");
        b.down.select = Select::Min;
        let n = h.normalize_with_behavior(&b, 8, 1, 1, 10, t0() + secs(2));
        assert_eq!(n.replicas, 7, "Min select: one pod");
        b.down.select = Select::Disabled;
        let n = h.normalize_with_behavior(&b, 8, 1, 1, 10, t0() + secs(3));
        assert_eq!(n.replicas, 8);
        // maxReplicas still caps a scale-up.
        let n = h.normalize_with_behavior(&b, 8, 20, 1, 10, t0() + secs(4));
        assert_eq!((n.replicas, n.scaling_limited.1), (10, "TooManyReplicas"));
    }
}
