//! A Deployment's ReplicaSets: finding the new one, creating it, scaling, revisions and
//! history cleanup (upstream `deployment/sync.go`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::error::{Error, Result};
use crate::hash::compute_hash;
use crate::meta::new_controller_ref;
use crate::write;

/// Label carrying the template hash on ReplicaSets and their pods.
pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX: &str = "deployment.kubernetes.io/max-replicas";
const SKIP_COPY: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED,
    MAX,
    "deprecated.deployment.rollback.to",
];

/// The revision annotation as a number (0 when absent).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn without_hash(t: &PodTemplateSpec) -> serde_json::Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    if let Some(l) = v
        .pointer_mut("/metadata/labels")
        .and_then(|l| l.as_object_mut())
    {
        l.remove(HASH_LABEL);
        if l.is_empty() {
            v["metadata"].as_object_mut().map(|m| m.remove("labels"));
        }
    }
    if v.pointer("/metadata")
        .and_then(|m| m.as_object())
        .is_some_and(|m| m.is_empty())
    {
        v.as_object_mut().map(|m| m.remove("metadata"));
    }
    v
}

/// Templates equal apart from the hash label (upstream `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

fn created(rs: &ReplicaSet) -> (Option<jiff::Timestamp>, String) {
    (
        rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        rs.name_any(),
    )
}

/// Splits `owned` into the new ReplicaSet (oldest with the Deployment's template) and the rest.
pub fn split_new<'a>(
    d: &Deployment,
    owned: &'a [Arc<ReplicaSet>],
) -> (Option<&'a Arc<ReplicaSet>>, Vec<&'a Arc<ReplicaSet>>) {
    let template = d
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut sorted: Vec<&Arc<ReplicaSet>> = owned.iter().collect();
    sorted.sort_by_key(|r| created(r));
    let new = sorted.iter().copied().find(|r| {
        r.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| equal_ignore_hash(t, &template))
    });
    let old = sorted
        .into_iter()
        .filter(|r| new.is_none_or(|n| n.metadata.uid != r.metadata.uid))
        .collect();
    (new, old)
}

/// The annotations a Deployment's ReplicaSet carries: the Deployment's own (minus upstream's
/// skip list), revision, desired and max replicas.
pub fn rs_annotations(
    d: &Deployment,
    existing: &BTreeMap<String, String>,
    revision: i64,
    desired: i32,
    max: i32,
) -> BTreeMap<String, String> {
    let mut a = existing.clone();
    for (k, v) in d.annotations() {
        if !SKIP_COPY.contains(&k.as_str()) {
            a.insert(k.clone(), v.clone());
        }
    }
    let old_rev: i64 = a.get(REVISION).and_then(|v| v.parse().ok()).unwrap_or(0);
    if old_rev < revision {
        a.insert(REVISION.into(), revision.to_string());
    }
    a.insert(DESIRED.into(), desired.to_string());
    a.insert(MAX.into(), max.to_string());
    a
}

/// Sets `rs` to `replicas` with the desired/max annotations (upstream `scaleReplicaSet`);
/// returns whether anything changed.
pub async fn scale(
    api: &Api<ReplicaSet>,
    rs: &ReplicaSet,
    replicas: i32,
    desired: i32,
    max: i32,
) -> Result<bool> {
    let cur = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ann = rs.annotations();
    let same_ann =
        ann.get(DESIRED) == Some(&desired.to_string()) && ann.get(MAX) == Some(&max.to_string());
    if cur == replicas && same_ann {
        return Ok(false);
    }
    info!(replicaset = %rs.name_any(), from = cur, to = replicas, "scaling replica set");
    write::merge(
        api,
        &rs.name_any(),
        json!({
            "metadata": {"annotations": {DESIRED: desired.to_string(), MAX: max.to_string()}},
            "spec": {"replicas": replicas},
        }),
    )
    .await?;
    Ok(cur != replicas)
}

/// Creates the new ReplicaSet for the Deployment's template; on a name collision with a
/// different template bumps `status.collisionCount` and fails (upstream `getNewReplicaSet`).
pub async fn create_new(
    api: &Api<ReplicaSet>,
    d: &Deployment,
    replicas: i32,
    revision: i64,
    desired: i32,
    max: i32,
) -> Result<ReplicaSet> {
    let spec = d.spec.clone().unwrap_or_default();
    let collision = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = compute_hash(&spec.template, collision);
    let mut template = spec.template.clone();
    let tmeta = template.metadata.get_or_insert_with(Default::default);
    tmeta
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.clone());
    let mut selector: LabelSelector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.clone());
    let name = format!("{}-{}", d.name_any(), hash);
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: d.namespace(),
            labels: tmeta.labels.clone(),
            annotations: Some(rs_annotations(d, &BTreeMap::new(), revision, desired, max)),
            owner_references: Some(vec![new_controller_ref(d)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    match api.create(&PostParams::default(), &rs).await {
        Ok(created) => {
            info!(deployment = %d.name_any(), replicaset = %name, "created new replica set");
            Ok(created)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get(&name).await?;
            let ours = crate::meta::controlled_by(
                &existing.metadata,
                d.metadata.uid.as_deref().unwrap_or(""),
            );
            let same = existing
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &spec.template));
            if ours && same {
                return Ok(existing);
            }
            let api_d: Api<Deployment> = Api::namespaced(
                api.clone().into_client(),
                d.namespace().as_deref().unwrap_or("default"),
            );
            let mut bumped = d.clone();
            let st = bumped.status.get_or_insert_with(Default::default);
            st.collision_count = Some(collision.unwrap_or(0) + 1);
            write::replace_status(&api_d, &bumped).await?;
            Err(Error::Invalid(format!(
                "hash collision for replica set {name}; collisionCount bumped"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Old ReplicaSets beyond `revisionHistoryLimit` that are fully scaled down, oldest
/// revision first (upstream `cleanupDeployment`).
pub fn history_to_delete<'a>(
    d: &Deployment,
    old: &[&'a Arc<ReplicaSet>],
) -> Vec<&'a Arc<ReplicaSet>> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let mut live: Vec<&Arc<ReplicaSet>> = old
        .iter()
        .copied()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect();
    if live.len() <= limit {
        return Vec::new();
    }
    let diff = live.len() - limit;
    live.sort_by_key(|r| (revision(r), created(r)));
    live.into_iter()
        .filter(|r| {
            let st = r.status.clone().unwrap_or_default();
            r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) == 0
                && st.replicas == 0
                && st.observed_generation >= r.metadata.generation
        })
        .take(diff)
        .collect()
}
