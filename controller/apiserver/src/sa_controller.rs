//! Per-namespace service-account objects, as upstream's serviceaccounts controller and
//! root-ca-cert-publisher: every active namespace gets the `default` ServiceAccount and the
//! `kube-root-ca.crt` ConfigMap holding the cluster CA.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tracing::{debug, warn};

use bramble_store::{ListOptions, Op};

use crate::handlers::create_object;
use crate::objects::{decode_stored, is_terminating, meta_str};
use crate::sa_admission::ROOT_CA_CONFIGMAP;
use crate::state::ApiState;

/// Creates what is missing in every namespace; returns how many objects it wrote.
pub async fn reconcile(state: &Arc<ApiState>, ca_pem: &str) -> usize {
    let Ok(namespaces) = state.store.list("core/namespaces/", ListOptions::default()) else {
        return 0;
    };
    let mut written = 0;
    for kv in namespaces.items {
        let Ok(ns) = decode_stored(&kv.value) else {
            continue;
        };
        if is_terminating(&ns) {
            continue;
        }
        let name = meta_str(&ns, "name").unwrap_or("").to_string();
        let sa_key = format!("core/serviceaccounts/{name}/default");
        if matches!(state.store.get(&sa_key), Ok(None)) {
            if let Some(info) = state.registry.find("", "v1", "serviceaccounts") {
                let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
                match create_object(state, &info, Some(&name), sa, false).await {
                    Ok(_) => written += 1,
                    Err(s) => {
                        debug!(namespace = %name, status = %s, "default service account not created")
                    }
                }
            }
        }
        let cm_key = format!("core/configmaps/{name}/{ROOT_CA_CONFIGMAP}");
        match state.store.get(&cm_key) {
            Ok(None) => {
                if let Some(info) = state.registry.find("", "v1", "configmaps") {
                    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": ROOT_CA_CONFIGMAP,
                                     "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                        "data": {"ca.crt": ca_pem}});
                    if create_object(state, &info, Some(&name), cm, false)
                        .await
                        .is_ok()
                    {
                        written += 1;
                    }
                }
            }
            Ok(Some(kv)) => {
                // a rotated CA is published again
                if let Ok(mut cm) = decode_stored(&kv.value) {
                    if cm.pointer("/data/ca.crt").and_then(Value::as_str) != Some(ca_pem) {
                        cm["data"]["ca.crt"] = json!(ca_pem);
                        let op = Op::Update {
                            key: cm_key,
                            value: cm,
                            expected_revision: Some(kv.mod_revision),
                        };
                        if state.store.txn(vec![op]).await.is_ok() {
                            written += 1;
                        }
                    }
                }
            }
            Err(_) => {}
        }
    }
    written
}

/// Runs until the process ends: reconciles at start and after every namespace change, and
/// when a default account or the CA ConfigMap is deleted.
pub async fn run(state: Arc<ApiState>, ca_pem: String) {
    loop {
        let from = state.store.current_revision();
        reconcile(&state, &ca_pem).await;
        let watches = [
            "core/namespaces/",
            "core/serviceaccounts/",
            "core/configmaps/",
        ]
        .map(|p| state.store.watch(p, from));
        let mut streams = Vec::new();
        for w in watches {
            match w {
                Ok(s) => streams.push(s),
                Err(e) => warn!(error = %e, "service account controller watch failed"),
            }
        }
        if streams.is_empty() {
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        let mut merged = futures::stream::select_all(streams);
        let _ = tokio::time::timeout(Duration::from_secs(60), merged.next()).await;
    }
}
