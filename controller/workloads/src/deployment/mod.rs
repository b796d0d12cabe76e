//! The Deployment controller (upstream `DeploymentController.syncDeployment`): claims
//! ReplicaSets, keeps the revision annotations, rolls out with RollingUpdate or Recreate,
//! scales proportionally, honours `paused`, cleans up history and reports status with the
//! Progressing/Available/ReplicaFailure conditions.

pub mod replicasets;
pub mod rollout;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use bramble_informer::pod::Pod;
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use jiff::SignedDuration;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::context::{owner_triggers, run_controller, Ctx};
use crate::error::Result;
use crate::meta::{controller_ref, new_controller_ref, selector_is_empty};
use crate::{claim, write};
use replicasets::{revision, split_new, REVISION};
use rollout::RsCounts;
use status::{condition, new_condition, set_condition};

/// Runs the Deployment controller.
pub async fn run(ctx: Arc<Ctx>) {
    let triggers = stream::select(
        owner_triggers::<ReplicaSet, Deployment>(&ctx.informers.replicasets),
        pod_triggers(&ctx),
    )
    .boxed();
    let main = ctx.informers.deployments.clone();
    run_controller("deployment", ctx, main, triggers, reconcile).await;
}

/// Deleted pods wake their ReplicaSet's Deployment (a Recreate rollout waits for them).
fn pod_triggers(ctx: &Ctx) -> BoxStream<'static, ObjectRef<Deployment>> {
    let sets = ctx.informers.replicasets.clone();
    ctx.informers
        .pods
        .changes()
        .filter_map(move |c| {
            let sets = sets.clone();
            async move {
                let bramble_informer::Change::Deleted(pod) = c else {
                    return None;
                };
                let r = controller_ref(&pod.metadata)?;
                if r.kind != "ReplicaSet" {
                    return None;
                }
                let ns = pod.namespace()?;
                let rs = sets.store().get(&ObjectRef::new(&r.name).within(&ns))?;
                let d = controller_ref(&rs.metadata)?;
                (d.kind == "Deployment").then(|| ObjectRef::new(&d.name).within(&ns))
            }
        })
        .boxed()
}

fn counts(rs: &ReplicaSet) -> RsCounts {
    RsCounts {
        name: rs.name_any(),
        replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        available: rs
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0),
    }
}

/// Everything one sync needs.
struct Sync<'a> {
    ctx: &'a Ctx,
    d: Deployment,
    api: Api<ReplicaSet>,
    owned: Vec<Arc<ReplicaSet>>,
    desired: i32,
    surge: i32,
    max_unavailable: i32,
    rolling: bool,
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = d.namespace().unwrap_or_default();
    let Some(spec) = d.spec.clone() else {
        return Ok(Action::await_change());
    };
    if selector_is_empty(&spec.selector) {
        return Ok(Action::await_change());
    }
    let api: Api<ReplicaSet> = ctx.api(&ns);
    let candidates: Vec<_> = ctx.informers.replicasets.list_namespace(&ns);
    let deleting = d.metadata.deletion_timestamp.is_some();
    let owned = claim::claim(
        &api,
        &new_controller_ref(d.as_ref()),
        deleting,
        &spec.selector,
        candidates,
    )
    .await?;
    let desired = spec.replicas.unwrap_or(1);
    let strategy = spec.strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref() != Some("Recreate");
    let ru = strategy.rolling_update.unwrap_or_default();
    let fp = if rolling {
        rollout::fenceposts(ru.max_surge.as_ref(), ru.max_unavailable.as_ref(), desired)
    } else {
        (0, 0)
    };
    let mut s = Sync {
        ctx: &ctx,
        d: (*d).clone(),
        api,
        owned,
        desired,
        surge: fp.0,
        max_unavailable: if rolling {
            rollout::max_unavailable(fp, desired)
        } else {
            0
        },
        rolling,
    };
    if deleting {
        s.write_status(false).await?;
        return Ok(Action::await_change());
    }
    let paused = spec.paused.unwrap_or(false);
    s.paused_condition(paused);
    if paused || s.scaling_event() {
        s.sync_scale(paused).await?;
        return s.write_status(false).await;
    }
    if rolling {
        s.rolling().await
    } else {
        s.recreate().await
    }
}

impl Sync<'_> {
    fn now(&self) -> jiff::Timestamp {
        self.ctx.clock.now()
    }

    fn split(&self) -> (Option<Arc<ReplicaSet>>, Vec<Arc<ReplicaSet>>) {
        let (n, o) = split_new(&self.d, &self.owned);
        (n.cloned(), o.into_iter().cloned().collect())
    }

    /// Upstream `checkPausedConditions`.
    fn paused_condition(&mut self, paused: bool) {
        if status::progress_deadline(&self.d).is_none() {
            return;
        }
        let now = self.now();
        let st = self.d.status.get_or_insert_with(Default::default);
        let reason = condition(st, "Progressing").and_then(|c| c.reason.clone());
        let was_paused = reason.as_deref() == Some(status::PAUSED);
        if paused && !was_paused {
            set_condition(
                st,
                new_condition(
                    "Progressing",
                    "Unknown",
                    status::PAUSED,
                    "Deployment is paused".into(),
                    now,
                ),
            );
        } else if !paused && was_paused {
            set_condition(
                st,
                new_condition(
                    "Progressing",
                    "Unknown",
                    status::RESUMED,
                    "Deployment is resumed".into(),
                    now,
                ),
            );
        }
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet's desired-replicas annotation differs.
    fn scaling_event(&self) -> bool {
        self.owned.iter().any(|r| {
            r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0
                && r.annotations()
                    .get(replicasets::DESIRED)
                    .and_then(|v| v.parse::<i32>().ok())
                    .is_some_and(|v| v != self.desired)
        })
    }

    async fn scale_to(&self, rs: &ReplicaSet, n: i32) -> Result<bool> {
        replicasets::scale(&self.api, rs, n, self.desired, self.desired + self.surge).await
    }

    /// Finds or creates the new ReplicaSet and keeps revisions in order (upstream
    /// `getAllReplicaSetsAndSyncRevision`).
    async fn sync_revision(&mut self, create: bool) -> Result<Option<Arc<ReplicaSet>>> {
        let (new, old) = self.split();
        let max_old = old.iter().map(|r| revision(r)).max().unwrap_or(0);
        let new_rev = max_old + 1;
        let max = self.desired + self.surge;
        let now = self.now();
        let new = match new {
            Some(rs) => {
                let ann = replicasets::rs_annotations(
                    &self.d,
                    rs.annotations(),
                    new_rev,
                    self.desired,
                    max,
                );
                if &ann != rs.annotations() {
                    let upd = write::merge(
                        &self.api,
                        &rs.name_any(),
                        json!({"metadata": {"annotations": ann}}),
                    )
                    .await?;
                    self.replace_owned(upd);
                }
                if status::progress_deadline(&self.d).is_some() {
                    let st = self.d.status.get_or_insert_with(Default::default);
                    if condition(st, "Progressing").is_none() {
                        set_condition(
                            st,
                            new_condition(
                                "Progressing",
                                "True",
                                status::FOUND_NEW_RS,
                                format!("Found new replica set \"{}\"", rs.name_any()),
                                now,
                            ),
                        );
                    }
                }
                self.split().0
            }
            None if create => {
                let all: Vec<RsCounts> = self.owned.iter().map(|r| counts(r)).collect();
                let zero = RsCounts {
                    name: String::new(),
                    replicas: 0,
                    available: 0,
                };
                let replicas = if self.rolling {
                    rollout::new_rs_replicas(self.desired, self.surge, &all, &zero)
                } else {
                    self.desired
                };
                let rs = replicasets::create_new(
                    &self.api,
                    &self.d,
                    replicas,
                    new_rev,
                    self.desired,
                    max,
                )
                .await?;
                if status::progress_deadline(&self.d).is_some() {
                    let st = self.d.status.get_or_insert_with(Default::default);
                    set_condition(
                        st,
                        new_condition(
                            "Progressing",
                            "True",
                            status::NEW_RS_CREATED,
                            format!("Created new replica set \"{}\"", rs.name_any()),
                            now,
                        ),
                    );
                }
                let rs = Arc::new(rs);
                self.owned.push(rs.clone());
                Some(rs)
            }
            None => None,
        };
        if let Some(rs) = &new {
            let rev = revision(rs).to_string();
            if self.d.annotations().get(REVISION) != Some(&rev) {
                let dapi: Api<Deployment> = self.ctx.api(&self.d.namespace().unwrap_or_default());
                let upd = write::merge(
                    &dapi,
                    &self.d.name_any(),
                    json!({"metadata": {"annotations": {REVISION: rev}}}),
                )
                .await?;
                self.d.metadata = upd.metadata;
            }
        }
        Ok(new)
    }

    fn replace_owned(&mut self, rs: ReplicaSet) {
        if let Some(slot) = self
            .owned
            .iter_mut()
            .find(|r| r.metadata.uid == rs.metadata.uid)
        {
            *slot = Arc::new(rs);
        }
    }

    /// Upstream `scale`: the single active set takes the whole size, a saturated new set
    /// retires the old ones, otherwise the change is spread proportionally.
    async fn sync_scale(&mut self, paused: bool) -> Result<()> {
        let new = self.sync_revision(false).await?;
        let (_, old) = self.split();
        let active: Vec<&Arc<ReplicaSet>> = self
            .owned
            .iter()
            .filter(|r| r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
            .collect();
        let target = match active.len() {
            0 => new.clone().or_else(|| {
                let mut o = old.clone();
                o.sort_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
                o.last().cloned()
            }),
            1 => Some(active[0].clone()),
            _ => None,
        };
        if let Some(rs) = target {
            self.scale_to(&rs, self.desired).await?;
        } else if let Some(n) = new.as_ref().filter(|n| {
            let c = counts(n);
            c.replicas == self.desired && c.available == self.desired
        }) {
            let _ = n;
            for rs in &old {
                self.scale_to(rs, 0).await?;
            }
        } else if self.rolling {
            let mut sets: Vec<Arc<ReplicaSet>> = active.into_iter().cloned().collect();
            let total: i32 = sets.iter().map(|r| counts(r).replicas).sum();
            let to_add = self.desired + self.surge - total;
            if to_add > 0 {
                sets.sort_by_key(|r| {
                    std::cmp::Reverse(r.metadata.creation_timestamp.as_ref().map(|t| t.0))
                });
            } else {
                sets.sort_by_key(|r| std::cmp::Reverse(counts(r).replicas));
            }
            let c: Vec<RsCounts> = sets.iter().map(|r| counts(r)).collect();
            let sizes = rollout::proportional(&c, to_add);
            for (rs, n) in sets.iter().zip(sizes) {
                self.scale_to(rs, n).await?;
            }
        }
        if paused {
            self.cleanup(&old).await?;
        }
        Ok(())
    }

    async fn cleanup(&self, old: &[Arc<ReplicaSet>]) -> Result<()> {
        let refs: Vec<&Arc<ReplicaSet>> = old.iter().collect();
        for rs in replicasets::history_to_delete(&self.d, &refs) {
            info!(replicaset = %rs.name_any(), "deleting old replica set (revision history limit)");
            write::delete(&self.api, &rs.name_any()).await?;
        }
        Ok(())
    }

    /// Upstream `rolloutRolling`.
    async fn rolling(&mut self) -> Result<Action> {
        let new = self.sync_revision(true).await?;
        let (_, old) = self.split();
        if let Some(n) = &new {
            let c = counts(n);
            let target = if c.replicas > self.desired {
                self.desired
            } else {
                let all: Vec<RsCounts> = self.owned.iter().map(|r| counts(r)).collect();
                rollout::new_rs_replicas(self.desired, self.surge, &all, &c)
            };
            if target != c.replicas && self.scale_to(n, target).await? {
                return self.write_status(true).await;
            }
        }
        let mut old_sorted = old.clone();
        old_sorted.sort_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let old_counts: Vec<RsCounts> = old_sorted.iter().map(|r| counts(r)).collect();
        let changes = rollout::scale_down_old(
            self.desired,
            self.max_unavailable,
            &old_counts,
            new.as_ref().map(|n| counts(n)).as_ref(),
        );
        let mut scaled = false;
        for (name, n) in changes {
            if let Some(rs) = old_sorted.iter().find(|r| r.name_any() == name) {
                scaled |= self.scale_to(rs, n).await?;
            }
        }
        if scaled {
            return self.write_status(true).await;
        }
        let st = self.status_now(true, new.as_deref());
        if status::complete(&self.d, &st) {
            self.cleanup(&old).await?;
        }
        self.write_status(true).await
    }

    /// Upstream `rolloutRecreate`.
    async fn recreate(&mut self) -> Result<Action> {
        let new = self.sync_revision(false).await?;
        let (_, old) = self.split();
        let mut scaled = false;
        for rs in old.iter().filter(|r| counts(r).replicas > 0) {
            scaled |= self.scale_to(rs, 0).await?;
        }
        if scaled || self.old_pods_running(&old) {
            return self.write_status(true).await;
        }
        let new = match new {
            Some(n) => n,
            None => match self.sync_revision(true).await? {
                Some(n) => n,
                None => return self.write_status(true).await,
            },
        };
        self.scale_to(&new, self.desired).await?;
        let st = self.status_now(true, Some(&new));
        if status::complete(&self.d, &st) {
            self.cleanup(&old).await?;
        }
        self.write_status(true).await
    }

    fn old_pods_running(&self, old: &[Arc<ReplicaSet>]) -> bool {
        if old
            .iter()
            .any(|r| r.status.as_ref().is_some_and(|s| s.replicas > 0))
        {
            return true;
        }
        let uids: Vec<&str> = old
            .iter()
            .filter_map(|r| r.metadata.uid.as_deref())
            .collect();
        let ns = self.d.namespace().unwrap_or_default();
        crate::replicaset::pods_in(self.ctx, &ns)
            .iter()
            .any(|p: &Arc<Pod>| {
                controller_ref(&p.metadata).is_some_and(|r| uids.contains(&r.uid.as_str()))
                    && !matches!(crate::pods::phase(p), "Succeeded" | "Failed")
            })
    }

    fn status_now(
        &self,
        rollout: bool,
        new: Option<&ReplicaSet>,
    ) -> k8s_openapi::api::apps::v1::DeploymentStatus {
        let all: Vec<&ReplicaSet> = self.owned.iter().map(|r| r.as_ref()).collect();
        let now = self.now();
        let mut st = status::calculate(&self.d, &all, new, self.max_unavailable, now);
        if rollout {
            status::rollout_conditions(&self.d, &mut st, new, &all, now);
        }
        st
    }

    /// Computes and writes the status; requeues a rollout that may still time out.
    async fn write_status(&mut self, rollout: bool) -> Result<Action> {
        let (new, _) = self.split();
        let st = self.status_now(rollout, new.as_deref());
        let before = self
            .ctx
            .informers
            .deployments
            .store()
            .get(&ObjectRef::from_obj(&self.d))
            .and_then(|d| d.status.clone());
        if before.as_ref() != Some(&st) {
            let mut upd = self.d.clone();
            upd.status = Some(st.clone());
            if let Some(cur) = self
                .ctx
                .informers
                .deployments
                .store()
                .get(&ObjectRef::from_obj(&self.d))
            {
                upd.metadata.resource_version = cur.metadata.resource_version.clone();
            }
            let dapi: Api<Deployment> = self.ctx.api(&self.d.namespace().unwrap_or_default());
            write::replace_status(&dapi, &upd).await?;
        }
        if rollout && !status::complete(&self.d, &st) {
            if let (Some(deadline), Some(c)) = (
                status::progress_deadline(&self.d),
                condition(&st, "Progressing"),
            ) {
                if c.status == "True" {
                    if let Some(t) = &c.last_update_time {
                        let due = t.0 + SignedDuration::from_secs(i64::from(deadline) + 1);
                        let wait = due.duration_since(self.now()).as_secs().max(1);
                        return Ok(Action::requeue(Duration::from_secs(wait as u64)));
                    }
                }
            }
        }
        Ok(Action::await_change())
    }
}
