//! Pod predicates the controllers share (active, ready, available), pods built from a
//! template, and upstream's ranking of which pods to delete first.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bramble_informer::pod::Pod;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Pod as ApiPod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::PostParams;
use kube::Api;

/// `status.phase`, or `""`.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Not finished and not being deleted (upstream `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    let p = phase(pod);
    p != "Succeeded" && p != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// `Ready` condition true.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the `Ready` condition last became true, if it is true (the epoch when the time is
/// unknown).
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (cond.status == "True").then(|| {
        cond.last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::UNIX_EPOCH)
    })
}

/// Ready for at least `min_ready_seconds` (upstream `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => since + SignedDuration::from_secs(min_ready_seconds.into()) <= now,
    }
}

/// Sum of container restart counts.
fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

/// A pod for a template, owned by `owner` (upstream `GetPodFromTemplate`).
pub fn from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    generate_name: Option<String>,
    name: Option<String>,
    owner: OwnerReference,
) -> ApiPod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut spec = template.spec.clone();
    if let Some(s) = spec.as_mut() {
        // Name the service account as admission would ("default"), so the stored pod
        // carries `serviceAccountName` and its alias `serviceAccount` alike and later
        // metadata patches (finalizers, owner references) pass pod update validation.
        if s.service_account_name.is_none() && s.service_account.is_none() {
            s.service_account_name = Some("default".into());
        }
    }
    ApiPod {
        metadata: ObjectMeta {
            name,
            generate_name,
            namespace: Some(namespace.to_string()),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec,
        status: None,
    }
}

/// Creates `pod` in the namespace `api` is bound to. The controllers' pod `Api`s use the
/// cached [`Pod`] type (their writes are patches and deletes by name); a creation sends the
/// full API Pod and returns what the API server stored.
pub async fn create(api: &Api<Pod>, pod: &ApiPod) -> kube::Result<ApiPod> {
    let ns = api.namespace().unwrap_or("default");
    Api::<ApiPod>::namespaced(api.clone().into_client(), ns)
        .create(&PostParams::default(), pod)
        .await
}

fn phase_rank(p: &str) -> u8 {
    match p {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// Orders pods so the ones to delete first come first, as upstream's `ActivePodsWithRanks`:
/// unassigned before assigned, Pending < Unknown < Running, not ready before ready, more
/// co-located siblings first, ready for less time first, more restarts first, newer first.
pub fn delete_order(a: &Pod, b: &Pod, colocated: &BTreeMap<String, usize>) -> Ordering {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (na, nb) = (node(a), node(b));
    let assigned = |n: &str| !n.is_empty();
    assigned(&na)
        .cmp(&assigned(&nb))
        .then_with(|| phase_rank(phase(a)).cmp(&phase_rank(phase(b))))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| {
            let ca = colocated.get(&na).copied().unwrap_or(0);
            let cb = colocated.get(&nb).copied().unwrap_or(0);
            cb.cmp(&ca)
        })
        .then_with(|| match (ready_since(a), ready_since(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(b).cmp(&t(a))
        })
}

/// Sorts `pods` into deletion order.
pub fn sort_for_deletion(pods: &mut [std::sync::Arc<Pod>]) {
    let mut colocated = BTreeMap::new();
    for p in pods.iter() {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *colocated.entry(n).or_insert(0usize) += 1;
        }
    }
    pods.sort_by(|a, b| delete_order(a, b, &colocated));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_informer::pod::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::sync::Arc;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_string),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn unscheduled_pending_and_unready_pods_go_first() {
        let mut pods = vec![
            pod("running-ready", Some("n1"), "Running", true),
            pod("running-unready", Some("n1"), "Running", false),
            pod("pending", Some("n2"), "Pending", false),
            pod("unscheduled", None, "Pending", false),
        ];
        sort_for_deletion(&mut pods);
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            ["unscheduled", "pending", "running-unready", "running-ready"]
        );
    }

    #[test]
    fn availability_waits_min_ready_seconds() {
        let p = pod("a", Some("n"), "Running", true);
        let t0 = Timestamp::UNIX_EPOCH;
        assert!(is_available(&p, 0, t0));
        assert!(!is_available(&p, 10, t0 + SignedDuration::from_secs(9)));
        assert!(is_available(&p, 10, t0 + SignedDuration::from_secs(10)));
    }
}
