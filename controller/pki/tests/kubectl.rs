//! Kubeconfig files checked by the real kubectl (/usr/bin/kubectl): read back with
//! `config view`, merged with kubectl's own entries, and used to call a TLS server built with
//! `server_tls_config` (so Go's TLS stack verifies our CA, serving and client certificates).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use base64::Engine;
use bramble_pki::{
    default_server_sans, identity_from_client_cert, write_kubeconfig, ClusterPki, KubeconfigUser,
    PkiOptions, DEFAULT_SERVICE_IP,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn pki(dir: &Path) -> ClusterPki {
    let opts = PkiOptions {
        cluster_name: "bramble".into(),
        server_sans: default_server_sans(None, DEFAULT_SERVICE_IP, &[]),
    };
    ClusterPki::load_or_create(dir, &opts).unwrap()
}

/// Runs kubectl with `--kubeconfig config` and returns stdout; fails on a non-zero exit.
fn kubectl(config: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(config)
        .args(args)
        .output()
        .context("run kubectl")?;
    if !out.status.success() {
        bail!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn jsonpath(config: &Path, path: &str) -> Result<String> {
    kubectl(
        config,
        &["config", "view", "--raw", "-o", &format!("jsonpath={path}")],
    )
}

fn unbase64(s: &str) -> Result<String> {
    Ok(String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(s.trim())?,
    )?)
}

#[test]
fn kubectl_reads_back_server_and_data() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pki = pki(&tmp.path().join("pki"));
    let config = tmp.path().join("home/.kube/config");
    pki.write_admin_kubeconfig(&config, "https://127.0.0.1:6443", "bramble")?;

    assert_eq!(fs::metadata(&config)?.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        fs::read_dir(config.parent().unwrap())?.count(),
        1,
        "temp file left"
    );
    assert_eq!(
        jsonpath(
            &config,
            "{.clusters[?(@.name==\"bramble\")].cluster.server}"
        )?,
        "https://127.0.0.1:6443"
    );
    let ca = jsonpath(
        &config,
        "{.clusters[?(@.name==\"bramble\")].cluster.certificate-authority-data}",
    )?;
    assert_eq!(unbase64(&ca)?, pki.ca_cert_pem());
    let cert = jsonpath(
        &config,
        "{.users[?(@.name==\"bramble\")].user.client-certificate-data}",
    )?;
    assert_eq!(unbase64(&cert)?, pki.admin_cert_pem());
    let key = jsonpath(
        &config,
        "{.users[?(@.name==\"bramble\")].user.client-key-data}",
    )?;
    assert_eq!(unbase64(&key)?, pki.admin_key_pem());
    assert_eq!(
        kubectl(&config, &["config", "current-context"])?.trim(),
        "bramble"
    );
    assert_eq!(
        jsonpath(&config, "{.contexts[?(@.name==\"bramble\")].context.user}")?,
        "bramble"
    );
    Ok(())
}

#[test]
fn merging_keeps_other_entries_and_replaces_ours() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pki = pki(&tmp.path().join("pki"));
    let config = tmp.path().join("config");
    // A kubeconfig kubectl wrote for another cluster.
    kubectl(
        &config,
        &[
            "config",
            "set-cluster",
            "other",
            "--server=https://10.9.9.9:6443",
        ],
    )?;
    kubectl(
        &config,
        &["config", "set-credentials", "other-user", "--token=abc"],
    )?;
    kubectl(
        &config,
        &[
            "config",
            "set-context",
            "other",
            "--cluster=other",
            "--user=other-user",
        ],
    )?;
    kubectl(&config, &["config", "use-context", "other"])?;

    pki.write_admin_kubeconfig(&config, "https://127.0.0.1:6443", "bramble")?;
    let mut contexts: Vec<String> = kubectl(&config, &["config", "get-contexts", "-o", "name"])?
        .lines()
        .map(str::to_string)
        .collect();
    contexts.sort();
    assert_eq!(contexts, ["bramble", "other"]);
    assert_eq!(
        kubectl(&config, &["config", "current-context"])?.trim(),
        "bramble"
    );
    assert_eq!(
        jsonpath(&config, "{.clusters[?(@.name==\"other\")].cluster.server}")?,
        "https://10.9.9.9:6443"
    );
    assert_eq!(
        jsonpath(&config, "{.users[?(@.name==\"other-user\")].user.token}")?,
        "abc"
    );

    // Writing again (token this time, new address) replaces Bramble's entries only.
    write_kubeconfig(
        &config,
        "https://192.0.2.1:6443",
        pki.ca_cert_pem(),
        KubeconfigUser::Token(pki.admin_token().to_string()),
        "bramble",
    )?;
    assert_eq!(
        jsonpath(&config, "{.clusters[*].name}")?,
        "bramble other",
        "one bramble cluster (kubectl lists them sorted)"
    );
    assert_eq!(
        jsonpath(
            &config,
            "{.clusters[?(@.name==\"bramble\")].cluster.server}"
        )?,
        "https://192.0.2.1:6443"
    );
    assert_eq!(
        jsonpath(&config, "{.users[?(@.name==\"bramble\")].user.token}")?,
        pki.admin_token()
    );
    assert_eq!(
        jsonpath(
            &config,
            "{.users[?(@.name==\"bramble\")].user.client-certificate-data}"
        )?,
        "",
        "stale certificate removed"
    );
    assert_eq!(jsonpath(&config, "{.users[*].name}")?, "bramble other-user");
    // kubectl can still switch back to the untouched context.
    kubectl(&config, &["config", "use-context", "other"])?;
    Ok(())
}

#[test]
fn unparsable_existing_kubeconfig_is_an_error_and_left_alone() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pki = pki(&tmp.path().join("pki"));
    let config = tmp.path().join("config");
    fs::write(&config, "- just\n- a list\n")?;
    let err = pki
        .write_admin_kubeconfig(&config, "https://127.0.0.1:6443", "bramble")
        .unwrap_err();
    assert!(
        err.to_string().contains(&config.display().to_string()),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&config)?, "- just\n- a list\n");
    Ok(())
}

/// A one-request-per-connection HTTP/1.1 server over TLS whose `/version` body says who
/// the caller is (client certificate, else bearer token).
async fn whoami_server(pki: &ClusterPki) -> Result<u16> {
    let mut config = (*pki.server_tls_config()?).clone();
    // This little server speaks HTTP/1.1 only; kubectl offers h2 and http/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let tokens = pki.token_authenticator();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let tokens = std::sync::Arc::new(tokens);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tokens) = (acceptor.clone(), tokens.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                let cert_user = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| identity_from_client_cert(c));
                let token_user = request
                    .lines()
                    .find_map(|l| l.strip_prefix("Authorization: Bearer "))
                    .and_then(|t| tokens.authenticate(t.trim()));
                let who = match (cert_user, token_user) {
                    (Some(u), _) => format!("cert:{}:{}", u.name, u.groups.join("+")),
                    (None, Some(u)) => format!("token:{}:{}", u.name, u.groups.join("+")),
                    (None, None) => "anonymous".to_string(),
                };
                let body = format!(r#"{{"major":"1","minor":"33","gitVersion":"{who}"}}"#);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Ok(port)
}

async fn kubectl_async(config: &Path, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(config)
        .args(args)
        .output()
        .await?;
    if !out.status.success() {
        bail!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_talks_tls_with_certificate_and_token() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let first = pki(&tmp.path().join("pki"));
    // Start again with one more name: the serving certificate and everything issued below
    // come from the CA as loaded from disk, not as created in memory.
    let pki = ClusterPki::load_or_create(
        &tmp.path().join("pki"),
        &PkiOptions {
            cluster_name: "bramble".into(),
            server_sans: default_server_sans(None, DEFAULT_SERVICE_IP, &["pi-1.lan".into()]),
        },
    )?;
    assert_eq!(pki.serving_provenance(), bramble_pki::Provenance::Reissued);
    assert_eq!(pki.ca_cert_pem(), first.ca_cert_pem());
    let port = whoami_server(&pki).await?;

    let cert_config = tmp.path().join("cert.kubeconfig");
    pki.write_admin_kubeconfig(
        &cert_config,
        &format!("https://127.0.0.1:{port}"),
        "bramble",
    )?;
    let body = kubectl_async(&cert_config, &["get", "--raw", "/version"]).await?;
    assert!(body.contains("cert:bramble-admin:system:masters"), "{body}");

    // A user certificate with several groups, by DNS name.
    let (cert_pem, key_pem) = pki.issue_client_cert(
        "jane",
        &["dev", "ops"],
        std::time::Duration::from_secs(3600),
    )?;
    let jane_config = tmp.path().join("jane.kubeconfig");
    write_kubeconfig(
        &jane_config,
        &format!("https://localhost:{port}"),
        pki.ca_cert_pem(),
        KubeconfigUser::ClientCert { cert_pem, key_pem },
        "jane",
    )?;
    let body = kubectl_async(&jane_config, &["get", "--raw", "/version"]).await?;
    assert!(body.contains("cert:jane:dev+ops"), "{body}");

    let token_config = tmp.path().join("token.kubeconfig");
    write_kubeconfig(
        &token_config,
        &format!("https://127.0.0.1:{port}"),
        pki.ca_cert_pem(),
        KubeconfigUser::Token(pki.admin_token().to_string()),
        "bramble",
    )?;
    let body = kubectl_async(&token_config, &["get", "--raw", "/version"]).await?;
    assert!(
        body.contains("token:bramble-admin:system:masters"),
        "{body}"
    );

    // kubectl checks the serving certificate against the CA in the kubeconfig.
    let other = tempfile::tempdir()?;
    let foreign = pki_ca(other.path());
    let bad_config = tmp.path().join("bad.kubeconfig");
    write_kubeconfig(
        &bad_config,
        &format!("https://127.0.0.1:{port}"),
        &foreign,
        KubeconfigUser::Token(pki.admin_token().to_string()),
        "bramble",
    )?;
    let err = kubectl_async(&bad_config, &["get", "--raw", "/version"])
        .await
        .unwrap_err();
    assert!(format!("{err}").contains("certificate"), "{err}");
    Ok(())
}

fn pki_ca(dir: &Path) -> String {
    pki(dir).ca_cert_pem().to_string()
}
