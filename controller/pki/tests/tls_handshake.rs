//! A real rustls server built with `server_tls_config` on 127.0.0.1, and rustls clients
//! (configured here independently of the crate's helpers) with and without certificates.

use std::sync::Arc;

use anyhow::{Context, Result};
use bramble_pki::{
    default_server_sans, identity_from_client_cert, ClusterPki, PkiOptions, DEFAULT_SERVICE_IP,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn pki(dir: &std::path::Path) -> ClusterPki {
    let opts = PkiOptions {
        cluster_name: "bramble".into(),
        server_sans: default_server_sans(Some("pi-1"), DEFAULT_SERVICE_IP, &[]),
    };
    ClusterPki::load_or_create(dir, &opts).unwrap()
}

/// Serves TLS on 127.0.0.1: each connection gets one line saying who the peer is; handshake
/// failures are reported on the channel.
async fn serve(pki: &ClusterPki) -> Result<(u16, mpsc::UnboundedReceiver<String>)> {
    let acceptor = TlsAcceptor::from(pki.server_tls_config()?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        let (_, conn) = tls.get_ref();
                        let who = match conn.peer_certificates().and_then(|c| c.first()) {
                            Some(cert) => match identity_from_client_cert(cert) {
                                Some(u) => format!("user={} groups={}", u.name, u.groups.join(",")),
                                None => "unparsable".to_string(),
                            },
                            None => "anonymous".to_string(),
                        };
                        let alpn = conn
                            .alpn_protocol()
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .unwrap_or_default();
                        let _ = tls
                            .write_all(format!("{who} alpn={alpn}\n").as_bytes())
                            .await;
                        let _ = tls.shutdown().await;
                    }
                    Err(e) => {
                        let _ = tx.send(format!("handshake failed: {e}"));
                    }
                }
            });
        }
    });
    Ok((port, rx))
}

fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn client(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    for c in pem_certs(ca_pem) {
        roots.add(c)?;
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)?
            .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder.with_client_auth_cert(
            pem_certs(cert),
            rustls_pemfile::private_key(&mut key.as_bytes())?.context("key")?,
        )?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Connects to 127.0.0.1:`port` as `server_name` and returns the server's line.
async fn talk(connector: &TlsConnector, port: u16, server_name: &str) -> Result<String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(server_name.to_string())?;
    let mut tls = connector.connect(name, tcp).await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out.trim().to_string())
}

/// webpki's verdicts for a chain to an untrusted CA: `UnknownIssuer`, or `BadSignature` when
/// the other CA happens to have the same name (two CAs created in the same second).
fn refused_chain(message: &str) -> bool {
    message.contains("invalid peer certificate: UnknownIssuer")
        || message.contains("invalid peer certificate: BadSignature")
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[tokio::test]
async fn client_certificate_identity_and_alpn() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pki = pki(tmp.path());
    let (port, _errors) = serve(&pki).await?;

    let admin = client(
        pki.ca_cert_pem(),
        Some((pki.admin_cert_pem(), pki.admin_key_pem())),
        BOTH,
    )?;
    assert_eq!(
        talk(&admin, port, "127.0.0.1").await?,
        "user=bramble-admin groups=system:masters alpn=h2"
    );

    // A certificate issued later, with several groups, over TLS 1.2 too.
    let (cert, key) = pki.issue_client_cert(
        "jane",
        &["dev", "ops"],
        std::time::Duration::from_secs(3600),
    )?;
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let jane = client(pki.ca_cert_pem(), Some((&cert, &key)), versions)?;
        assert_eq!(
            talk(&jane, port, "kubernetes.default.svc").await?,
            "user=jane groups=dev,ops alpn=h2"
        );
    }
    Ok(())
}

#[tokio::test]
async fn no_client_certificate_is_allowed() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pki = pki(tmp.path());
    let (port, _errors) = serve(&pki).await?;
    let anon = client(pki.ca_cert_pem(), None, BOTH)?;
    for name in ["localhost", "::1", "10.43.0.1", "pi-1", "kubernetes"] {
        // The server name is only checked against the certificate: the socket is 127.0.0.1.
        assert_eq!(
            talk(&anon, port, name).await?,
            "anonymous alpn=h2",
            "{name}"
        );
    }
    // A name the serving certificate does not carry is refused by the client.
    let err = talk(&anon, port, "example.com").await.unwrap_err();
    assert!(
        format!("{err:#}").contains("not valid for name \"example.com\""),
        "{err:#}"
    );
    Ok(())
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused_at_handshake() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pki_a = pki(&tmp.path().join("a"));
    let pki_b = pki(&tmp.path().join("b"));
    let (port, mut errors) = serve(&pki_a).await?;

    // B's admin certificate, with a client that trusts A's server: the server refuses it.
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let intruder = client(
            pki_a.ca_cert_pem(),
            Some((pki_b.admin_cert_pem(), pki_b.admin_key_pem())),
            versions,
        )?;
        let result = talk(&intruder, port, "127.0.0.1").await;
        assert!(result.is_err(), "intruder got {result:?}");
        let server_side = errors.recv().await.context("no server error")?;
        assert!(refused_chain(&server_side), "{server_side}");
    }

    // A client that trusts only B's CA refuses A's server.
    let wrong_root = client(pki_b.ca_cert_pem(), None, BOTH)?;
    let err = talk(&wrong_root, port, "127.0.0.1").await.unwrap_err();
    assert!(refused_chain(&format!("{err:#}")), "{err:#}");
    Ok(())
}
