//! Claiming dependents by selector, as upstream's `ControllerRefManager`: keep what is
//! controlled by us and still matches, adopt matching orphans, release what no longer
//! matches.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tracing::debug;

use crate::error::Result;
use crate::meta::{controller_ref, is_terminating, labels, selector_matches};
use crate::write;

/// Claims `candidates` for the controller `owner`; returns what it now controls.
pub async fn claim<K>(
    api: &Api<K>,
    owner: &OwnerReference,
    owner_deleting: bool,
    selector: &LabelSelector,
    candidates: Vec<Arc<K>>,
) -> Result<Vec<Arc<K>>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut owned = Vec::new();
    for c in candidates {
        let meta = c.meta();
        let matches = selector_matches(selector, labels(meta));
        match controller_ref(meta) {
            Some(r) if r.uid == owner.uid => {
                if matches {
                    owned.push(c);
                } else if !owner_deleting {
                    debug!(name = ?meta.name, owner = %owner.name, "releasing");
                    write::release(api, &c, &owner.uid).await?;
                }
            }
            Some(_) => {}
            None => {
                if matches && !owner_deleting && !is_terminating(meta) {
                    debug!(name = ?meta.name, owner = %owner.name, "adopting");
                    match write::adopt(api, &c, owner.clone()).await {
                        Ok(()) => owned.push(c),
                        Err(crate::Error::Kube(kube::Error::Api(s))) if s.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    Ok(owned)
}
