//! The reconcile loop: every change to a claim, volume or pod (and every resync period)
//! makes sure the default class exists, gives classless claims the default class,
//! provisions and binds claims whose first consumer is on a node, and deletes volumes whose
//! claim is gone.

use std::time::Duration;

use futures::{stream, FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use tracing::{info, warn};

use crate::error::Error;
use crate::provision::{
    bound_claim_status, consumer_node, storage_class, volume_for, volume_name, wants_volume,
};
use crate::{CLASS_NAME, DEFAULT_STORAGE_ROOT, PROVISIONER};

/// Settings of the provisioner.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The directory on each node volumes are made under.
    pub storage_root: String,
    /// Full reconcile period besides watch events.
    pub resync: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            storage_root: DEFAULT_STORAGE_ROOT.into(),
            resync: Duration::from_secs(30),
        }
    }
}

/// Runs until a watch fails.
pub async fn run(client: Client, cfg: StorageConfig) -> Result<(), Error> {
    let pvcs: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let wc = watcher::Config::default;
    let mut triggers = stream::select(
        stream::select(
            watcher(pvcs, wc()).map(|e| e.map(drop)).boxed(),
            watcher(pods, wc()).map(|e| e.map(drop)).boxed(),
        ),
        watcher(pvs, wc()).map(|e| e.map(drop)).boxed(),
    );
    loop {
        if let Err(e) = reconcile(&client, &cfg).await {
            warn!(error = %e, "storage reconcile failed");
        }
        tokio::select! {
            ev = triggers.next() => match ev {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            _ = tokio::time::sleep(cfg.resync) => {}
        }
        // Batch a burst of events into one reconcile: wait a little, then take every event
        // already there.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while let Some(ev) = triggers.next().now_or_never() {
            match ev {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            }
        }
    }
}

/// One pass over claims and volumes.
pub async fn reconcile(client: &Client, cfg: &StorageConfig) -> Result<(), Error> {
    let classes: Api<StorageClass> = Api::all(client.clone());
    if classes.get_opt(CLASS_NAME).await?.is_none() {
        match classes
            .create(&PostParams::default(), &storage_class())
            .await
        {
            Ok(_) => info!(class = CLASS_NAME, "created the default StorageClass"),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let claims = Api::<PersistentVolumeClaim>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    // Pods matter only to claims waiting for their first consumer: no full pod list while
    // there is none (a pod list per pod event made a 10,000-pod cluster spin).
    let pods = if claims.iter().any(wants_volume) {
        Api::<Pod>::all(client.clone())
            .list(&ListParams::default())
            .await?
            .items
    } else {
        Vec::new()
    };
    let pv_api: Api<PersistentVolume> = Api::all(client.clone());
    for pvc in &claims {
        let ns = pvc.metadata.namespace.clone().unwrap_or_default();
        let name = pvc.metadata.name.clone().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
        let class = pvc
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_ref());
        let unbound = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .is_none_or(str::is_empty);
        if class.is_none() && unbound {
            // Retroactive default StorageClass assignment.
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"storageClassName": CLASS_NAME}})),
            )
            .await?;
            continue;
        }
        if !wants_volume(pvc) {
            continue;
        }
        let Some(node) = consumer_node(pvc, &pods) else {
            continue;
        };
        let pv = match pv_api.get_opt(&volume_name(pvc)).await? {
            Some(pv) => pv,
            None => {
                let pv = volume_for(pvc, &node, &cfg.storage_root);
                let created = pv_api.create(&PostParams::default(), &pv).await?;
                info!(claim = %format!("{ns}/{name}"), %node, volume = ?created.metadata.name, "provisioned volume");
                created
            }
        };
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        pv_api
            .patch_status(
                &pv_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Bound"}})),
            )
            .await?;
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {
                    "pv.kubernetes.io/bind-completed": "yes",
                    "pv.kubernetes.io/bound-by-controller": "yes",
                    "volume.kubernetes.io/storage-provisioner": PROVISIONER,
                }},
                "spec": {"volumeName": pv_name},
            })),
        )
        .await?;
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": bound_claim_status(&pv)})),
        )
        .await?;
    }
    // Volumes whose claim is gone (or was recreated under a new uid) are deleted.
    for pv in pv_api.list(&ListParams::default()).await?.items {
        let ours = pv
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("pv.kubernetes.io/provisioned-by"))
            .is_some_and(|p| p == PROVISIONER);
        let Some(claim) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
            continue;
        };
        if !ours {
            continue;
        }
        let exists = claims.iter().any(|c| {
            c.metadata.namespace == claim.namespace
                && c.metadata.name == claim.name
                && c.metadata.uid == claim.uid
        });
        if !exists {
            let pv_name = pv.metadata.name.clone().unwrap_or_default();
            info!(volume = %pv_name, "claim gone; deleting volume");
            match pv_api.delete(&pv_name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
