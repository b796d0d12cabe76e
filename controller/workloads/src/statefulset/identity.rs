//! A StatefulSet pod's identity (upstream `stateful_set_utils.go`): ordinal names, the
//! identity labels, hostname/subdomain, and its PersistentVolumeClaims from the claim
//! templates with the retention policy's owner references.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;

use crate::meta::new_controller_ref;
use crate::pods;
use crate::revision::REVISION_HASH_LABEL;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// `<set>-<ordinal>`.
pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// The ordinal of a pod named `<set>-<n>`, if it is one of the set's names.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// `<claim template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The pod for `ordinal` at revision `revision` (its name is the hash label value).
pub fn new_pod(set: &StatefulSet, ordinal: i32, revision: &str) -> Pod {
    let spec = set.spec.clone().unwrap_or_default();
    let name = pod_name(&set.name_any(), ordinal);
    let mut pod = pods::from_template(
        &spec.template,
        &set.namespace().unwrap_or_default(),
        None,
        Some(name.clone()),
        new_controller_ref(set),
    );
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_HASH_LABEL.into(), revision.to_string());
    if let Some(ps) = pod.spec.as_mut() {
        ps.hostname = Some(name.clone());
        if !spec.service_name.clone().unwrap_or_default().is_empty() {
            ps.subdomain = spec.service_name.clone();
        }
        let volumes = ps.volumes.get_or_insert_with(Vec::new);
        for t in spec.volume_claim_templates.iter().flatten() {
            let tname = t.metadata.name.clone().unwrap_or_default();
            volumes.retain(|v| v.name != tname);
            volumes.push(Volume {
                name: tname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(&tname, &set.name_any(), ordinal),
                    read_only: None,
                }),
                ..Default::default()
            });
        }
    }
    pod
}

fn plain_owner(r: OwnerReference) -> OwnerReference {
    OwnerReference {
        controller: None,
        block_owner_deletion: Some(true),
        ..r
    }
}

/// The claims for `ordinal`, with owner references as the retention policy asks
/// (`whenDeleted: Delete` owns them by the set).
pub fn claims(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let spec = set.spec.clone().unwrap_or_default();
    let when_deleted = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_deleted.clone())
        .unwrap_or_else(|| "Retain".into());
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            let owners =
                (when_deleted == "Delete").then(|| vec![plain_owner(new_controller_ref(set))]);
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&tname, &set.name_any(), ordinal)),
                    namespace: set.namespace(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    owner_references: owners,
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_round_trip_through_names() {
        assert_eq!(pod_name("web", 3), "web-3");
        assert_eq!(ordinal_of("web", "web-3"), Some(3));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(claim_name("data", "web", 0), "data-web-0");
    }
}
