//! ServiceAccount admission for new pods, as upstream's plugin: `serviceAccountName`
//! defaults to `default`, the account must exist, and unless `automountServiceAccountToken`
//! (of the pod, else of the account) is false, a projected `kube-api-access-<suffix>` volume
//! with the token, the cluster CA and the namespace is mounted read-only in every container
//! at `/var/run/secrets/kubernetes.io/serviceaccount`.

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use serde_json::{json, Value};

use bramble_api::{Reason, Status};

use crate::body::{self, Response};
use crate::body_util::{decode_created, with_warnings};
use crate::handlers::{create_object, not_found};
use crate::objects::{decode_stored, generate_name_suffix, meta_str};
use crate::query::Query;
use crate::state::ApiState;

/// Where the token volume is mounted.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The ConfigMap with the cluster CA in every namespace.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Lifetime of projected tokens (upstream's 3607 s, which marks them as kubelet-rotated).
pub const PROJECTED_TOKEN_SECONDS: i64 = 3607;

/// Serves a pod create after the ServiceAccount admission.
pub async fn create_pod(
    state: &Arc<ApiState>,
    namespace: &str,
    req: Request<Incoming>,
) -> Response {
    let Some(info) = state.registry.find("", "v1", "pods") else {
        return body::status(&not_found());
    };
    let dry_run = match Query::parse(req.uri().query()).dry_run() {
        Ok(d) => d,
        Err(s) => return body::status(&s),
    };
    let decoded = match decode_created(req, &info).await {
        Ok(d) => d,
        Err(s) => return body::status(&s),
    };
    let mut pod = decoded.obj;
    ensure_default_account(state, namespace).await;
    if let Err(s) = admit(state, namespace, &mut pod) {
        return body::status(&s);
    }
    let mut warnings = decoded.warnings;
    match crate::admission::pod_security(state, namespace, &pod) {
        Ok(w) => warnings.extend(w),
        Err(s) => return body::status(&s),
    }
    match create_object(state, &info, Some(namespace), pod, dry_run).await {
        Ok(stored) => with_warnings(body::raw_json(201, stored), &warnings),
        Err(s) => body::status(&s),
    }
}

/// Creates the `default` ServiceAccount of a namespace that has none yet, so a pod created
/// right after its namespace does not race the service-account controller.
async fn ensure_default_account(state: &Arc<ApiState>, namespace: &str) {
    let key = format!("core/serviceaccounts/{namespace}/default");
    if !matches!(state.store.get(&key), Ok(None)) {
        return;
    }
    if let Some(info) = state.registry.find("", "v1", "serviceaccounts") {
        let sa =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
        // fails harmlessly when the namespace is missing or terminating, or it now exists
        let _ = create_object(state, &info, Some(namespace), sa, false).await;
    }
}

/// Mutates and checks a new pod of `namespace`.
pub fn admit(state: &ApiState, namespace: &str, pod: &mut Value) -> Result<(), Status> {
    // mirror pods (static pods of a kubelet) may not use service accounts
    if pod
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some()
    {
        return Ok(());
    }
    if !pod.get("spec").is_some_and(Value::is_object) {
        return Ok(());
    }
    let name = meta_str(pod, "name")
        .or_else(|| meta_str(pod, "generateName"))
        .unwrap_or("")
        .to_string();
    let spec = &mut pod["spec"];
    let sa_name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec["serviceAccountName"] = json!(sa_name);
    // The deprecated alias upstream keeps equal; updates would otherwise appear to change it.
    spec["serviceAccount"] = json!(sa_name);
    let forbidden = |msg: String| {
        let mut s = Status::new(
            Reason::Forbidden,
            format!("pods {name:?} is forbidden: {msg}"),
        );
        s.name = Some(name.clone());
        s.group = Some(String::new());
        s.kind = Some("pods".into());
        s
    };
    let sa = match state
        .store
        .get(&format!("core/serviceaccounts/{namespace}/{sa_name}"))
    {
        Ok(Some(kv)) => decode_stored(&kv.value)?,
        Ok(None) => {
            return Err(forbidden(format!(
                "error looking up service account {namespace}/{sa_name}: serviceaccount {sa_name:?} not found"
            )))
        }
        Err(e) => return Err(Status::internal(e.to_string())),
    };
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if !automount {
        return Ok(());
    }
    let all_containers = ["containers", "initContainers"];
    let already_mounted = all_containers.iter().any(|k| {
        spec.get(*k).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("volumeMounts")
                    .and_then(Value::as_array)
                    .is_some_and(|m| {
                        m.iter()
                            .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH))
                    })
            })
        })
    });
    if already_mounted {
        return Ok(());
    }
    let volume_name = format!("kube-api-access-{}", generate_name_suffix());
    let volume = json!({
        "name": volume_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": PROJECTED_TOKEN_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]
        }
    });
    if !spec.get("volumes").is_some_and(Value::is_array) {
        spec["volumes"] = json!([]);
    }
    spec["volumes"].as_array_mut().expect("array").push(volume);
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": MOUNT_PATH});
    for k in all_containers {
        if let Some(cs) = spec.get_mut(k).and_then(Value::as_array_mut) {
            for c in cs {
                if !c.get("volumeMounts").is_some_and(Value::is_array) {
                    c["volumeMounts"] = json!([]);
                }
                c["volumeMounts"]
                    .as_array_mut()
                    .expect("array")
                    .push(mount.clone());
            }
        }
    }
    Ok(())
}
