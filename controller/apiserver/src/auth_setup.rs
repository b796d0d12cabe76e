//! Wiring of authentication and authorization into the controller: the authenticator with
//! its service-account signing key, the default RBAC objects, and the auth background loops.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use bramble_auth::jwt::{TokenSigner, DEFAULT_ISSUER};
use bramble_pki::ClusterPki;
use bramble_store::Store;

use crate::auth::Authenticator;
use crate::errors::ServerError;
use crate::state::ApiState;

/// File name of the service-account signing key in the PKI directory.
pub const SA_KEY_FILE: &str = "sa.key";

/// Loads the service-account signing key (PKCS#8 PEM, `sa.key` in `pki_dir`), creating it
/// with mode 0600 at first start.
pub fn load_or_create_sa_signer(pki_dir: &Path) -> Result<TokenSigner, ServerError> {
    let path = pki_dir.join(SA_KEY_FILE);
    let io = |source| ServerError::Io {
        path: path.clone(),
        source,
    };
    let bad = |m: String| ServerError::Io {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, m),
    };
    let der = match std::fs::read_to_string(&path) {
        Ok(pem) => {
            let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            STANDARD
                .decode(b64.trim())
                .map_err(|e| bad(e.to_string()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let der = TokenSigner::generate_pkcs8().map_err(|e| bad(e.to_string()))?;
            let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
            for chunk in STANDARD.encode(&der).as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                pem.push('\n');
            }
            pem.push_str("-----END PRIVATE KEY-----\n");
            let tmp = path.with_extension("key.tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(pem.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
            der
        }
        Err(e) => return Err(io(e)),
    };
    TokenSigner::from_pkcs8(&der, DEFAULT_ISSUER).map_err(|e| bad(e.to_string()))
}

/// The store the API serves from: `lmdb` with Secrets encrypted at rest, the key in
/// `<data_dir>/encryption.key`.
pub fn encrypted_store(
    data_dir: &Path,
    lmdb: Arc<dyn Store>,
) -> Result<Arc<dyn Store>, ServerError> {
    let cipher = crate::encrypted_store::load_or_create_cipher(data_dir)?;
    Ok(Arc::new(crate::encrypted_store::EncryptedStore::new(
        lmdb, cipher,
    )))
}

/// The controller's authenticator: static tokens from the PKI, bootstrap tokens and
/// service-account tokens checked against `store`.
pub fn authenticator(
    pki: &ClusterPki,
    store: Arc<dyn Store>,
) -> Result<Authenticator, ServerError> {
    let signer = load_or_create_sa_signer(pki.dir())?;
    Ok(Authenticator::new(pki.token_authenticator())
        .with_store(store)
        .with_service_account_signer(Arc::new(signer)))
}

/// The review resources (create-only, never stored), registered for discovery so kubectl
/// can map their kinds; [`crate::auth_routes`] serves them.
pub const REVIEW_RESOURCES: &[(&str, &str, &str, bool)] = &[
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    (
        "authentication.k8s.io",
        "tokenreviews",
        "TokenReview",
        false,
    ),
];

fn register_reviews(registry: &bramble_api::registry::Registry) {
    for (group, resource, kind, namespaced) in REVIEW_RESOURCES {
        if registry.find(group, "v1", resource).is_some() {
            continue;
        }
        registry.insert(bramble_api::ResourceInfo {
            group: group.to_string(),
            version: "v1".into(),
            resource: resource.to_string(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.to_string(),
            list_kind: format!("{kind}List"),
            namespaced: *namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: vec!["create".into()],
            subresources: Vec::new(),
            decode: None,
        });
    }
}

/// What must exist before serving: the review resources in discovery, the default RBAC
/// objects and `cluster-info`.
pub async fn ensure_defaults(state: &Arc<ApiState>, pki: &ClusterPki) -> Result<(), ServerError> {
    register_reviews(&state.registry);
    crate::rbac_bootstrap::ensure_defaults(state).await?;
    ensure_cluster_info(state, pki.ca_cert_pem()).await
}

/// The `cluster-info` ConfigMap in `kube-public`, as kubeadm writes it: a kubeconfig with
/// only the cluster (server and CA), which joining nodes read before they have credentials
/// and check against their CA hash. Rewritten when the server address or CA changed.
pub async fn ensure_cluster_info(state: &Arc<ApiState>, ca_pem: &str) -> Result<(), ServerError> {
    let kubeconfig = format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://{}\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {{}}\nusers: null\n",
        STANDARD.encode(ca_pem),
        state.api_endpoint()
    );
    let key = "core/configmaps/kube-public/cluster-info";
    let fail = |status| ServerError::Bootstrap {
        what: key.to_string(),
        status,
    };
    match state.store.get(key)? {
        None => {
            let info = state
                .registry
                .find("", "v1", "configmaps")
                .ok_or_else(|| fail(bramble_api::Status::internal("configmaps not registered")))?;
            let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cluster-info"}, "data": {"kubeconfig": kubeconfig}});
            match crate::handlers::create_object(state, &info, Some("kube-public"), cm, false).await
            {
                Ok(_) => Ok(()),
                Err(s) if s.reason == bramble_api::Reason::AlreadyExists => Ok(()),
                Err(s) => Err(fail(s)),
            }
        }
        Some(kv) => {
            let mut cm = crate::objects::decode_stored(&kv.value).map_err(fail)?;
            if cm.pointer("/data/kubeconfig").and_then(|v| v.as_str()) == Some(kubeconfig.as_str())
            {
                return Ok(());
            }
            cm["data"]["kubeconfig"] = serde_json::json!(kubeconfig);
            let op = bramble_store::Op::Update {
                key: key.to_string(),
                value: cm,
                expected_revision: Some(kv.mod_revision),
            };
            state.store.txn(vec![op]).await?;
            Ok(())
        }
    }
}

/// Starts the auth background loops: ClusterRole aggregation, the `default` ServiceAccount
/// and `kube-root-ca.crt` ConfigMap in every namespace, and the CSR approver and signer
/// (not started if the CA key cannot be read).
pub fn spawn_loops(state: &Arc<ApiState>, authn: &Arc<Authenticator>, pki: &ClusterPki) {
    tokio::spawn(crate::rbac_bootstrap::run_aggregation(state.clone()));
    tokio::spawn(crate::sa_controller::run(
        state.clone(),
        pki.ca_cert_pem().to_string(),
    ));
    let key_path = pki.dir().join(bramble_pki::CA_KEY_FILE);
    match std::fs::read_to_string(&key_path) {
        Ok(key_pem) => {
            let ca = crate::csr::CaFiles {
                cert_pem: pki.ca_cert_pem().to_string(),
                key_pem,
            };
            tokio::spawn(crate::csr::run(state.clone(), authn.clone(), ca));
        }
        Err(e) => {
            tracing::warn!(path = %key_path.display(), error = %e, "CA key unreadable; CSRs will not be signed")
        }
    }
}
