//! secret volumes: as configMap volumes ([`super::configmap::make_payload`]), from the
//! Secret's `data`, on a tmpfs so secret material never reaches the node's disk.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::error::VolumeError;

/// Reads a Secret (`None` when it does not exist).
pub async fn fetch(client: &Client, ns: &str, name: &str) -> Result<Option<Secret>, VolumeError> {
    Ok(Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?)
}

/// A Secret's entries as bytes.
pub fn entries(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    // `stringData` is write-only in the API; a stored object never has it, but an object
    // from a static manifest may.
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.as_bytes().to_vec());
    }
    out
}
