//! Pod topology spread (upstream's `PodTopologySpread` plugin): `DoNotSchedule` constraints
//! filter, `ScheduleAnyway` constraints (or the system defaults: hostname skew 3, zone skew 5
//! over pods of the same controller) score.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use bramble_informer::pod::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::matching::{label_selector_matches, labels_of, pod_matches_node_selector_and_affinity};
use crate::node_info::{controller_uid, NodeInfo};
use crate::snapshot::Snapshot;

/// Upstream's reason when the skew would exceed `maxSkew`.
pub const ERR_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
/// Upstream's reason when the node lacks a constraint's topology key.
pub const ERR_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// Which pods a constraint counts.
#[derive(Debug, Clone)]
enum Counted {
    /// Pods in the namespace matching the selector.
    Selector(LabelSelector),
    /// Pods in the namespace with the same controller owner (system default spreading).
    Owner(String),
}

/// One constraint with its counts per topology value.
#[derive(Debug, Clone)]
struct Constraint {
    key: String,
    max_skew: i64,
    counts: HashMap<String, i64>,
    min: i64,
    self_match: i64,
}

/// Counts computed once per incoming pod.
#[derive(Debug, Default)]
pub struct SpreadState {
    hard: Vec<Constraint>,
    soft: Vec<Constraint>,
}

fn counted_matches(c: &Counted, ns: &str, pod: &Pod) -> bool {
    if pod.metadata.namespace.as_deref().unwrap_or("default") != ns
        || pod.metadata.deletion_timestamp.is_some()
    {
        return false;
    }
    match c {
        Counted::Selector(sel) => label_selector_matches(sel, labels_of(&pod.metadata.labels)),
        Counted::Owner(uid) => controller_uid(pod) == Some(uid.as_str()),
    }
}

/// The selector with `matchLabelKeys` folded in as `In` requirements on the pod's values.
fn effective_selector(c: &TopologySpreadConstraint, pod: &Pod) -> LabelSelector {
    let mut sel = c.label_selector.clone().unwrap_or(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![Default::default()]),
    });
    for key in c.match_label_keys.iter().flatten() {
        if let Some(v) = labels_of(&pod.metadata.labels).get(key) {
            sel.match_labels
                .get_or_insert_with(Default::default)
                .insert(key.clone(), v.clone());
        }
    }
    sel
}

fn build(
    pod: &Pod,
    snap: &Snapshot,
    specs: Vec<(String, i64, Counted, i64)>,
    honor_affinity: bool,
) -> Vec<Constraint> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let keys: Vec<&str> = specs.iter().map(|s| s.0.as_str()).collect();
    let eligible: Vec<&NodeInfo> = snap
        .nodes
        .iter()
        .filter(|n| keys.iter().all(|k| n.label(k).is_some()))
        .filter(|n| !honor_affinity || pod_matches_node_selector_and_affinity(pod, &n.node))
        .collect();
    specs
        .into_iter()
        .map(|(key, max_skew, counted, min_domains)| {
            let mut counts: HashMap<String, i64> = HashMap::new();
            for n in &eligible {
                let v = n.label(&key).unwrap_or_default().to_string();
                let c = match &counted {
                    // Owner uids are unique, so the per-node tally is exact.
                    Counted::Owner(uid) => n.owners.get(uid).copied().unwrap_or(0),
                    Counted::Selector(_) => n
                        .pods
                        .iter()
                        .filter(|p| counted_matches(&counted, ns, &p.pod))
                        .count() as i64,
                };
                *counts.entry(v).or_default() += c;
            }
            let domains: HashSet<&String> = counts.keys().collect();
            let mut min = counts.values().copied().min().unwrap_or(0);
            if (domains.len() as i64) < min_domains {
                min = 0;
            }
            let self_match = counted_matches(&counted, ns, pod) as i64;
            Constraint {
                key,
                max_skew,
                counts,
                min,
                self_match,
            }
        })
        .collect()
}

impl SpreadState {
    /// Computes the counts for the pod's constraints (system defaults when it declares none).
    pub fn compute(pod: &Pod, snap: &Snapshot) -> SpreadState {
        let declared = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or(&[]);
        let mut hard = Vec::new();
        let mut soft = Vec::new();
        for c in declared {
            let spec = (
                c.topology_key.clone(),
                c.max_skew as i64,
                Counted::Selector(effective_selector(c, pod)),
                c.min_domains.unwrap_or(1) as i64,
            );
            if c.when_unsatisfiable == "DoNotSchedule" {
                hard.push(spec);
            } else {
                soft.push(spec);
            }
        }
        if declared.is_empty() {
            if let Some(uid) = controller_uid(pod) {
                soft.push((
                    "kubernetes.io/hostname".into(),
                    3,
                    Counted::Owner(uid.to_string()),
                    1,
                ));
                soft.push((
                    "topology.kubernetes.io/zone".into(),
                    5,
                    Counted::Owner(uid.to_string()),
                    1,
                ));
            }
        }
        SpreadState {
            hard: if hard.is_empty() {
                Vec::new()
            } else {
                build(pod, snap, hard, true)
            },
            soft: soft
                .into_iter()
                .map(|s| build(pod, snap, vec![s], true).remove(0))
                .collect(),
        }
    }

    /// The filter for `DoNotSchedule` constraints: `Err((reason, unresolvable))`.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), (&'static str, bool)> {
        for c in &self.hard {
            let Some(v) = node.label(&c.key) else {
                return Err((ERR_SPREAD_LABEL, true));
            };
            let count = c.counts.get(v).copied().unwrap_or(0);
            if count + c.self_match - c.min > c.max_skew {
                return Err((ERR_SPREAD, false));
            }
        }
        Ok(())
    }

    /// Raw score for `ScheduleAnyway` constraints (lower is better; `None` when the node
    /// lacks a topology key, or when there is nothing to score).
    pub fn raw_score(&self, node: &NodeInfo) -> Option<f64> {
        if self.soft.is_empty() {
            return None;
        }
        let mut total = 0.0;
        let mut any = false;
        for c in &self.soft {
            // A missing zone label does not exclude the node from hostname spreading.
            let Some(v) = node.label(&c.key) else {
                continue;
            };
            any = true;
            let weight = ((c.counts.len() + 2) as f64).ln();
            total +=
                c.counts.get(v).copied().unwrap_or(0) as f64 * weight + (c.max_skew - 1) as f64;
        }
        any.then_some(total)
    }

    /// True when there are `ScheduleAnyway` constraints to score.
    pub fn scores(&self) -> bool {
        !self.soft.is_empty()
    }
}
