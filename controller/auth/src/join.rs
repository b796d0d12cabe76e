//! Joining a node to the cluster, as `kubeadm join` does for the kubelet's client
//! credentials: read the `cluster-info` ConfigMap (anonymously, without trusting the server
//! yet), pin its CA with the CA hash the operator gave (`sha256:<hex>` of the CA's
//! SubjectPublicKeyInfo), then, trusting only that CA and authenticating with the bootstrap
//! token, send a CertificateSigningRequest for `system:node:<name>` in `system:nodes`, wait
//! until the controller approves and signs it, and write a kubeconfig with the new client
//! certificate.
//!
//! The kubelet calls [`join`] at first start when it has a join address and token but no
//! kubeconfig yet:
//!
//! ```no_run
//! # async fn f() -> Result<(), bramble_auth::join::JoinError> {
//! use bramble_auth::join::{join, JoinConfig};
//! let joined = join(&JoinConfig::new(
//!     "https://192.168.1.10:6443",
//!     "abcdef.0123456789abcdef",
//!     vec!["sha256:0f3c...".into()],
//!     "pi-2",
//!     "/var/lib/bramble/kubelet/kubeconfig",
//! ))
//! .await?;
//! # let _ = joined; Ok(()) }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::Kubeconfig;
use kube::Api;
use serde_json::json;

use crate::bootstrap_token::BootstrapToken;
use crate::certs::{
    client_of, kubeconfig_yaml, node_user_name, request_certificate, KUBELET_CLIENT_SIGNER,
    NODES_GROUP,
};

/// What [`join`] needs.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// The controller's URL, `https://<address>:6443`.
    pub server: String,
    /// The bootstrap token, `abcdef.0123456789abcdef`.
    pub token: String,
    /// Accepted CA hashes (`sha256:<hex>`); at least one is required.
    pub ca_cert_hashes: Vec<String>,
    /// This node's name: the certificate is for `system:node:<node_name>`.
    pub node_name: String,
    /// Where the kubeconfig with the new credentials is written (mode 0600).
    pub kubeconfig_path: PathBuf,
    /// How long to wait for the certificate.
    pub timeout: Duration,
}

impl JoinConfig {
    /// A join configuration with a 5-minute timeout.
    pub fn new(
        server: impl Into<String>,
        token: impl Into<String>,
        ca_cert_hashes: Vec<String>,
        node_name: impl Into<String>,
        kubeconfig_path: impl Into<PathBuf>,
    ) -> JoinConfig {
        JoinConfig {
            server: server.into(),
            token: token.into(),
            ca_cert_hashes,
            node_name: node_name.into(),
            kubeconfig_path: kubeconfig_path.into(),
            timeout: Duration::from_secs(300),
        }
    }
}

/// The credentials a join produced (also written to the kubeconfig).
#[derive(Debug, Clone)]
pub struct Joined {
    /// The cluster CA, PEM.
    pub ca_pem: String,
    /// The node's client certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The name of the CertificateSigningRequest that was signed.
    pub csr_name: String,
}

/// Why a join failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("bootstrap token is not of the form [a-z0-9]{{6}}.[a-z0-9]{{16}}")]
    MalformedToken,
    #[error("no CA hash given: refusing to trust the server's CA without one")]
    NoCaHash,
    #[error("reading cluster-info from {server}: {source}")]
    Discovery {
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error("cluster-info: {0}")]
    ClusterInfo(String),
    #[error("the cluster CA's hash {actual} matches none of the given CA hashes")]
    CaHashMismatch { actual: String },
    #[error("client configuration: {0}")]
    Config(String),
    #[error("the controller rejected bootstrap token {token_id} (expired, deleted or never created): {message}")]
    TokenRejected { token_id: String, message: String },
    #[error("certificate signing request: {0}")]
    Request(#[source] kube::Error),
    #[error("certificate signing request {name} was {reason}: {message}")]
    NotIssued {
        name: String,
        reason: String,
        message: String,
    },
    #[error("no certificate for {name} after {waited:?}")]
    Timeout { name: String, waited: Duration },
    #[error("pki: {0}")]
    Pki(#[from] bramble_pki::PkiError),
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
}

/// Reads `cluster-info` without trusting the server and returns its CA if its hash is one
/// of `hashes`.
pub async fn discover_ca(server: &str, hashes: &[String]) -> Result<String, JoinError> {
    if hashes.is_empty() {
        return Err(JoinError::NoCaHash);
    }
    let insecure = client_of(&kubeconfig_yaml(server, None, json!({}))).await?;
    let cm = Api::<ConfigMap>::namespaced(insecure, "kube-public")
        .get("cluster-info")
        .await
        .map_err(|source| JoinError::Discovery {
            server: server.to_string(),
            source,
        })?;
    let text = cm
        .data
        .and_then(|d| d.get("kubeconfig").cloned())
        .ok_or_else(|| JoinError::ClusterInfo("no kubeconfig key".into()))?;
    let kc = Kubeconfig::from_yaml(&text).map_err(|e| JoinError::ClusterInfo(e.to_string()))?;
    let ca_b64 = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .ok_or_else(|| JoinError::ClusterInfo("no certificate-authority-data".into()))?;
    let ca_pem = STANDARD
        .decode(ca_b64.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            JoinError::ClusterInfo("certificate-authority-data does not decode".into())
        })?;
    let actual = bramble_pki::ca_cert_hash(&ca_pem)?;
    if !hashes.iter().any(|h| h.eq_ignore_ascii_case(&actual)) {
        return Err(JoinError::CaHashMismatch { actual });
    }
    Ok(ca_pem)
}

/// Joins: verifies the CA, sends the CSR, waits for the certificate, writes the kubeconfig.
#[tracing::instrument(skip_all, fields(server = %cfg.server, node = %cfg.node_name))]
pub async fn join(cfg: &JoinConfig) -> Result<Joined, JoinError> {
    BootstrapToken::parse(&cfg.token).map_err(|_| JoinError::MalformedToken)?;
    let ca_pem = discover_ca(&cfg.server, &cfg.ca_cert_hashes).await?;
    let bootstrap = client_of(&kubeconfig_yaml(
        &cfg.server,
        Some(&ca_pem),
        json!({ "token": cfg.token }),
    ))
    .await?;
    let (csr_pem, key_pem) =
        bramble_pki::new_client_csr(&node_user_name(&cfg.node_name), &[NODES_GROUP])?;
    let issued = request_certificate(
        bootstrap,
        &csr_pem,
        KUBELET_CLIENT_SIGNER,
        &["digital signature", "client auth"],
        cfg.timeout,
    )
    .await
    .map_err(|e| match e {
        JoinError::Request(kube::Error::Api(status)) if status.code == 401 => {
            JoinError::TokenRejected {
                token_id: cfg.token[..6].to_string(),
                message: status.message,
            }
        }
        other => other,
    })?;
    let cert_pem = issued.cert_pem;
    let name = issued.csr_name;
    bramble_pki::write_kubeconfig(
        &cfg.kubeconfig_path,
        &cfg.server,
        &ca_pem,
        bramble_pki::KubeconfigUser::ClientCert {
            cert_pem: cert_pem.clone(),
            key_pem: key_pem.clone(),
        },
        "default",
    )?;
    tracing::info!(path = %cfg.kubeconfig_path.display(), "joined: wrote kubeconfig");
    Ok(Joined {
        ca_pem,
        cert_pem,
        key_pem,
        csr_name: name,
    })
}
