//! Inter-pod affinity and anti-affinity (upstream's `InterPodAffinity` plugin): the required
//! terms as a filter, the preferred terms (both directions) as a score.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::PodAffinityTerm;

use bramble_informer::pod::Pod;

use crate::matching::{label_selector_matches, labels_of};
use crate::node_info::NodeInfo;
use crate::snapshot::Snapshot;

/// Upstream's reason when the incoming pod's required affinity is not met.
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// Upstream's reason when the incoming pod's required anti-affinity is not met.
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// Upstream's reason when an existing pod's anti-affinity forbids the incoming pod.
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

fn affinity_terms(pod: &Pod) -> (&[PodAffinityTerm], &[PodAffinityTerm]) {
    let aff = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let req = aff
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[]);
    let anti = aff
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[]);
    (req, anti)
}

/// Weighted preferred terms: (weight, term), affinity positive and anti-affinity negative.
fn preferred_terms(pod: &Pod) -> Vec<(i64, &PodAffinityTerm)> {
    let aff = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let mut out = Vec::new();
    for w in aff
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[])
    {
        out.push((w.weight as i64, &w.pod_affinity_term));
    }
    for w in aff
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[])
    {
        out.push((-(w.weight as i64), &w.pod_affinity_term));
    }
    out
}

/// True when a pod has any pod (anti-)affinity at all.
pub fn has_pod_affinity(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
}

/// Whether `term`, declared by a pod in `owner_ns`, selects `target`. A nil label selector
/// selects nothing; `namespaces` empty and no `namespaceSelector` means the owner's namespace;
/// an empty `namespaceSelector` means every namespace.
pub fn term_selects(term: &PodAffinityTerm, owner_ns: &str, target: &Pod) -> bool {
    let target_ns = target.metadata.namespace.as_deref().unwrap_or("default");
    let namespaces = term.namespaces.as_deref().unwrap_or(&[]);
    let all_namespaces = term.namespace_selector.as_ref().is_some_and(|s| {
        s.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
    });
    let ns_ok = if !namespaces.is_empty() {
        namespaces.iter().any(|n| n == target_ns) || all_namespaces
    } else {
        all_namespaces || owner_ns == target_ns
    };
    ns_ok
        && term
            .label_selector
            .as_ref()
            .is_some_and(|s| label_selector_matches(s, labels_of(&target.metadata.labels)))
}

/// Counts the filter needs, computed once per incoming pod.
#[derive(Debug, Default)]
pub struct InterPodState {
    affinity: Vec<(String, HashMap<String, i64>)>,
    anti: Vec<(String, HashMap<String, i64>)>,
    existing_anti: HashMap<(String, String), i64>,
    self_matches_affinity: bool,
}

impl InterPodState {
    /// Scans the snapshot for pods the incoming pod's terms select and pods whose
    /// anti-affinity selects the incoming pod.
    pub fn compute(pod: &Pod, snap: &Snapshot) -> InterPodState {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let (req, anti) = affinity_terms(pod);
        let mut st = InterPodState {
            affinity: req
                .iter()
                .map(|t| (t.topology_key.clone(), HashMap::new()))
                .collect(),
            anti: anti
                .iter()
                .map(|t| (t.topology_key.clone(), HashMap::new()))
                .collect(),
            existing_anti: HashMap::new(),
            self_matches_affinity: req.iter().all(|t| term_selects(t, ns, pod)),
        };
        for node in &snap.nodes {
            for p in &node.pods {
                let existing = &p.pod;
                if existing.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                for (i, t) in req.iter().enumerate() {
                    if let Some(v) = node.label(&t.topology_key) {
                        if term_selects(t, ns, existing) {
                            *st.affinity[i].1.entry(v.to_string()).or_default() += 1;
                        }
                    }
                }
                for (i, t) in anti.iter().enumerate() {
                    if let Some(v) = node.label(&t.topology_key) {
                        if term_selects(t, ns, existing) {
                            *st.anti[i].1.entry(v.to_string()).or_default() += 1;
                        }
                    }
                }
                if has_pod_affinity(existing) {
                    let ens = existing.metadata.namespace.as_deref().unwrap_or("default");
                    for t in affinity_terms(existing).1 {
                        if let Some(v) = node.label(&t.topology_key) {
                            if term_selects(t, ens, pod) {
                                *st.existing_anti
                                    .entry((t.topology_key.clone(), v.to_string()))
                                    .or_default() += 1;
                            }
                        }
                    }
                }
            }
        }
        st
    }

    /// The filter: `Err((reason, unresolvable))` when the node is ruled out.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), (&'static str, bool)> {
        if !self.affinity.is_empty() {
            let none_anywhere = self.affinity.iter().all(|(_, m)| m.is_empty());
            let ok = self.affinity.iter().all(|(key, counts)| {
                node.label(key).is_some_and(|v| {
                    counts.get(v).is_some_and(|c| *c > 0)
                        || (none_anywhere && self.self_matches_affinity)
                })
            });
            if !ok {
                return Err((ERR_AFFINITY, true));
            }
        }
        for (key, counts) in &self.anti {
            if let Some(v) = node.label(key) {
                if counts.get(v).is_some_and(|c| *c > 0) {
                    return Err((ERR_ANTI_AFFINITY, false));
                }
            }
        }
        for ((key, value), count) in &self.existing_anti {
            if *count > 0 && node.label(key) == Some(value.as_str()) {
                return Err((ERR_EXISTING_ANTI_AFFINITY, false));
            }
        }
        Ok(())
    }
}

/// Preferred (anti-)affinity score per node index, raw (normalize with
/// [`crate::scores::normalize_min_max`]). Counts the incoming pod's preferred terms against
/// existing pods and existing pods' preferred terms against the incoming pod.
pub fn preferred_scores(pod: &Pod, snap: &Snapshot) -> Option<Vec<i64>> {
    let own = preferred_terms(pod);
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut topo: HashMap<(String, String), i64> = HashMap::new();
    let mut any = false;
    for node in &snap.nodes {
        for p in &node.pods {
            let existing = &p.pod;
            for (w, t) in &own {
                if let Some(v) = node.label(&t.topology_key) {
                    if term_selects(t, ns, existing) {
                        *topo.entry((t.topology_key.clone(), v.into())).or_default() += w;
                        any = true;
                    }
                }
            }
            if has_pod_affinity(existing) {
                let ens = existing.metadata.namespace.as_deref().unwrap_or("default");
                for (w, t) in preferred_terms(existing) {
                    if let Some(v) = node.label(&t.topology_key) {
                        if term_selects(t, ens, pod) {
                            *topo.entry((t.topology_key.clone(), v.into())).or_default() += w;
                            any = true;
                        }
                    }
                }
            }
        }
    }
    if !any {
        return None;
    }
    Some(
        snap.nodes
            .iter()
            .map(|n| {
                topo.iter()
                    .filter(|((k, v), _)| n.label(k) == Some(v.as_str()))
                    .map(|(_, s)| *s)
                    .sum()
            })
            .collect(),
    )
}
