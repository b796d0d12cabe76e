//! The DaemonSet controller (upstream `daemon_controller.go`, `update.go`): one pod per
//! eligible node, pinned with node affinity and carrying the default daemon tolerations;
//! RollingUpdate with maxUnavailable/maxSurge, OnDelete, ControllerRevisions and status.

pub mod nodes;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bramble_informer::pod::Pod;
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::Node;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use tracing::info;

use crate::context::{owner_triggers, run_controller, Ctx};
use crate::deployment::rollout::scaled;
use crate::error::Result;
use crate::meta::{new_controller_ref, selector_is_empty};
use crate::replicaset::{pod_present, pods_in};
use crate::revision::{self, REVISION_HASH_LABEL};
use crate::{claim, pods, write};
use bramble_informer::Informer;

/// Runs the DaemonSet controller.
pub async fn run(ctx: Arc<Ctx>) {
    let triggers = stream::select(
        owner_triggers::<Pod, DaemonSet>(&ctx.informers.pods),
        node_triggers(&ctx.informers.nodes, ctx.informers.daemonsets.clone()),
    )
    .boxed();
    let main = ctx.informers.daemonsets.clone();
    run_controller("daemonset", ctx, main, triggers, reconcile).await;
}

/// Any node change re-evaluates every DaemonSet.
fn node_triggers(
    nodes: &Informer<Node>,
    sets: Informer<DaemonSet>,
) -> BoxStream<'static, ObjectRef<DaemonSet>> {
    nodes
        .changes()
        .flat_map(move |_| {
            let refs: Vec<_> = sets
                .store()
                .state()
                .iter()
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect();
            stream::iter(refs)
        })
        .boxed()
}

/// The node a daemon pod is bound to or pinned to.
fn node_of(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_ref()?.iter().find_map(|f| {
            (f.key == "metadata.name" && f.operator == "In")
                .then(|| f.values.as_ref()?.first().cloned())?
        })
    })
}

fn hash_of(p: &Pod) -> Option<&String> {
    p.labels().get(REVISION_HASH_LABEL)
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = ds.namespace().unwrap_or_default();
    let key = format!("ds:{ns}/{}", ds.name_any());
    let Some(spec) = ds.spec.clone() else {
        return Ok(Action::await_change());
    };
    if selector_is_empty(&spec.selector) {
        return Ok(Action::await_change());
    }
    let deleting = ds.metadata.deletion_timestamp.is_some();
    let pod_api: Api<Pod> = ctx.api(&ns);
    let owned = claim::claim(
        &pod_api,
        &new_controller_ref(ds.as_ref()),
        deleting,
        &spec.selector,
        pods_in(&ctx, &ns),
    )
    .await?;
    let now = ctx.clock.now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let template_spec = spec.template.spec.clone().unwrap_or_default();
    let nodes = ctx.informers.nodes.store().state();
    let should: BTreeMap<String, bool> = nodes
        .iter()
        .map(|n| (n.name_any(), nodes::should_run(&template_spec, n)))
        .collect();
    let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for p in owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        by_node
            .entry(node_of(p).unwrap_or_default())
            .or_default()
            .push(p.clone());
    }
    for list in by_node.values_mut() {
        list.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    }

    let mut hash = String::new();
    if !deleting {
        let rev = revision::ensure(
            &ctx,
            ds.as_ref(),
            &spec.template,
            ds.status.as_ref().and_then(|s| s.collision_count),
        )
        .await?;
        hash = revision::hash_of(&rev);
        let in_use: Vec<String> = vec![rev.name_any()];
        let owned_revs = revision::owned_revisions(&ctx, ds.as_ref());
        revision::trim(
            &ctx,
            &owned_revs,
            &in_use,
            spec.revision_history_limit.unwrap_or(10),
        )
        .await?;

        if ctx
            .expectations
            .satisfied(&key, |n| pod_present(&ctx, &ns, n))
        {
            manage(&ctx, &ds, &key, &pod_api, &should, &by_node, &hash, now).await?;
        }
    }

    // status
    let desired = should.values().filter(|s| **s).count() as i32;
    let mut current = 0;
    let mut misscheduled = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut updated = 0;
    for (node, list) in &by_node {
        let wanted = should.get(node).copied().unwrap_or(false);
        if !wanted {
            misscheduled += 1;
            continue;
        }
        current += 1;
        let newest = list.last().expect("non-empty");
        if pods::is_ready(newest) {
            ready += 1;
        }
        if pods::is_available(newest, min_ready, now) {
            available += 1;
        }
        if hash_of(newest) == Some(&hash) {
            updated += 1;
        }
    }
    let old = ds.status.clone().unwrap_or_default();
    let st = DaemonSetStatus {
        desired_number_scheduled: desired,
        current_number_scheduled: current,
        number_misscheduled: misscheduled,
        number_ready: ready,
        number_available: Some(available),
        number_unavailable: Some((desired - available).max(0)),
        updated_number_scheduled: Some(updated),
        observed_generation: ds.metadata.generation,
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
    };
    if st != old {
        let mut upd = (*ds).clone();
        upd.status = Some(st);
        write::replace_status(&ctx.api::<DaemonSet>(&ns), &upd).await?;
    }
    if min_ready > 0 && ready != available {
        return Ok(Action::requeue(Duration::from_secs(min_ready as u64)));
    }
    Ok(Action::await_change())
}

#[allow(clippy::too_many_arguments)]
async fn manage(
    ctx: &Ctx,
    ds: &DaemonSet,
    key: &str,
    api: &Api<Pod>,
    should: &BTreeMap<String, bool>,
    by_node: &HashMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    now: jiff::Timestamp,
) -> Result<()> {
    let spec = ds.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut create: Vec<String> = Vec::new();
    let mut delete: Vec<Arc<Pod>> = Vec::new();
    for (node, list) in by_node {
        if !should.get(node).copied().unwrap_or(false) {
            delete.extend(list.iter().cloned());
        }
    }
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref() != Some("OnDelete");
    let ru = strategy.rolling_update.unwrap_or_default();
    let desired = should.values().filter(|s| **s).count() as i32;
    let max_surge = if rolling {
        scaled(ru.max_surge.as_ref(), desired, true, "0")
    } else {
        0
    };
    let max_unavailable = scaled(ru.max_unavailable.as_ref(), desired, true, "1");
    let mut unavailable = 0;
    let mut old_nodes: Vec<(String, Arc<Pod>, Option<Arc<Pod>>)> = Vec::new();
    for (node, wanted) in should {
        if !wanted {
            continue;
        }
        let list = by_node.get(node).cloned().unwrap_or_default();
        let (failed, alive): (Vec<_>, Vec<_>) =
            list.into_iter().partition(|p| pods::phase(p) == "Failed");
        delete.extend(failed);
        if alive.is_empty() {
            create.push(node.clone());
            unavailable += 1;
            continue;
        }
        let new: Vec<&Arc<Pod>> = alive
            .iter()
            .filter(|p| hash_of(p).map(String::as_str) == Some(hash))
            .collect();
        let old: Vec<&Arc<Pod>> = alive
            .iter()
            .filter(|p| hash_of(p).map(String::as_str) != Some(hash))
            .collect();
        if !alive.iter().any(|p| pods::is_available(p, min_ready, now)) {
            unavailable += 1;
        }
        // duplicates: keep the oldest new pod (or the oldest pod), delete the rest
        let keep_new = new.first().cloned().cloned();
        if let Some(n) = &keep_new {
            delete.extend(new.iter().skip(1).map(|p| (*p).clone()));
            if let Some(o) = old.first() {
                old_nodes.push((node.clone(), (*o).clone(), Some(n.clone())));
                delete.extend(old.iter().skip(1).map(|p| (*p).clone()));
            }
        } else {
            delete.extend(old.iter().skip(1).map(|p| (*p).clone()));
            old_nodes.push((node.clone(), old[0].clone(), None));
        }
    }
    if rolling {
        let mut surged = old_nodes.iter().filter(|(_, _, n)| n.is_some()).count() as i32;
        for (node, old, new) in &old_nodes {
            match new {
                // surge: the old pod goes once the new one is available
                Some(n) => {
                    if pods::is_available(n, min_ready, now) {
                        delete.push(old.clone());
                    }
                }
                None if max_surge > 0 => {
                    if !pods::is_available(old, min_ready, now) {
                        delete.push(old.clone());
                    } else if surged < max_surge {
                        surged += 1;
                        create.push(node.clone());
                    }
                }
                None => {
                    if !pods::is_available(old, min_ready, now) {
                        delete.push(old.clone());
                    } else if unavailable < max_unavailable {
                        unavailable += 1;
                        delete.push(old.clone());
                    }
                }
            }
        }
    }
    for p in &delete {
        info!(daemonset = %key, pod = %p.name_any(), "deleting daemon pod");
        write::delete(api, &p.name_any()).await?;
        ctx.expectations.deleted(key, &p.name_any());
    }
    for node in create {
        let mut pod = pods::from_template(
            &spec.template,
            &ds.namespace().unwrap_or_default(),
            Some(format!("{}-", ds.name_any())),
            None,
            new_controller_ref(ds),
        );
        let labels = pod.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(REVISION_HASH_LABEL.into(), hash.to_string());
        labels.insert(
            "pod-template-generation".into(),
            ds.metadata.generation.unwrap_or(0).to_string(),
        );
        if let Some(s) = pod.spec.as_mut() {
            nodes::add_default_tolerations(s);
            nodes::pin_to_node(s, &node);
        }
        let created = pods::create(api, &pod).await?;
        info!(daemonset = %key, pod = %created.name_any(), %node, "created daemon pod");
        ctx.expectations.created(key, &created.name_any());
    }
    Ok(())
}
