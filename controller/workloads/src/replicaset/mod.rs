//! The ReplicaSet controller (upstream `ReplicaSetController.syncReplicaSet`): claims pods by
//! selector, creates missing pods in slow-start batches, deletes surplus pods in upstream's
//! preference order, and reports replicas/ready/available/fullyLabeled and ReplicaFailure.

pub mod status;

use std::sync::Arc;
use std::time::Duration;

use bramble_informer::pod::Pod;
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use tracing::{debug, info};

use crate::context::{owner_triggers, run_controller, Ctx};
use crate::error::Result;
use crate::meta::{
    controller_ref, labels, new_controller_ref, selector_is_empty, selector_matches,
};
use crate::{claim, pods, write};
use bramble_informer::Informer;
use status::ManageFailure;

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;

/// Runs the ReplicaSet controller.
pub async fn run(ctx: Arc<Ctx>) {
    let pods = &ctx.informers.pods;
    let triggers = stream::select(
        owner_triggers::<Pod, ReplicaSet>(pods),
        orphan_triggers(pods, ctx.informers.replicasets.clone()),
    )
    .boxed();
    let main = ctx.informers.replicasets.clone();
    run_controller("replicaset", ctx, main, triggers, reconcile).await;
}

/// Orphan pods trigger every ReplicaSet in their namespace whose selector matches them, so
/// they get adopted.
fn orphan_triggers(
    pods: &Informer<Pod>,
    sets: Informer<ReplicaSet>,
) -> BoxStream<'static, ObjectRef<ReplicaSet>> {
    pods.changes()
        .flat_map(move |c| {
            let refs: Vec<_> = match c.object() {
                Some(pod) if controller_ref(&pod.metadata).is_none() => {
                    let ns = pod.namespace().unwrap_or_default();
                    sets.list_namespace(&ns)
                        .into_iter()
                        .filter(|rs| {
                            rs.spec.as_ref().is_some_and(|s| {
                                !selector_is_empty(&s.selector)
                                    && selector_matches(&s.selector, labels(&pod.metadata))
                            })
                        })
                        .map(|rs| ObjectRef::from_obj(rs.as_ref()))
                        .collect()
                }
                _ => Vec::new(),
            };
            stream::iter(refs)
        })
        .boxed()
}

/// The pods of namespace `ns` in the cache.
pub fn pods_in(ctx: &Ctx, ns: &str) -> Vec<Arc<Pod>> {
    ctx.informers.pods.list_namespace(ns)
}

/// Whether the pod cache holds a live pod `ns/name`.
pub fn pod_present(ctx: &Ctx, ns: &str, name: &str) -> bool {
    ctx.informers
        .pods
        .store()
        .get(&ObjectRef::new(name).within(ns))
        .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
}

async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = rs.namespace().unwrap_or_default();
    let name = rs.name_any();
    let key = format!("rs:{ns}/{name}");
    let Some(spec) = rs.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    if selector_is_empty(&spec.selector) {
        debug!(%key, "empty selector; ignoring");
        return Ok(Action::await_change());
    }
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let api: Api<Pod> = ctx.api(&ns);
    let owner = new_controller_ref(rs.as_ref());
    let active: Vec<_> = pods_in(&ctx, &ns)
        .into_iter()
        .filter(|p| pods::is_active(p))
        .collect();
    let mut owned = claim::claim(&api, &owner, deleting, &spec.selector, active).await?;

    let mut failure = None;
    let satisfied = ctx
        .expectations
        .satisfied(&key, |n| pod_present(&ctx, &ns, n));
    if satisfied && !deleting {
        let want = usize::try_from(spec.replicas.unwrap_or(1).max(0)).unwrap_or(0);
        failure = manage(&ctx, &rs, &key, &api, &mut owned, want).await;
    }

    let now = ctx.clock.now();
    let new_status = status::calculate(&rs, &owned, failure.as_ref(), now);
    let old = rs.status.clone().unwrap_or_default();
    if status::differs(&old, &new_status) {
        let mut updated = (*rs).clone();
        updated.status = Some(new_status.clone());
        write::replace_status(&ctx.api::<ReplicaSet>(&ns), &updated).await?;
    }
    if let Some(f) = failure {
        return Err(crate::Error::Invalid(f.message));
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    if min_ready > 0 && new_status.ready_replicas != new_status.available_replicas {
        return Ok(Action::requeue(Duration::from_secs(min_ready as u64)));
    }
    Ok(Action::await_change())
}

/// Creates or deletes pods so `owned` has `want` entries; returns the failure, if any.
async fn manage(
    ctx: &Ctx,
    rs: &ReplicaSet,
    key: &str,
    api: &Api<Pod>,
    owned: &mut Vec<Arc<Pod>>,
    want: usize,
) -> Option<ManageFailure> {
    let have = owned.len();
    if have < want {
        let diff = (want - have).min(BURST_REPLICAS);
        let template = rs.spec.as_ref()?.template.clone().unwrap_or_default();
        let owner = new_controller_ref(rs);
        let ns = rs.namespace().unwrap_or_default();
        info!(replicaset = %key, count = diff, "creating pods");
        let result = slow_start(diff, |_| {
            let pod = pods::from_template(
                &template,
                &ns,
                Some(format!("{}-", rs.name_any())),
                None,
                owner.clone(),
            );
            async move {
                let created = pods::create(api, &pod).await?;
                ctx.expectations.created(key, &created.name_any());
                Ok::<_, kube::Error>(())
            }
        })
        .await;
        return result.err().map(|e| ManageFailure {
            reason: "FailedCreate",
            message: e.to_string(),
        });
    }
    if have > want {
        let diff = (have - want).min(BURST_REPLICAS);
        pods::sort_for_deletion(owned);
        let doomed: Vec<_> = owned.drain(..diff).collect();
        info!(replicaset = %key, count = diff, "deleting pods");
        for p in doomed {
            let name = p.name_any();
            if let Err(e) = write::delete(api, &name).await {
                return Some(ManageFailure {
                    reason: "FailedDelete",
                    message: e.to_string(),
                });
            }
            ctx.expectations.deleted(key, &name);
        }
    }
    None
}

/// Runs `count` calls of `op` in batches of 1, 2, 4, ... (upstream `slowStartBatch`),
/// stopping after the first batch with an error.
pub async fn slow_start<F, Fut, E>(count: usize, op: F) -> Result<usize, E>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut done = 0;
    let mut batch = 1;
    while done < count {
        let n = batch.min(count - done);
        let results = futures::future::join_all((done..done + n).map(&op)).await;
        for r in results {
            r?;
        }
        done += n;
        batch *= 2;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn slow_start_stops_after_a_failing_batch() {
        let calls = AtomicUsize::new(0);
        let r = slow_start(10, |i| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if i == 4 {
                    Err("boom")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(r, Err("boom"));
        // batches 1, 2, 4: the third batch (indices 3..7) holds the failure.
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        let ok = slow_start(5, |_| async { Ok::<_, ()>(()) }).await;
        assert_eq!(ok, Ok(5));
    }
}
