//! projected volumes: configMap, secret, downwardAPI and serviceAccountToken sources merged
//! into one payload (the default `kube-api-access-*` volume is one of these: token, `ca.crt`
//! from the `kube-root-ca.crt` ConfigMap, and `namespace`).

use k8s_openapi::api::core::v1::{Pod, ProjectedVolumeSource};
use kube::Client;

use super::atomic_writer::{FileProjection, Payload};
use super::configmap::{self, make_payload, DEFAULT_MODE};
use super::downward_api::{self, NodeAllocatable};
use super::error::VolumeError;
use super::sa_token::{TokenCache, DEFAULT_EXPIRATION_SECONDS};
use super::secret;

/// The merged payload of a projected volume.
pub async fn payload(
    client: &Client,
    pod: &Pod,
    src: &ProjectedVolumeSource,
    tokens: &mut TokenCache,
    node: NodeAllocatable,
) -> Result<Payload, VolumeError> {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
    let mut out = Payload::new();
    for s in src.sources.iter().flatten() {
        if let Some(c) = &s.config_map {
            let optional = c.optional.unwrap_or(false);
            let cm = configmap::fetch(client, &ns, &c.name).await?;
            if cm.is_none() && !optional {
                return Err(VolumeError::Setup(format!(
                    "configmap {:?} not found",
                    c.name
                )));
            }
            let entries = cm.as_ref().map(configmap::entries);
            out.extend(make_payload(
                entries.as_ref(),
                c.items.as_deref(),
                mode,
                optional,
                "configmap",
            )?);
        }
        if let Some(c) = &s.secret {
            let optional = c.optional.unwrap_or(false);
            let sec = secret::fetch(client, &ns, &c.name).await?;
            if sec.is_none() && !optional {
                return Err(VolumeError::Setup(format!("secret {:?} not found", c.name)));
            }
            let entries = sec.as_ref().map(secret::entries);
            out.extend(make_payload(
                entries.as_ref(),
                c.items.as_deref(),
                mode,
                optional,
                "secret",
            )?);
        }
        if let Some(d) = &s.downward_api {
            out.extend(downward_api::make_payload(
                pod,
                d.items.as_deref().unwrap_or(&[]),
                mode,
                node,
            )?);
        }
        if let Some(t) = &s.service_account_token {
            let token = tokens
                .get(
                    client,
                    pod,
                    t.audience.as_deref().filter(|a| !a.is_empty()),
                    t.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS),
                )
                .await?;
            out.insert(
                t.path.clone(),
                FileProjection {
                    data: token.into_bytes(),
                    mode: mode as u32,
                },
            );
        }
    }
    Ok(out)
}
