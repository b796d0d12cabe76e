//! ControllerRevisions for DaemonSets and StatefulSets: one per distinct pod template,
//! named `<owner>-<hash>`, numbered in the order templates became current, and trimmed to
//! `revisionHistoryLimit` (upstream `controller_history.go`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::PostParams;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::context::Ctx;
use crate::error::Result;
use crate::hash::compute_hash;
use crate::meta::{controlled_by, new_controller_ref};
use crate::write;

/// Label naming a pod's (and a revision's) template hash.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// The revision data upstream stores: a patch replacing the pod template.
pub fn revision_data(template: &PodTemplateSpec) -> serde_json::Value {
    let mut t = serde_json::to_value(template).unwrap_or_default();
    if let Some(o) = t.as_object_mut() {
        o.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The revisions `owner` controls, from the cache.
pub fn owned_revisions<K: Resource>(ctx: &Ctx, owner: &K) -> Vec<Arc<ControllerRevision>> {
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let ns = owner.meta().namespace.clone();
    ctx.informers
        .revisions
        .list_namespace(ns.as_deref().unwrap_or_default())
        .into_iter()
        .filter(|r| controlled_by(&r.metadata, &uid))
        .collect()
}

/// The revision for `template` (created, or renumbered as the newest when an older one
/// matches), with the hash it is named by.
pub async fn ensure<K>(
    ctx: &Ctx,
    owner: &K,
    template: &PodTemplateSpec,
    collision_count: Option<i32>,
) -> Result<ControllerRevision>
where
    K: Resource<DynamicType = ()>,
{
    let ns = owner.meta().namespace.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = ctx.api(&ns);
    let data = revision_data(template);
    let owned = owned_revisions(ctx, owner);
    let max = owned.iter().map(|r| r.revision).max().unwrap_or(0);
    if let Some(existing) = owned
        .iter()
        .filter(|r| r.data.as_ref().map(|d| &d.0) == Some(&data))
        .max_by_key(|r| r.revision)
    {
        if existing.revision == max {
            return Ok((**existing).clone());
        }
        return write::merge(&api, &existing.name_any(), json!({"revision": max + 1})).await;
    }
    let hash = compute_hash(template, collision_count);
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.into(), hash.clone());
    let rev = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{owner_name}-{hash}")),
            namespace: Some(ns),
            labels: Some(labels),
            owner_references: Some(vec![new_controller_ref(owner)]),
            ..Default::default()
        },
        data: Some(RawExtension(data.clone())),
        revision: max + 1,
    };
    match api.create(&PostParams::default(), &rev).await {
        Ok(r) => {
            info!(revision = %r.name_any(), "created controller revision");
            Ok(r)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get(&rev.name_any()).await?;
            if existing.data.as_ref().map(|d| &d.0) == Some(&data) {
                return Ok(existing);
            }
            Err(crate::Error::Invalid(format!(
                "controller revision {} exists with other data (hash collision)",
                rev.name_any()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The hash part of a revision's name (`<owner>-<hash>`).
pub fn hash_of(rev: &ControllerRevision) -> String {
    rev.labels()
        .get(REVISION_HASH_LABEL)
        .cloned()
        .unwrap_or_default()
}

/// Deletes the oldest revisions beyond `limit` whose names are not `in_use`.
pub async fn trim(
    ctx: &Ctx,
    owned: &[Arc<ControllerRevision>],
    in_use: &[String],
    limit: i32,
) -> Result<()> {
    let mut spare: Vec<&Arc<ControllerRevision>> = owned
        .iter()
        .filter(|r| !in_use.contains(&r.name_any()))
        .collect();
    let limit = limit.max(0) as usize;
    if spare.len() <= limit {
        return Ok(());
    }
    spare.sort_by_key(|r| r.revision);
    let n = spare.len() - limit;
    for r in spare.into_iter().take(n) {
        let api: Api<ControllerRevision> = ctx.api(&r.namespace().unwrap_or_default());
        write::delete(&api, &r.name_any()).await?;
    }
    Ok(())
}
