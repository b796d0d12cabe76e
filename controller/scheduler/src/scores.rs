//! Score plugins with upstream's default weights: NodeResourcesFit (LeastAllocated) 1,
//! NodeResourcesBalancedAllocation 1, ImageLocality 1, InterPodAffinity 2, NodeAffinity 2,
//! PodTopologySpread 2, TaintToleration 3. Every plugin scores 0..=100 per node.

use bramble_informer::pod::Pod;

use crate::filters::PreFilter;
use crate::matching::{node_selector_term_matches, node_taints, pod_tolerations, tolerated_by};
use crate::node_info::{NodeInfo, PodInfo};
use crate::snapshot::Snapshot;

/// The maximum score of one plugin.
pub const MAX_SCORE: i64 = 100;

const MB: i64 = 1024 * 1024;
const MIN_IMAGE_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_IMAGE_THRESHOLD: i64 = 1000 * MB;

/// LeastAllocated over cpu and memory (weights 1:1), on non-zero requests.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let part = |req: i64, alloc: i64| {
        if alloc <= 0 || req > alloc {
            0
        } else {
            (alloc - req) * MAX_SCORE / alloc
        }
    };
    let cpu = part(
        node.non_zero_requested.milli_cpu + pod.non_zero.milli_cpu,
        node.allocatable.milli_cpu,
    );
    let mem = part(
        node.non_zero_requested.memory + pod.non_zero.memory,
        node.allocatable.memory,
    );
    (cpu + mem) / 2
}

/// BalancedAllocation: 100 × (1 − standard deviation of the cpu and memory fractions).
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let frac = |req: i64, alloc: i64| {
        if alloc <= 0 {
            1.0
        } else {
            (req as f64 / alloc as f64).min(1.0)
        }
    };
    let cpu = frac(
        node.requested.milli_cpu + pod.requests.milli_cpu,
        node.allocatable.milli_cpu,
    );
    let mem = frac(
        node.requested.memory + pod.requests.memory,
        node.allocatable.memory,
    );
    let std = (cpu - mem).abs() / 2.0;
    ((1.0 - std) * MAX_SCORE as f64) as i64
}

/// Normalizes an image reference the way node status lists it: `nginx` ->
/// `docker.io/library/nginx:latest`.
pub fn normalized_image(image: &str) -> String {
    let (name, has_tag) = match image.rsplit_once('/') {
        Some((_, last)) => (image.to_string(), last.contains(':') || last.contains('@')),
        None => (
            image.to_string(),
            image.contains(':') || image.contains('@'),
        ),
    };
    let first = name.split('/').next().unwrap_or("");
    let with_host = if !name.contains('/') {
        format!("docker.io/library/{name}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        name
    } else {
        format!("docker.io/{name}")
    };
    if has_tag {
        with_host
    } else {
        format!("{with_host}:latest")
    }
}

/// The pod's images as (normalized, as written) pairs, and its container count.
pub fn pod_images(pod: &Pod) -> (Vec<(String, String)>, i64) {
    let Some(spec) = &pod.spec else {
        return (Vec::new(), 0);
    };
    let mut images = Vec::new();
    let mut containers = 0;
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        containers += 1;
        if let Some(image) = c.image.as_deref() {
            images.push((normalized_image(image), image.to_string()));
        }
    }
    (images, containers)
}

/// ImageLocality: sizes of the pod's images already on the node, scaled by how many nodes
/// have them, between upstream's 23 MB and 1000 MB-per-container thresholds.
pub fn image_locality(pod: &Pod, node: &NodeInfo, snap: &Snapshot) -> i64 {
    let (images, containers) = pod_images(pod);
    image_locality_of(&images, containers, node, snap)
}

/// [`image_locality`] with the pod's images prepared by [`pod_images`].
pub fn image_locality_of(
    images: &[(String, String)],
    containers: i64,
    node: &NodeInfo,
    snap: &Snapshot,
) -> i64 {
    if node.images.is_empty() {
        return 0;
    }
    let total = snap.nodes.len().max(1) as i64;
    let mut sum = 0i64;
    for (norm, image) in images {
        let found = [norm.as_str(), image.as_str()]
            .into_iter()
            .find_map(|name| node.images.get(name).map(|size| (name, *size)));
        if let Some((name, size)) = found {
            let with = snap.image_nodes.get(name).copied().unwrap_or(1) as i64;
            sum += size * with / total;
        }
    }
    let max = MAX_CONTAINER_IMAGE_THRESHOLD * containers.max(1);
    let clamped = sum.clamp(MIN_IMAGE_THRESHOLD, max);
    MAX_SCORE * (clamped - MIN_IMAGE_THRESHOLD) / (max - MIN_IMAGE_THRESHOLD)
}

/// Raw NodeAffinity score: sum of the weights of matching preferred terms.
pub fn node_affinity_raw(pod: &Pod, node: &NodeInfo) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|terms| {
            terms
                .iter()
                .filter(|t| node_selector_term_matches(&t.preference, &node.node))
                .map(|t| t.weight as i64)
                .sum()
        })
        .unwrap_or(0)
}

/// Raw TaintToleration score: PreferNoSchedule taints the pod does not tolerate.
pub fn intolerable_prefer_no_schedule(pod: &Pod, node: &NodeInfo) -> i64 {
    let tolerations = pod_tolerations(pod);
    node_taints(&node.node)
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule" && !tolerated_by(tolerations, t))
        .count() as i64
}

/// Scales raw scores so the highest becomes 100 (`reverse`: the lowest becomes 100).
pub fn normalize_max(raw: &[i64], reverse: bool) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.iter()
        .map(|&s| {
            if max == 0 {
                if reverse {
                    MAX_SCORE
                } else {
                    0
                }
            } else {
                let v = s * MAX_SCORE / max;
                if reverse {
                    MAX_SCORE - v
                } else {
                    v
                }
            }
        })
        .collect()
}

/// Scales raw scores linearly onto 0..=100 between their minimum and maximum (InterPodAffinity).
pub fn normalize_min_max(raw: &[i64]) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    let min = raw.iter().copied().min().unwrap_or(0);
    raw.iter()
        .map(|&s| {
            if max == min {
                0
            } else {
                (s - min) * MAX_SCORE / (max - min)
            }
        })
        .collect()
}

/// PodTopologySpread normalization: `100 × (max + min − s) / max`, nodes without the
/// topology keys score 0.
pub fn normalize_spread(raw: &[Option<f64>]) -> Vec<i64> {
    let vals: Vec<f64> = raw.iter().flatten().copied().collect();
    let max = vals.iter().copied().fold(f64::MIN, f64::max);
    let min = vals.iter().copied().fold(f64::MAX, f64::min);
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max <= 0.0 => MAX_SCORE,
            Some(s) => (MAX_SCORE as f64 * (max + min - s) / max) as i64,
        })
        .collect()
}

/// Weighted total score of each feasible node (indices into `snap.nodes`).
pub fn score_nodes(
    pod: &PodInfo,
    feasible: &[usize],
    snap: &Snapshot,
    pre: &PreFilter,
) -> Vec<i64> {
    let nodes: Vec<&NodeInfo> = feasible.iter().map(|&i| &snap.nodes[i]).collect();
    let (images, containers) = pod_images(&pod.pod);
    let mut total: Vec<i64> = nodes
        .iter()
        .map(|n| {
            least_allocated(pod, n)
                + balanced_allocation(pod, n)
                + image_locality_of(&images, containers, n, snap)
        })
        .collect();
    let affinity: Vec<i64> = nodes
        .iter()
        .map(|n| node_affinity_raw(&pod.pod, n))
        .collect();
    for (t, s) in total.iter_mut().zip(normalize_max(&affinity, false)) {
        *t += 2 * s;
    }
    let taints: Vec<i64> = nodes
        .iter()
        .map(|n| intolerable_prefer_no_schedule(&pod.pod, n))
        .collect();
    for (t, s) in total.iter_mut().zip(normalize_max(&taints, true)) {
        *t += 3 * s;
    }
    if pre.spread.scores() {
        let raw: Vec<Option<f64>> = nodes.iter().map(|n| pre.spread.raw_score(n)).collect();
        for (t, s) in total.iter_mut().zip(normalize_spread(&raw)) {
            *t += 2 * s;
        }
    }
    if pre.interpod.is_some() || crate::interpod::has_pod_affinity(&pod.pod) {
        if let Some(all) = crate::interpod::preferred_scores(&pod.pod, snap) {
            let raw: Vec<i64> = feasible.iter().map(|&i| all[i]).collect();
            for (t, s) in total.iter_mut().zip(normalize_min_max(&raw)) {
                *t += 2 * s;
            }
        }
    }
    total
}
