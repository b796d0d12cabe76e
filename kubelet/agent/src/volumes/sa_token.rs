//! Projected service-account tokens through the TokenRequest API, bound to the pod, cached
//! per (audience, expiry) and renewed once 80% of their lifetime has passed or they are a
//! day old (upstream's token manager).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

use super::error::VolumeError;

/// Upstream's default `expirationSeconds` of a projected token source.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// A token older than this is renewed whatever its expiry.
const MAX_TTL_SECONDS: i64 = 24 * 3600;

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    issued: DateTime<Utc>,
    expires: DateTime<Utc>,
}

impl Cached {
    /// Renew after 80% of the lifetime, or after a day.
    fn needs_refresh(&self, now: DateTime<Utc>) -> bool {
        let ttl = (self.expires - self.issued).num_seconds();
        let age = (now - self.issued).num_seconds();
        age * 10 >= ttl * 8 || age >= MAX_TTL_SECONDS
    }
}

/// One pod's tokens.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: HashMap<(String, Option<String>, i64), Cached>,
}

impl TokenCache {
    /// A valid token for the pod's service account with `audience` (the API server's
    /// audiences when `None`) and `expiration_seconds`.
    pub async fn get(
        &mut self,
        client: &Client,
        pod: &Pod,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<String, VolumeError> {
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = (sa.clone(), audience.map(str::to_string), expiration_seconds);
        let now = Utc::now();
        if let Some(c) = self.tokens.get(&key).filter(|c| !c.needs_refresh(now)) {
            return Ok(c.token.clone());
        }
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
        let resp: TokenRequest = api
            .create_subresource("token", &sa, &PostParams::default(), &req)
            .await
            .map_err(|e| {
                VolumeError::Setup(format!(
                    "failed to fetch token: {}",
                    match &e {
                        kube::Error::Api(s) => s.message.clone(),
                        other => other.to_string(),
                    }
                ))
            })?;
        let status = resp
            .status
            .ok_or_else(|| VolumeError::Setup("failed to fetch token: no status".into()))?;
        let expires =
            DateTime::from_timestamp(status.expiration_timestamp.0.as_second(), 0).unwrap_or(now);
        self.tokens.insert(
            key,
            Cached {
                token: status.token.clone(),
                issued: now,
                expires,
            },
        );
        Ok(status.token)
    }

    /// When the earliest cached token needs renewing (the worker resyncs by then).
    pub fn next_refresh(&self) -> Option<DateTime<Utc>> {
        self.tokens
            .values()
            .map(|c| {
                let ttl = (c.expires - c.issued).num_seconds();
                c.issued + chrono::Duration::seconds((ttl * 8 / 10).min(MAX_TTL_SECONDS))
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_at_eighty_percent() {
        let issued = Utc::now();
        let c = Cached {
            token: "t".into(),
            issued,
            expires: issued + chrono::Duration::seconds(1000),
        };
        assert!(!c.needs_refresh(issued + chrono::Duration::seconds(799)));
        assert!(c.needs_refresh(issued + chrono::Duration::seconds(800)));
    }
}
