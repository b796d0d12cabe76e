//! DefaultPreemption: find a node where evicting lower-priority pods lets the pod fit, keep as
//! many of them as possible (reprieve, highest priority first), and pick the node whose
//! victims hurt least.

use crate::algorithm::{histogram, FitError};
use crate::filters::{filter_node, PreFilter};
use crate::node_info::PodInfo;
use crate::snapshot::Snapshot;

/// Upstream's per-node reason when the node fails for reasons eviction cannot fix.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// Upstream's per-node reason when evicting every lower-priority pod still does not help.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A node and the pods to evict there.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The node the pod is nominated to.
    pub node: String,
    /// Pods to delete, highest priority first.
    pub victims: Vec<PodInfo>,
}

/// Finds the best preemption candidate, or the `preemption: ...` message explaining why
/// there is none. `never` is the pod's resolved `preemptionPolicy == Never`.
pub fn preempt(
    pod: &PodInfo,
    never: bool,
    snap: &Snapshot,
    fit: &FitError,
) -> Result<Candidate, String> {
    if never {
        return Err("preemption: not eligible due to preemptionPolicy=Never.".into());
    }
    let nominated = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(node) = nominated.and_then(|n| snap.node(n)) {
        if node
            .pods
            .iter()
            .any(|p| p.priority < pod.priority && p.pod.metadata.deletion_timestamp.is_some())
        {
            return Err(
                "preemption: not eligible due to a terminating pod on the nominated node.".into(),
            );
        }
    }
    let mut work = snap.clone();
    // The pod's own nomination must not reserve room against itself.
    work.remove_nominated(pod.uid());
    let mut reasons: Vec<String> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (name, failure) in &fit.failures {
        if failure.unresolvable {
            reasons.push(NOT_HELPFUL.into());
            continue;
        }
        let Some(idx) = work.index_of(name) else {
            continue;
        };
        let original = work.nodes[idx].clone();
        let mut potential: Vec<PodInfo> = original
            .pods
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        for v in &potential {
            work.nodes[idx].remove_pod(v.uid());
        }
        let fits = |w: &Snapshot| {
            let pre = PreFilter::compute(pod, w);
            filter_node(pod, &w.nodes[idx], w, &pre).is_ok()
        };
        if potential.is_empty() || !fits(&work) {
            reasons.push(NO_VICTIMS.into());
            work.nodes[idx] = original;
            continue;
        }
        potential.sort_by_key(|p| std::cmp::Reverse(p.priority));
        let mut victims = Vec::new();
        for v in potential {
            work.nodes[idx].add_pod(v.clone());
            if !fits(&work) {
                work.nodes[idx].remove_pod(v.uid());
                victims.push(v);
            }
        }
        work.nodes[idx] = original;
        candidates.push(Candidate {
            node: name.clone(),
            victims,
        });
    }
    if candidates.is_empty() {
        return Err(format!(
            "preemption: {}",
            histogram(fit.num_nodes, reasons.iter())
        ));
    }
    candidates.sort_by_key(|c| {
        let highest = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = c.victims.iter().map(|v| v.priority as i64).sum();
        (highest, sum, c.victims.len())
    });
    Ok(candidates.remove(0))
}
