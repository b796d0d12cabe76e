//! Rolling-update arithmetic, as pure functions of replica counts (upstream
//! `deployment/util` and `rolling.go`).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// What the rollout math needs of one ReplicaSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsCounts {
    pub name: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
}

/// An int-or-percent scaled against `total` (upstream `GetScaledValueFromIntOrPercent`).
pub fn scaled(v: Option<&IntOrString>, total: i32, round_up: bool, default: &str) -> i32 {
    let s = match v {
        Some(IntOrString::Int(i)) => return *i,
        Some(IntOrString::String(s)) => s.as_str(),
        None => default,
    };
    let Some(pct) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
        return s.parse().unwrap_or(0);
    };
    let prod = pct * i64::from(total);
    let v = if round_up {
        (prod + 99) / 100
    } else {
        prod / 100
    };
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// `(maxSurge, maxUnavailable)` resolved against `desired` (upstream `ResolveFenceposts`):
/// surge rounds up, unavailable down, and both zero means one unavailable.
pub fn fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let surge = scaled(max_surge, desired, true, "25%");
    let mut unavailable = scaled(max_unavailable, desired, false, "25%");
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// Upstream `MaxUnavailable`: the resolved value, never more than the desired count.
pub fn max_unavailable(surge_unavail: (i32, i32), desired: i32) -> i32 {
    if desired == 0 {
        return 0;
    }
    surge_unavail.1.min(desired)
}

/// The new ReplicaSet's size for a rolling update (upstream `NewRSNewReplicas`).
pub fn new_rs_replicas(desired: i32, surge: i32, all: &[RsCounts], new: &RsCounts) -> i32 {
    let current: i32 = all.iter().map(|r| r.replicas).sum();
    let max_total = desired + surge;
    if current >= max_total {
        return new.replicas;
    }
    let up = (max_total - current).min(desired - new.replicas);
    new.replicas + up.max(0)
}

/// How old ReplicaSets are scaled down in a rolling update (upstream
/// `reconcileOldReplicaSets`): first unhealthy replicas, then healthy ones down to the
/// availability floor. `old` is oldest first. Returns `(name, new size)` for each change.
pub fn scale_down_old(
    desired: i32,
    max_unavailable: i32,
    old: &[RsCounts],
    new: Option<&RsCounts>,
) -> Vec<(String, i32)> {
    let old_count: i32 = old.iter().map(|r| r.replicas).sum();
    if old_count == 0 {
        return Vec::new();
    }
    let all_count = old_count + new.map_or(0, |n| n.replicas);
    let min_available = desired - max_unavailable;
    let new_unavailable = new.map_or(0, |n| n.replicas - n.available);
    let max_scaled_down = all_count - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut sizes: Vec<RsCounts> = old.to_vec();
    let mut changes = Vec::new();
    // 1. unhealthy replicas of old sets go first
    let mut cleaned = 0;
    for rs in sizes.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        if rs.replicas == 0 {
            continue;
        }
        let unhealthy = rs.replicas - rs.available;
        if unhealthy <= 0 {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(unhealthy);
        rs.replicas -= down;
        cleaned += down;
        changes.push((rs.name.clone(), rs.replicas));
    }
    // 2. then available ones, keeping minAvailable
    let available: i32 = sizes
        .iter()
        .map(|r| r.available.min(r.replicas))
        .sum::<i32>()
        + new.map_or(0, |n| n.available);
    if available > min_available {
        let total = available - min_available;
        let mut scaled = 0;
        for rs in sizes.iter_mut() {
            if scaled >= total {
                break;
            }
            if rs.replicas == 0 {
                continue;
            }
            let down = rs.replicas.min(total - scaled);
            rs.replicas -= down;
            scaled += down;
            changes.retain(|(n, _)| n != &rs.name);
            changes.push((rs.name.clone(), rs.replicas));
        }
    }
    changes
}

/// Spreads `to_add` (may be negative) over ReplicaSets proportionally to their size
/// (upstream's proportional scaling, without the max-replicas annotation bookkeeping);
/// rounding leftovers go to the first set. `sets` are ordered newest first for scale-up,
/// largest first for scale-down, as upstream sorts them.
pub fn proportional(sets: &[RsCounts], to_add: i32) -> Vec<i32> {
    let total: i32 = sets.iter().map(|r| r.replicas).sum();
    let mut out: Vec<i32> = sets.iter().map(|r| r.replicas).collect();
    if sets.is_empty() || to_add == 0 {
        return out;
    }
    let mut added = 0;
    if total > 0 {
        for (i, rs) in sets.iter().enumerate() {
            let share = (i64::from(rs.replicas) * i64::from(to_add) / i64::from(total)) as i32;
            let share = if to_add > 0 {
                share.min(to_add - added)
            } else {
                share.max(to_add - added)
            };
            out[i] += share;
            added += share;
        }
    }
    out[0] = (out[0] + to_add - added).max(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(name: &str, replicas: i32, available: i32) -> RsCounts {
        RsCounts {
            name: name.into(),
            replicas,
            available,
        }
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(fenceposts(None, None, 10), (3, 2));
        assert_eq!(fenceposts(None, None, 3), (1, 0));
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(0)), Some(&pct("0%")), 5),
            (0, 1)
        );
        assert_eq!(fenceposts(Some(&pct("50%")), Some(&pct("50%")), 5), (3, 2));
        assert_eq!(max_unavailable((0, 7), 3), 3);
    }

    #[test]
    fn new_rs_grows_by_surge_only() {
        // 3 desired, surge 1: old 3, new 0 -> new 1
        let old = rs("old", 3, 3);
        let new = rs("new", 0, 0);
        assert_eq!(new_rs_replicas(3, 1, &[old.clone(), new.clone()], &new), 1);
        // at max total nothing more
        let new = rs("new", 1, 0);
        assert_eq!(new_rs_replicas(3, 1, &[old, new.clone()], &new), 1);
    }

    #[test]
    fn old_sets_scale_down_only_above_min_available() {
        // desired 3, maxUnavailable 0: new has 1 unavailable replica -> no scale-down
        let old = [rs("old", 3, 3)];
        assert!(scale_down_old(3, 0, &old, Some(&rs("new", 1, 0))).is_empty());
        // new replica became available -> one old replica can go
        assert_eq!(
            scale_down_old(3, 0, &old, Some(&rs("new", 1, 1))),
            vec![("old".to_string(), 2)]
        );
        // unhealthy old replicas go first even without new availability
        let old = [rs("old", 3, 1)];
        assert_eq!(
            scale_down_old(3, 1, &old, Some(&rs("new", 1, 0))),
            vec![("old".to_string(), 2)]
        );
    }

    #[test]
    fn proportional_scaling_keeps_the_total() {
        let sets = [rs("a", 6, 6), rs("b", 4, 4)];
        let out = proportional(&sets, 5);
        assert_eq!(out.iter().sum::<i32>(), 15);
        assert_eq!(out, vec![9, 6]);
        let out = proportional(&sets, -5);
        assert_eq!(out.iter().sum::<i32>(), 5);
    }
}
