//! A node's certificates through CertificateSigningRequests, after it joined: renewing its
//! client certificate with the current one (upstream's kubelet certificate manager sends a
//! new CSR authenticated as `system:node:<name>`, which the approver accepts as
//! `selfnodeclient`), and getting a serving certificate from the
//! `kubernetes.io/kubelet-serving` signer.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;

use crate::join::JoinError;

/// Signer of kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Signer of kubelet serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
pub use bramble_pki::{node_user_name, NODES_GROUP};
/// Fraction of a certificate's lifetime after which it is renewed.
pub const RENEW_FRACTION: f64 = 0.8;

/// A node's credentials: the kubeconfig the kubelet keeps in its data directory.
#[derive(Clone)]
pub struct NodeCredentials {
    /// Where they are stored.
    pub path: PathBuf,
    /// The API server URL.
    pub server: String,
    /// The cluster CA, PEM.
    pub ca_pem: String,
    /// The client certificate, PEM.
    pub cert_pem: String,
    /// Its key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for NodeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCredentials")
            .field("path", &self.path)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

fn kubeconfig_error(path: &Path, message: impl std::fmt::Display) -> JoinError {
    JoinError::Kubeconfig {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn decode_data(path: &Path, what: &str, b64: Option<&str>) -> Result<String, JoinError> {
    let b64 = b64.ok_or_else(|| kubeconfig_error(path, format!("no {what}")))?;
    STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| kubeconfig_error(path, format!("{what} does not decode")))
}

impl NodeCredentials {
    /// Reads the kubeconfig at `path` (embedded CA, client certificate and key).
    pub fn read(path: &Path) -> Result<NodeCredentials, JoinError> {
        let kc = Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(path, e))?;
        let cluster = kc
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .ok_or_else(|| kubeconfig_error(path, "no cluster"))?;
        let user = kc
            .auth_infos
            .first()
            .and_then(|u| u.auth_info.as_ref())
            .ok_or_else(|| kubeconfig_error(path, "no user"))?;
        // The key is a secret string in kube's types; its serialization shows it.
        let key = serde_json::to_value(user)
            .ok()
            .and_then(|u| u["client-key-data"].as_str().map(str::to_string));
        Ok(NodeCredentials {
            path: path.to_path_buf(),
            server: cluster
                .server
                .clone()
                .ok_or_else(|| kubeconfig_error(path, "no server"))?,
            ca_pem: decode_data(
                path,
                "certificate-authority-data",
                cluster.certificate_authority_data.as_deref(),
            )?,
            cert_pem: decode_data(
                path,
                "client-certificate-data",
                user.client_certificate_data.as_deref(),
            )?,
            key_pem: decode_data(path, "client-key-data", key.as_deref())?,
        })
    }

    /// Writes them to `self.path` (mode 0600).
    pub fn write(&self) -> Result<(), JoinError> {
        bramble_pki::write_kubeconfig(
            &self.path,
            &self.server,
            &self.ca_pem,
            bramble_pki::KubeconfigUser::ClientCert {
                cert_pem: self.cert_pem.clone(),
                key_pem: self.key_pem.clone(),
            },
            "default",
        )?;
        Ok(())
    }

    /// The certificate's notBefore and notAfter (seconds since the epoch).
    pub fn validity(&self) -> Result<(i64, i64), JoinError> {
        Ok(bramble_pki::validity_unix(&self.cert_pem)?)
    }

    /// When the certificate should be renewed: after [`RENEW_FRACTION`] of its lifetime,
    /// counted from when it was written here when that is later than its notBefore
    /// (signers backdate notBefore, which would otherwise eat short lifetimes).
    pub fn renew_at(&self) -> Result<i64, JoinError> {
        let (not_before, not_after) = self.validity()?;
        let written = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(not_before, |d| d.as_secs() as i64);
        let from = not_before.max(written).min(not_after);
        Ok(from + ((not_after - from) as f64 * RENEW_FRACTION) as i64)
    }

    /// A client authenticating with these credentials.
    pub async fn client(&self) -> Result<Client, JoinError> {
        client_of(&kubeconfig_yaml(
            &self.server,
            Some(&self.ca_pem),
            json!({"client-certificate-data": STANDARD.encode(&self.cert_pem),
                   "client-key-data": STANDARD.encode(&self.key_pem)}),
        ))
        .await
    }
}

/// A kubeconfig text for `server`: trusting `ca_pem` (or nothing checked when `None`, only
/// for CA discovery), with the user fields `user`.
pub(crate) fn kubeconfig_yaml(
    server: &str,
    ca_pem: Option<&str>,
    user: serde_json::Value,
) -> String {
    let cluster = match ca_pem {
        Some(ca) => json!({"server": server, "certificate-authority-data": STANDARD.encode(ca)}),
        None => json!({"server": server, "insecure-skip-tls-verify": true}),
    };
    json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x"})
    .to_string()
}

pub(crate) async fn client_of(yaml: &str) -> Result<Client, JoinError> {
    let kc = Kubeconfig::from_yaml(yaml).map_err(|e| JoinError::Config(e.to_string()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| JoinError::Config(e.to_string()))?;
    Client::try_from(config).map_err(|e| JoinError::Config(e.to_string()))
}

/// A signed certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The CertificateSigningRequest's name.
    pub csr_name: String,
    /// The certificate, PEM.
    pub cert_pem: String,
}

/// Sends a CSR for `csr_pem` to `signer` with `usages` and waits up to `timeout` for its
/// certificate; a Denied or Failed condition ends the wait with [`JoinError::NotIssued`].
pub async fn request_certificate(
    client: Client,
    csr_pem: &str,
    signer: &str,
    usages: &[&str],
    timeout: Duration,
) -> Result<Issued, JoinError> {
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let csr: CertificateSigningRequest = serde_json::from_value(json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "node-csr-"},
        "spec": {"request": STANDARD.encode(csr_pem), "signerName": signer, "usages": usages}
    }))
    .map_err(|e| JoinError::Config(e.to_string()))?;
    let created = api
        .create(&PostParams::default(), &csr)
        .await
        .map_err(JoinError::Request)?;
    let name = created.metadata.name.clone().unwrap_or_default();
    tracing::info!(csr = %name, signer, "sent certificate signing request");
    let started = Instant::now();
    loop {
        let current = api.get(&name).await.map_err(JoinError::Request)?;
        if let Some(st) = &current.status {
            if let Some(c) = st
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "Denied" || c.type_ == "Failed")
            {
                return Err(JoinError::NotIssued {
                    name,
                    reason: c.type_.to_lowercase(),
                    message: c.message.clone().unwrap_or_default(),
                });
            }
            if let Some(cert) = &st.certificate {
                let cert_pem = String::from_utf8(cert.0.clone())
                    .map_err(|_| JoinError::ClusterInfo("certificate is not PEM".into()))?;
                return Ok(Issued {
                    csr_name: name,
                    cert_pem,
                });
            }
        }
        if started.elapsed() > timeout {
            return Err(JoinError::Timeout {
                name,
                waited: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Renews the client certificate of `current` (a new key, a CSR sent with the current
/// certificate) and writes the new credentials where `current` came from.
#[tracing::instrument(skip_all, fields(node = %node_name))]
pub async fn renew_client_certificate(
    current: &NodeCredentials,
    node_name: &str,
    timeout: Duration,
) -> Result<NodeCredentials, JoinError> {
    let (csr_pem, key_pem) =
        bramble_pki::new_client_csr(&node_user_name(node_name), &[NODES_GROUP])?;
    let issued = request_certificate(
        current.client().await?,
        &csr_pem,
        KUBELET_CLIENT_SIGNER,
        &["digital signature", "client auth"],
        timeout,
    )
    .await?;
    let renewed = NodeCredentials {
        cert_pem: issued.cert_pem,
        key_pem,
        ..current.clone()
    };
    renewed.write()?;
    tracing::info!(csr = %issued.csr_name, path = %renewed.path.display(), "renewed client certificate");
    Ok(renewed)
}

/// Gets a serving certificate for node `node_name` with DNS names `dns` and addresses `ips`
/// from the `kubernetes.io/kubelet-serving` signer: `(cert_pem, key_pem)`.
#[tracing::instrument(skip_all, fields(node = %node_name))]
pub async fn request_serving_certificate(
    client: Client,
    node_name: &str,
    dns: &[String],
    ips: &[IpAddr],
    timeout: Duration,
) -> Result<(String, String), JoinError> {
    let (csr_pem, key_pem) =
        bramble_pki::new_serving_csr(&node_user_name(node_name), &[NODES_GROUP], dns, ips)?;
    let issued = request_certificate(
        client,
        &csr_pem,
        KUBELET_SERVING_SIGNER,
        &["digital signature", "server auth"],
        timeout,
    )
    .await?;
    Ok((issued.cert_pem, key_pem))
}

/// When a certificate valid from `not_before` to `not_after`, received at `received`, is
/// renewed (unix seconds).
fn renewal_time(received: i64, not_before: i64, not_after: i64) -> i64 {
    let from = received.max(not_before);
    from + ((not_after - from) as f64 * RENEW_FRACTION) as i64
}

/// Keeps node `node_name` supplied with a serving certificate from the
/// `kubernetes.io/kubelet-serving` signer: asks for one, hands it to `install`, and asks for
/// the next after [`RENEW_FRACTION`] of its lifetime; failures are retried with backoff.
/// With `files`, a still-valid stored certificate is installed first (its renewal waits for
/// its own schedule) and every new one is stored. Runs until the task is dropped.
pub async fn keep_serving_certificate(
    client: Client,
    node_name: String,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    files: Option<crate::serving_files::ServingCertFiles>,
    install: impl Fn(&str, &str) -> bool + Send,
) {
    let now = chrono::Utc::now().timestamp();
    if let Some((cert, key)) = files.as_ref().and_then(|f| f.load_valid(now)) {
        if let Ok((not_before, not_after)) = bramble_pki::validity_unix(&cert) {
            // the stored certificate's age is unknown: renew at the fraction of its lifetime
            let at = renewal_time(not_before, not_before, not_after);
            if install(&cert, &key) {
                tracing::info!(
                    renew_in = at - now,
                    "installed the stored serving certificate"
                );
                if at > now {
                    tokio::time::sleep(Duration::from_secs((at - now) as u64)).await;
                }
            }
        }
    }
    let mut retry = Duration::from_secs(2);
    loop {
        let got = request_serving_certificate(
            client.clone(),
            &node_name,
            &dns,
            &ips,
            Duration::from_secs(120),
        )
        .await;
        let wait = match got.and_then(|(cert, key)| {
            let received = chrono::Utc::now().timestamp();
            let (not_before, not_after) = bramble_pki::validity_unix(&cert)?;
            let installed = install(&cert, &key);
            if installed {
                if let Some(Err(e)) = files.as_ref().map(|f| f.save(&cert, &key)) {
                    tracing::warn!(error = %e, "serving certificate not stored");
                }
            }
            Ok((
                installed,
                received,
                renewal_time(received, not_before, not_after),
            ))
        }) {
            Ok((true, from, at)) => {
                retry = Duration::from_secs(2);
                tracing::info!(renew_in = at - from, "installed serving certificate");
                Duration::from_secs((at - chrono::Utc::now().timestamp()).max(1) as u64)
            }
            Ok((false, _, _)) => {
                retry = (retry * 2).min(Duration::from_secs(300));
                retry
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?retry, "no serving certificate");
                retry = (retry * 2).min(Duration::from_secs(300));
                retry
            }
        };
        tokio::time::sleep(wait).await;
    }
}
