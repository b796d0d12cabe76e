//! Non-loopback registries: HTTPS by default (rustls with the ring provider, trusting an extra
//! CA given in `RegistryConfig`), plain HTTP only when listed as insecure. The registries listen
//! on this machine's first non-loopback address.

mod support;

use anyhow::{Context, Result};
use bramble_images::{ImageStore, Keyring, PullError, Puller, RegistryConfig};
use std::net::IpAddr;
use support::*;

fn lan_ip() -> Result<IpAddr> {
    // The first global address of this host (not loopback), as `hostname -I` lists them.
    let out = std::process::Command::new("hostname").arg("-I").output()?;
    String::from_utf8(out.stdout)?
        .split_whitespace()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .context("no non-loopback IPv4 address")
}

/// A CA and a server certificate for `ip`, PEM.
fn certs(ip: IpAddr) -> Result<(String, String, String)> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec![ip.to_string()])?.signed_by(&key, &issuer)?;
    Ok((ca_cert.pem(), leaf.pem(), key.serialize_pem()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registry_with_a_private_ca() -> Result<()> {
    let ip = lan_ip()?;
    let (ca, cert, key) = certs(ip)?;
    let reg = Registry::start_on(ip, Some((&cert, &key)))?;
    let img = busybox_image("amd64");
    let repo = format!("{}/tls/app", reg.host());
    push_image(&tls_client(&ca), &repo, &img, ":1").await?;
    let image = format!("{repo}:1");

    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let trusting = RegistryConfig {
        extra_root_certificates_pem: vec![ca.clone().into_bytes()],
        ..Default::default()
    };
    let rec = Puller::new(store.clone(), trusting)
        .pull(&image, &Keyring::default())
        .await?;
    assert_eq!(rec.manifest_digest, img.manifest_digest);

    // Without the CA the TLS handshake fails; the error says so and nothing is stored.
    let dir2 = tempfile::tempdir()?;
    let store2 = ImageStore::open(dir2.path())?;
    let err = Puller::new(store2.clone(), RegistryConfig::default())
        .pull(&image, &Keyring::default())
        .await
        .unwrap_err();
    eprintln!("{}: {}", err.reason(), err);
    assert!(matches!(err, PullError::Registry { .. }), "{err:?}");
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    assert!(store2.list()?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_lan_registry_only_when_listed_insecure() -> Result<()> {
    let ip = lan_ip()?;
    let reg = Registry::start_on(ip, None)?;
    let img = busybox_image("amd64");
    let repo = format!("{}/lan/app", reg.host());
    push_image(&client(), &repo, &img, ":1").await?;
    let image = format!("{repo}:1");
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;

    // Not listed: HTTPS is attempted against a plain-HTTP server and fails.
    let err = Puller::new(store.clone(), RegistryConfig::default())
        .pull(&image, &Keyring::default())
        .await
        .unwrap_err();
    eprintln!("{}: {}", err.reason(), err);
    assert!(matches!(err, PullError::Registry { .. }), "{err:?}");

    // Listed by CIDR: plain HTTP.
    let insecure = RegistryConfig {
        insecure_registries: vec![format!("{ip}/32")],
        ..Default::default()
    };
    let rec = Puller::new(store.clone(), insecure)
        .pull(&image, &Keyring::default())
        .await?;
    assert_eq!(rec.manifest_digest, img.manifest_digest);
    Ok(())
}
