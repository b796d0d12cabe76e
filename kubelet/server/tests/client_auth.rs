//! The controller-to-kubelet hop is authenticated: the streaming server answers only TLS
//! clients whose certificate chains to the cluster CA, and only allowed identities.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use bramble_kubelet_server::{
    ClientAuthorizer, ContainerTarget, LookupError, LookupFuture, PodContainers, PodSandbox,
};
use bramble_runtime::RuntimeClient;

/// A node with no pods.
struct NoPods;

impl PodContainers for NoPods {
    fn container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        _: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget> {
        Box::pin(async move {
            Err(LookupError::PodNotFound {
                namespace: namespace.into(),
                pod: pod.into(),
            })
        })
    }

    fn previous_container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        c: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget> {
        self.container(namespace, pod, c)
    }

    fn sandbox<'a>(&'a self, _: &'a str, pod: &'a str) -> LookupFuture<'a, PodSandbox> {
        Box::pin(async move { Err(LookupError::SandboxNotReady { pod: pod.into() }) })
    }
}

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Result<Ca> {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate()?;
    let cert = p.self_signed(&key)?;
    Ok(Ca {
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    })
}

fn leaf(ca: &Ca, cn: &str, org: Option<&str>, server: bool) -> Result<(String, String)> {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    if let Some(o) = org {
        p.distinguished_name.push(DnType::OrganizationName, o);
    }
    if server {
        p.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse()?)];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    } else {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, &ca.issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// GETs `path` with `identity` (or none); `Err` when TLS or HTTP fails.
async fn get(
    port: u16,
    ca_pem: &str,
    identity: Option<&(String, String)>,
    path: &str,
) -> Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes())?)?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let config = match identity {
        Some((c, k)) => builder.with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(c.as_bytes())?],
            PrivateKeyDer::from_pem_slice(k.as_bytes())?,
        )?,
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("127.0.0.1".try_into()?, tcp)
        .await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let resp = send
        .send_request(
            http::Request::get(path)
                .header("host", "127.0.0.1")
                .body(Empty::<Bytes>::new())?,
        )
        .await?;
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn only_allowed_clients_of_the_cluster_ca_may_stream() -> Result<()> {
    let cluster = ca("cluster-ca")?;
    let other = ca("other-ca")?;
    let (cert, key) = leaf(&cluster, "node-1", None, true)?;
    let tls = bramble_kubelet_server::server_config(&cluster.pem, &cert, &key)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    // The runtime is never reached by these requests: a client on an unused socket pair.
    let (ours, _theirs) = std::os::unix::net::UnixStream::pair()?;
    let runtime = Arc::new(RuntimeClient::from_fd(OwnedFd::from(ours))?);
    tokio::spawn(bramble_kubelet_server::serve(
        listener,
        tls,
        Arc::new(NoPods),
        runtime,
        ClientAuthorizer::default(),
        std::future::pending(),
    ));

    let apiserver = leaf(
        &cluster,
        "kube-apiserver-kubelet-client",
        Some("system:masters"),
        false,
    )?;
    let (code, body) = get(port, &cluster.pem, Some(&apiserver), "/healthz").await?;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, body) = get(
        port,
        &cluster.pem,
        Some(&apiserver),
        "/containerLogs/default/web/main",
    )
    .await?;
    assert_eq!((code, body.as_str()), (404, "pod \"web\" does not exist\n"));

    let admin = leaf(&cluster, "someone", Some("system:masters"), false)?;
    assert_eq!(
        get(port, &cluster.pem, Some(&admin), "/healthz").await?.0,
        200
    );

    let stranger = leaf(&cluster, "mallory", Some("developers"), false)?;
    let (code, body) = get(
        port,
        &cluster.pem,
        Some(&stranger),
        "/exec/default/web/main",
    )
    .await?;
    assert_eq!(code, 403);
    assert!(
        body.starts_with("Forbidden (user=mallory, verb=get"),
        "{body}"
    );

    let foreign = leaf(
        &other,
        "kube-apiserver-kubelet-client",
        Some("system:masters"),
        false,
    )?;
    let res = get(port, &cluster.pem, Some(&foreign), "/healthz").await;
    assert!(
        res.is_err(),
        "a certificate of another CA was accepted: {res:?}"
    );
    let res = get(port, &cluster.pem, None, "/healthz").await;
    assert!(
        res.is_err(),
        "a client without certificate was accepted: {res:?}"
    );
    Ok(())
}
