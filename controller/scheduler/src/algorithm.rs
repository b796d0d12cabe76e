//! One scheduling attempt: filter the nodes (stopping after upstream's adaptive
//! `percentageOfNodesToScore`), score the feasible ones, pick the best (ties at random).

use std::collections::BTreeMap;

use rand::Rng;

use crate::filters::{filter_node, Failure, PreFilter};
use crate::node_info::PodInfo;
use crate::scores::score_nodes;
use crate::snapshot::Snapshot;

/// Upstream's message when there are no nodes at all.
pub const NO_NODES: &str = "no nodes available to schedule pods";

/// Why no node fits: the per-node failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    /// How many nodes were considered.
    pub num_nodes: usize,
    /// Node name -> why it was rejected.
    pub failures: BTreeMap<String, Failure>,
}

impl FitError {
    /// Upstream's `FitError.Error()` histogram: `0/3 nodes are available: 1 Insufficient cpu,
    /// 2 node(s) didn't match Pod's node affinity/selector.`
    pub fn message(&self) -> String {
        if self.num_nodes == 0 {
            return NO_NODES.to_string();
        }
        histogram(
            self.num_nodes,
            self.failures.values().flat_map(|f| f.reasons.iter()),
        )
    }
}

/// `0/N nodes are available: <count reason, ...>.` with the entries sorted as strings.
pub fn histogram<'a>(num_nodes: usize, reasons: impl Iterator<Item = &'a String>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, c)| format!("{c} {r}")).collect();
    parts.sort();
    format!("0/{num_nodes} nodes are available: {}.", parts.join(", "))
}

/// How many feasible nodes to find before scoring: upstream's adaptive percentage
/// (`50 - nodes/125`, at least 5 %) with a floor of 100 nodes.
pub fn num_feasible_nodes_to_find(num_nodes: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if num_nodes < MIN_FEASIBLE {
        return num_nodes;
    }
    let pct = (50i64 - num_nodes as i64 / 125).max(5) as usize;
    (num_nodes * pct / 100).max(MIN_FEASIBLE)
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The chosen node.
    pub node: String,
    /// How many nodes passed the filters (of those examined).
    pub feasible: usize,
}

/// Schedules one pod against a snapshot. `start` rotates where filtering begins, as upstream
/// does between attempts so later nodes are examined too.
pub fn schedule_one(
    pod: &PodInfo,
    snap: &Snapshot,
    start: usize,
    rng: &mut impl Rng,
) -> Result<Placement, FitError> {
    let n = snap.nodes.len();
    if n == 0 {
        return Err(FitError {
            num_nodes: 0,
            failures: BTreeMap::new(),
        });
    }
    let pre = PreFilter::compute(pod, snap);
    let want = num_feasible_nodes_to_find(n);
    let mut feasible = Vec::new();
    let mut failures = BTreeMap::new();
    for k in 0..n {
        let i = (start + k) % n;
        let node = &snap.nodes[i];
        match filter_node(pod, node, snap, &pre) {
            Ok(()) => {
                feasible.push(i);
                if feasible.len() >= want {
                    break;
                }
            }
            Err(f) => {
                failures.insert(node.name().to_string(), f);
            }
        }
    }
    if feasible.is_empty() {
        return Err(FitError {
            num_nodes: n,
            failures,
        });
    }
    let scores = if feasible.len() == 1 {
        vec![0]
    } else {
        score_nodes(pod, &feasible, snap, &pre)
    };
    // Reservoir sampling among the best, as upstream's selectHost.
    let mut best = 0usize;
    let mut ties = 1u32;
    for k in 1..feasible.len() {
        if scores[k] > scores[best] {
            best = k;
            ties = 1;
        } else if scores[k] == scores[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = k;
            }
        }
    }
    Ok(Placement {
        node: snap.nodes[feasible[best]].name().to_string(),
        feasible: feasible.len(),
    })
}
