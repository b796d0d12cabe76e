//! What exists after first start: the default namespaces and the `kubernetes` Service with
//! endpoints pointing at this controller.

use std::net::Ipv4Addr;
use std::sync::Arc;

use serde_json::{json, Value};

use bramble_api::Status;
use bramble_store::{Op, StoreError};

use crate::errors::ServerError;
use crate::handlers::create_object;
use crate::state::ApiState;

pub const DEFAULT_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates what is missing; leaves what exists (a restart changes nothing but a moved
/// advertise address).
pub async fn ensure_defaults(state: &Arc<ApiState>) -> Result<(), ServerError> {
    for ns in DEFAULT_NAMESPACES {
        ensure(
            state,
            "",
            "v1",
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    let (net, _) = state.settings.service_cidr;
    let first = Ipv4Addr::from(u32::from(net) + 1).to_string();
    let port = state.settings.port;
    ensure(
        state,
        "",
        "v1",
        "services",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": first, "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}
        }),
    )
    .await?;
    let ip = state.settings.advertise_address.to_string();
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    });
    ensure_current(state, "", "v1", "endpoints", "default", endpoints).await?;
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]
    });
    ensure_current(
        state,
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "default",
        slice,
    )
    .await
}

async fn ensure(
    state: &Arc<ApiState>,
    group: &str,
    version: &str,
    resource: &str,
    namespace: Option<&str>,
    obj: Value,
) -> Result<(), ServerError> {
    let info = state
        .registry
        .find(group, version, resource)
        .ok_or_else(|| ServerError::Bootstrap {
            what: resource.to_string(),
            status: Status::internal("resource not registered"),
        })?;
    // A restart finds it: one read instead of a create through admission that fails.
    let name = obj.pointer("/metadata/name").and_then(Value::as_str);
    if state
        .store
        .get(&info.store_key(namespace, name.unwrap_or_default()))?
        .is_some()
    {
        return Ok(());
    }
    match create_object(state, &info, namespace, obj, false).await {
        Ok(_) => Ok(()),
        Err(s) if s.reason == bramble_api::Reason::AlreadyExists => Ok(()),
        Err(status) => Err(ServerError::Bootstrap {
            what: format!("{resource} (default)"),
            status,
        }),
    }
}

/// Creates the object, or rewrites its addresses when they no longer match this controller.
async fn ensure_current(
    state: &Arc<ApiState>,
    group: &str,
    version: &str,
    resource: &str,
    namespace: &str,
    desired: Value,
) -> Result<(), ServerError> {
    let info = state
        .registry
        .find(group, version, resource)
        .ok_or_else(|| ServerError::Bootstrap {
            what: resource.to_string(),
            status: Status::internal("resource not registered"),
        })?;
    let key = info.store_key(Some(namespace), "kubernetes");
    let Some(current) = state.store.get(&key)? else {
        // Written as the API server's own record, as upstream's endpoint reconciler does:
        // a loopback address is fine here, though clients may not set one.
        let mut obj = desired;
        bramble_api::defaults::apply(&info, &mut obj);
        crate::objects::stamp_create(&mut obj).map_err(|status| ServerError::Bootstrap {
            what: key.clone(),
            status,
        })?;
        return match state.store.txn(vec![Op::Create { key, value: obj }]).await {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        };
    };
    let mut obj: Value =
        serde_json::from_slice(&current.value).map_err(|e| ServerError::Bootstrap {
            what: key.clone(),
            status: Status::internal(e.to_string()),
        })?;
    let mut changed = false;
    for field in ["subsets", "endpoints", "ports"] {
        if let Some(want) = desired.get(field) {
            if obj.get(field) != Some(want) {
                obj[field] = want.clone();
                changed = true;
            }
        }
    }
    if changed {
        match state
            .store
            .txn(vec![Op::Update {
                key,
                value: obj,
                expected_revision: Some(current.mod_revision),
            }])
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Controller, ControllerConfig};
    use k8s_openapi::api::core::v1::{Namespace, Service};
    use kube::api::{Api, DeleteParams};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_keeps_the_defaults_and_puts_back_a_deleted_one() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ControllerConfig::new(dir.path().join("c"), "127.0.0.1:0".parse().unwrap());
        let controller = Controller::start(&cfg).await.unwrap();
        let client = controller.in_process_client("admin");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let services: Api<Service> = Api::namespaced(client, "default");
        let before = namespaces.get("kube-system").await.unwrap().metadata;
        services
            .delete("kubernetes", &DeleteParams::default())
            .await
            .unwrap();
        // What a restart's start-up does, on the same store.
        super::ensure_defaults(&controller.state).await.unwrap();
        let after = namespaces.get("kube-system").await.unwrap().metadata;
        assert_eq!(after.uid, before.uid);
        assert_eq!(after.resource_version, before.resource_version);
        let back = services.get("kubernetes").await.unwrap();
        assert_eq!(back.spec.unwrap().cluster_ip.as_deref(), Some("10.43.0.1"));
    }
}
