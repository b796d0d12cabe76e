//! Writes the controllers share: status replacement, adoption and release of dependents
//! (owner references patched under the resourceVersion the cache saw), deletions that
//! tolerate "already gone".

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::error::Result;

/// Replaces `obj`'s status (PUT on the status subresource; a conflict is retried by the
/// caller's back-off on the next reconcile).
pub async fn replace_status<K>(api: &Api<K>, obj: &K) -> Result<()>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    api.replace_status(&obj.name_any(), &PostParams::default(), obj)
        .await?;
    Ok(())
}

/// Sets `obj`'s owner references to `refs` (adoption or release).
pub async fn set_owner_refs<K>(api: &Api<K>, obj: &K, refs: Vec<OwnerReference>) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.resource_version(),
    }});
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Adds a controller reference to an orphan (upstream `AdoptPod`).
pub async fn adopt<K>(api: &Api<K>, obj: &K, controller: OwnerReference) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut refs = obj.meta().owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != controller.uid);
    refs.push(controller);
    set_owner_refs(api, obj, refs).await
}

/// Drops the owner reference to `owner_uid` (upstream `ReleasePod`).
pub async fn release<K>(api: &Api<K>, obj: &K, owner_uid: &str) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut refs = obj.meta().owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner_uid);
    match set_owner_refs(api, obj, refs).await {
        Err(crate::Error::Kube(kube::Error::Api(s))) if s.code == 404 => Ok(()),
        other => other,
    }
}

/// Deletes `name`, Background propagation; already gone is fine.
pub async fn delete<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A merge patch of `obj`.
pub async fn merge<K>(api: &Api<K>, name: &str, patch: serde_json::Value) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    Ok(api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?)
}
