//! The kubelet's API client from its flags: a kubeconfig file, or a server URL with a bearer
//! token and an optional CA bundle.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::KubeletError;

/// How the kubelet reaches the API server.
#[derive(Debug, Clone)]
pub enum ApiAccess {
    /// A kubeconfig file (its current context).
    Kubeconfig(PathBuf),
    /// A URL and bearer token, trusting `ca` (PEM) when given.
    Token {
        /// `https://host:port`.
        server: String,
        /// Bearer token.
        token: String,
        /// CA bundle.
        ca: Option<PathBuf>,
    },
}

fn cfg_err(e: impl std::fmt::Display) -> KubeletError {
    KubeletError::Config(e.to_string())
}

/// Builds the client.
pub async fn client(access: &ApiAccess) -> Result<Client, KubeletError> {
    let config = match access {
        ApiAccess::Kubeconfig(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| cfg_err(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(cfg_err)?
        }
        ApiAccess::Token { server, token, ca } => {
            let mut c = Config::new(server.parse().map_err(cfg_err)?);
            let value = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(cfg_err)?;
            c.headers.push((http::header::AUTHORIZATION, value));
            if let Some(ca) = ca {
                c.root_cert = Some(pem_certs(ca)?);
            }
            c
        }
    };
    let mut config = config;
    // upstream's kubelet User-Agent: its writes' field manager is `kubelet`
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!(
            "kubelet/v1.33.0 bramble/",
            env!("CARGO_PKG_VERSION")
        )),
    ));
    Client::try_from(config).map_err(KubeletError::Api)
}

/// DER certificates of a PEM bundle.
fn pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, KubeletError> {
    let text = std::fs::read_to_string(path).map_err(KubeletError::io("read", path))?;
    let mut out = Vec::new();
    let mut b64 = String::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = true;
            b64.clear();
        } else if line == "-----END CERTIFICATE-----" {
            inside = false;
            use base64::Engine;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(&b64)
                    .map_err(|e| cfg_err(format!("{}: {e}", path.display())))?,
            );
        } else if inside {
            b64.push_str(line);
        }
    }
    if out.is_empty() {
        return Err(cfg_err(format!("{}: no PEM certificate", path.display())));
    }
    Ok(out)
}

/// The cluster CA (PEM) of the API access: `--certificate-authority`, or the current
/// context's cluster in the kubeconfig. The streaming server checks client certificates
/// against it.
pub fn cluster_ca_pem(access: &ApiAccess) -> Option<String> {
    match access {
        ApiAccess::Token { ca, .. } => ca.as_ref().and_then(|p| std::fs::read_to_string(p).ok()),
        ApiAccess::Kubeconfig(path) => {
            let kc = Kubeconfig::read_from(path).ok()?;
            let ctx_name = kc.current_context.clone()?;
            let cluster_name = kc
                .contexts
                .iter()
                .find(|c| c.name == ctx_name)?
                .context
                .as_ref()?
                .cluster
                .clone();
            let cluster = kc
                .clusters
                .iter()
                .find(|c| c.name == cluster_name)?
                .cluster
                .as_ref()?;
            if let Some(data) = &cluster.certificate_authority_data {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .ok()?;
                return String::from_utf8(bytes).ok();
            }
            let file = cluster.certificate_authority.as_ref()?;
            std::fs::read_to_string(file).ok()
        }
    }
}
