//! The StatefulSet controller (upstream `stateful_set_control.go`): pods `<set>-<ordinal>`
//! created in order (OrderedReady waits for each to be Running and Ready) or all at once
//! (Parallel), removed from the highest ordinal down, PVCs from volumeClaimTemplates that
//! outlive their pods (persistentVolumeClaimRetentionPolicy decides when they go),
//! RollingUpdate with partition from the highest ordinal down, OnDelete, ControllerRevisions
//! and currentRevision/updateRevision.

pub mod identity;

use std::collections::BTreeMap;
use std::sync::Arc;

use bramble_informer::pod::Pod;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::context::{owner_triggers, run_controller, Ctx};
use crate::error::Result;
use crate::meta::{new_controller_ref, selector_is_empty};
use crate::replicaset::pods_in;
use crate::revision::{self, REVISION_HASH_LABEL};
use crate::{claim, pods, write};
use identity::ordinal_of;

/// Runs the StatefulSet controller.
pub async fn run(ctx: Arc<Ctx>) {
    let triggers = owner_triggers::<Pod, StatefulSet>(&ctx.informers.pods);
    let main = ctx.informers.statefulsets.clone();
    run_controller("statefulset", ctx, main, triggers, reconcile).await;
}

fn rev_of(p: &Pod) -> Option<&String> {
    p.labels().get(REVISION_HASH_LABEL)
}

fn healthy(p: &Pod) -> bool {
    pods::phase(p) == "Running" && pods::is_ready(p) && p.metadata.deletion_timestamp.is_none()
}

/// The pod template a revision recorded.
fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = set.namespace().unwrap_or_default();
    let key = format!("sts:{ns}/{}", set.name_any());
    let Some(spec) = set.spec.clone() else {
        return Ok(Action::await_change());
    };
    if selector_is_empty(&spec.selector) {
        return Ok(Action::await_change());
    }
    let name = set.name_any();
    let deleting = set.metadata.deletion_timestamp.is_some();
    let pod_api: Api<Pod> = ctx.api(&ns);
    let owned = claim::claim(
        &pod_api,
        &new_controller_ref(set.as_ref()),
        deleting,
        &spec.selector,
        pods_in(&ctx, &ns),
    )
    .await?;
    let old = set.status.clone().unwrap_or_default();
    let update_rev =
        revision::ensure(&ctx, set.as_ref(), &spec.template, old.collision_count).await?;
    let update_name = update_rev.name_any();
    let revisions = revision::owned_revisions(&ctx, set.as_ref());
    let current_name = old
        .current_revision
        .clone()
        .filter(|c| revisions.iter().any(|r| &r.name_any() == c))
        .unwrap_or_else(|| update_name.clone());

    let replicas = spec.replicas.unwrap_or(1).max(0);
    let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
    let in_range = |o: i32| o >= start && o < start + replicas;
    let mut by_ordinal: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
    let mut condemned: Vec<Arc<Pod>> = Vec::new();
    for p in &owned {
        match ordinal_of(&name, &p.name_any()) {
            Some(o) if in_range(o) => {
                by_ordinal.insert(o, p.clone());
            }
            _ => condemned.push(p.clone()),
        }
    }
    condemned
        .sort_by_key(|p| std::cmp::Reverse(ordinal_of(&name, &p.name_any()).unwrap_or(i32::MAX)));

    if !deleting {
        let expectations_met = ctx
            .expectations
            .satisfied(&key, |n| crate::replicaset::pod_present(&ctx, &ns, n));
        if expectations_met {
            let current_rev = revisions
                .iter()
                .find(|r| r.name_any() == current_name)
                .cloned();
            sync_pods(
                &ctx,
                &set,
                &key,
                &pod_api,
                &by_ordinal,
                &condemned,
                &update_name,
                current_rev.as_deref(),
                &current_name,
            )
            .await?;
        }
    }

    // status
    let live: Vec<&Arc<Pod>> = owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = ctx.clock.now();
    let count = |f: &dyn Fn(&Pod) -> bool| live.iter().filter(|p| f(p)).count() as i32;
    let mut st = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        replicas: live.len() as i32,
        ready_replicas: Some(count(&|p| pods::is_ready(p))),
        available_replicas: Some(count(&|p| pods::is_available(p, min_ready, now))),
        current_replicas: Some(count(&|p| rev_of(p) == Some(&current_name))),
        updated_replicas: Some(count(&|p| rev_of(p) == Some(&update_name))),
        current_revision: Some(current_name.clone()),
        update_revision: Some(update_name.clone()),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
    };
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    if st.updated_replicas == Some(replicas)
        && st.ready_replicas == Some(replicas)
        && st.replicas == replicas
        && (rolling || current_name == update_name || st.updated_replicas == Some(st.replicas))
    {
        st.current_revision = Some(update_name.clone());
        st.current_replicas = st.updated_replicas;
    }
    let mut in_use: Vec<String> = vec![current_name.clone(), update_name.clone()];
    in_use.extend(live.iter().filter_map(|p| rev_of(p).cloned()));
    revision::trim(
        &ctx,
        &revisions,
        &in_use,
        spec.revision_history_limit.unwrap_or(10),
    )
    .await?;
    if st != old {
        let mut upd = (*set).clone();
        upd.status = Some(st);
        write::replace_status(&ctx.api::<StatefulSet>(&ns), &upd).await?;
    }
    Ok(Action::await_change())
}

#[allow(clippy::too_many_arguments)]
async fn sync_pods(
    ctx: &Ctx,
    set: &StatefulSet,
    key: &str,
    api: &Api<Pod>,
    by_ordinal: &BTreeMap<i32, Arc<Pod>>,
    condemned: &[Arc<Pod>],
    update_name: &str,
    current_rev: Option<&ControllerRevision>,
    current_name: &str,
) -> Result<()> {
    let spec = set.spec.clone().unwrap_or_default();
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref() != Some("OnDelete");
    let partition = strategy
        .rolling_update
        .as_ref()
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let current_count = set
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .unwrap_or(0);

    // 1. every ordinal in range gets a healthy pod, in order when OrderedReady
    for ord in start..start + replicas {
        match by_ordinal.get(&ord) {
            None => {
                let at_current = if rolling {
                    ord < partition
                } else {
                    ord - start < current_count
                };
                let (rev_name, template_set) = match (at_current, current_rev.and_then(template_of))
                {
                    (true, Some(t)) if current_name != update_name => {
                        let mut s = set.clone();
                        if let Some(sp) = s.spec.as_mut() {
                            sp.template = t;
                        }
                        (current_name.to_string(), s)
                    }
                    _ => (update_name.to_string(), set.clone()),
                };
                ensure_claims(ctx, set, ord).await?;
                let pod = identity::new_pod(&template_set, ord, &rev_name);
                match pods::create(api, &pod).await {
                    Ok(p) => {
                        info!(statefulset = %key, pod = %p.name_any(), "created pod");
                        ctx.expectations.created(key, &p.name_any());
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
                if monotonic {
                    return Ok(());
                }
            }
            Some(p) if pods::phase(p) == "Failed" || pods::phase(p) == "Succeeded" => {
                info!(statefulset = %key, pod = %p.name_any(), "recreating finished pod");
                write::delete(api, &p.name_any()).await?;
                ctx.expectations.deleted(key, &p.name_any());
                if monotonic {
                    return Ok(());
                }
            }
            Some(p) if monotonic && !healthy(p) => return Ok(()),
            Some(_) => {}
        }
    }

    // 2. condemned pods go from the highest ordinal down
    let when_scaled = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_scaled.clone())
        .unwrap_or_else(|| "Retain".into());
    for p in condemned {
        if p.metadata.deletion_timestamp.is_some() {
            if monotonic {
                return Ok(());
            }
            continue;
        }
        if when_scaled == "Delete" {
            if let Some(ord) = ordinal_of(&set.name_any(), &p.name_any()) {
                own_claims_by_pod(ctx, set, ord, p).await?;
            }
        }
        info!(statefulset = %key, pod = %p.name_any(), "deleting pod (scale down)");
        write::delete(api, &p.name_any()).await?;
        ctx.expectations.deleted(key, &p.name_any());
        if monotonic {
            return Ok(());
        }
    }

    // 3. rolling update: the highest out-of-date ordinal at or above the partition, one at a time
    if rolling && by_ordinal.values().all(|p| healthy(p)) {
        for (ord, p) in by_ordinal.iter().rev() {
            if *ord < partition {
                break;
            }
            if rev_of(p).map(String::as_str) != Some(update_name) {
                info!(statefulset = %key, pod = %p.name_any(), "deleting pod for update");
                write::delete(api, &p.name_any()).await?;
                ctx.expectations.deleted(key, &p.name_any());
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Creates the claims of `ordinal` that do not exist yet.
async fn ensure_claims(ctx: &Ctx, set: &StatefulSet, ordinal: i32) -> Result<()> {
    let ns = set.namespace().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = ctx.api(&ns);
    for pvc in identity::claims(set, ordinal) {
        let name = pvc.name_any();
        if ctx
            .informers
            .pvcs
            .store()
            .get(&ObjectRef::new(&name).within(&ns))
            .is_some()
        {
            continue;
        }
        match api.create(&PostParams::default(), &pvc).await {
            Ok(_) => info!(claim = %name, "created persistent volume claim"),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `whenScaled: Delete`: the condemned pod becomes the owner of its claims, so the garbage
/// collector removes them with it.
async fn own_claims_by_pod(ctx: &Ctx, set: &StatefulSet, ordinal: i32, pod: &Pod) -> Result<()> {
    let ns = set.namespace().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = ctx.api(&ns);
    for pvc in identity::claims(set, ordinal) {
        let Some(cur) = ctx
            .informers
            .pvcs
            .store()
            .get(&ObjectRef::new(&pvc.name_any()).within(&ns))
        else {
            continue;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        // The condemned pod becomes the only owner (upstream drops the set's reference
        // here, so whenDeleted does not keep the claim alive).
        let set_uid = set.metadata.uid.clone().unwrap_or_default();
        let mut refs = cur.owner_references().to_vec();
        if refs.iter().any(|r| r.uid == uid) && refs.iter().all(|r| r.uid != set_uid) {
            continue;
        }
        refs.retain(|r| r.uid != set_uid && r.uid != uid);
        refs.push(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: pod.name_any(),
                uid,
                controller: None,
                block_owner_deletion: Some(true),
            },
        );
        write::merge(
            &api,
            &cur.name_any(),
            json!({"metadata": {"ownerReferences": refs}}),
        )
        .await?;
    }
    Ok(())
}
