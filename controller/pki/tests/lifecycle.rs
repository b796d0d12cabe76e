//! Creating, reloading and renewing the PKI directory.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Result;
use bramble_pki::*;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

fn opts(extra: &[&str]) -> PkiOptions {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    PkiOptions {
        cluster_name: "bramble".into(),
        server_sans: default_server_sans(Some("pi-1"), DEFAULT_SERVICE_IP, &extra),
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("valid PEM")
        .to_vec()
}

/// (DNS names, IPs) of the first certificate of `pem`.
fn sans_of(pem: &str) -> (Vec<String>, Vec<IpAddr>) {
    let der = der_of(pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
    {
        match name {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
            }
            GeneralName::IPAddress(b) => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
            _ => {}
        }
    }
    (dns, ips)
}

fn signed_by(cert_pem: &str, ca_pem: &str) -> bool {
    let (cert_der, ca_der) = (der_of(cert_pem), der_of(ca_pem));
    let (_, cert) = X509Certificate::from_der(&cert_der).unwrap();
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn create_then_reload_keeps_everything() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data/pki");
    let first = ClusterPki::load_or_create(&dir, &opts(&[]))?;
    assert_eq!(first.ca_provenance(), Provenance::Created);
    assert_eq!(first.serving_provenance(), Provenance::Created);

    let second = ClusterPki::load_or_create(&dir, &opts(&[]))?;
    assert_eq!(second.ca_provenance(), Provenance::Loaded);
    assert_eq!(second.serving_provenance(), Provenance::Loaded);
    assert_eq!(first.ca_cert_pem(), second.ca_cert_pem());
    assert_eq!(first.serving_cert_pem(), second.serving_cert_pem());
    assert_eq!(first.admin_cert_pem(), second.admin_cert_pem());
    assert_eq!(first.admin_token(), second.admin_token());
    assert_eq!(
        fs::read_to_string(dir.join(CA_CERT_FILE))?,
        first.ca_cert_pem()
    );
    assert_eq!(
        fs::read_to_string(dir.join(ADMIN_TOKEN_FILE))?.trim(),
        first.admin_token()
    );
    Ok(())
}

#[test]
fn files_have_private_modes_and_expected_contents() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("pki");
    let pki = ClusterPki::load_or_create(&dir, &opts(&[]))?;
    assert_eq!(mode(&dir), 0o700);
    for f in [
        CA_KEY_FILE,
        APISERVER_KEY_FILE,
        ADMIN_KEY_FILE,
        ADMIN_TOKEN_FILE,
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    for f in [CA_CERT_FILE, APISERVER_CERT_FILE, ADMIN_CERT_FILE] {
        assert_eq!(mode(&dir.join(f)), 0o644, "{f}");
    }
    let mut names: Vec<_> = fs::read_dir(&dir)?
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "admin.crt",
            "admin.key",
            "admin.token",
            "apiserver.crt",
            "apiserver.key",
            "ca.crt",
            "ca.key"
        ]
    );

    // CA: self-signed, CA:TRUE, P-256, ~10 years.
    let ca_der = der_of(pki.ca_cert_pem());
    let (_, ca) = X509Certificate::from_der(&ca_der)?;
    assert!(ca.is_ca());
    assert!(ca.verify_signature(None).is_ok());
    assert_eq!(
        ca.public_key()
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()?
            .to_id_string(),
        "1.2.840.10045.3.1.7",
        "P-256 curve"
    );
    let ca_days =
        (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp()) / 86400;
    assert!(
        (3650..=3651).contains(&ca_days),
        "CA validity {ca_days} days"
    );

    // Serving certificate: every requested name, signed by the CA, ~1 year.
    let (dns, ips) = sans_of(pki.serving_cert_pem());
    for want in [
        "localhost",
        "pi-1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ] {
        assert!(dns.iter().any(|d| d == want), "missing {want} in {dns:?}");
    }
    for want in ["127.0.0.1", "::1", "10.43.0.1"] {
        assert!(ips.contains(&want.parse()?), "missing {want} in {ips:?}");
    }
    assert!(signed_by(pki.serving_cert_pem(), pki.ca_cert_pem()));
    let leaf_end = not_after_unix(pki.serving_cert_pem())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    assert!(
        (leaf_end - now - 365 * 86400).abs() < 3600,
        "leaf validity not 1 year"
    );

    // Admin certificate: CN=bramble-admin, O=system:masters, signed by the CA.
    let admin = identity_from_client_cert(&der_of(pki.admin_cert_pem())).unwrap();
    assert_eq!(admin.name, "bramble-admin");
    assert_eq!(admin.groups, ["system:masters"]);
    assert!(signed_by(pki.admin_cert_pem(), pki.ca_cert_pem()));
    assert_eq!(pki.admin_token().len(), 64);
    assert_eq!(
        pki.token_authenticator().authenticate(pki.admin_token()),
        Some(admin_user())
    );
    Ok(())
}

#[test]
fn missing_san_reissues_serving_cert_from_same_ca() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let first = ClusterPki::load_or_create(tmp.path(), &opts(&[]))?;
    let second = ClusterPki::load_or_create(tmp.path(), &opts(&["pi-1.lan", "192.168.7.2"]))?;
    assert_eq!(second.serving_provenance(), Provenance::Reissued);
    assert_eq!(first.ca_cert_pem(), second.ca_cert_pem());
    assert_ne!(first.serving_cert_pem(), second.serving_cert_pem());
    assert_eq!(
        first.admin_cert_pem(),
        second.admin_cert_pem(),
        "admin cert kept"
    );
    let (dns, ips) = sans_of(second.serving_cert_pem());
    assert!(dns.iter().any(|d| d == "pi-1.lan"));
    assert!(ips.contains(&"192.168.7.2".parse()?));
    assert!(signed_by(second.serving_cert_pem(), first.ca_cert_pem()));
    // openssl accepts the reissued certificate for a TLS server, for the new name.
    fs::write(tmp.path().join("reissued.crt"), second.serving_cert_pem())?;
    let out = std::process::Command::new("openssl")
        .args([
            "verify",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "pi-1.lan",
            "-CAfile",
        ])
        .arg(tmp.path().join(CA_CERT_FILE))
        .arg(tmp.path().join("reissued.crt"))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Same names again (other order, upper case): nothing to do.
    let third = ClusterPki::load_or_create(tmp.path(), &opts(&["192.168.7.2", "PI-1.lan"]))?;
    assert_eq!(third.serving_provenance(), Provenance::Loaded);
    assert_eq!(third.serving_cert_pem(), second.serving_cert_pem());
    Ok(())
}

#[test]
fn serving_cert_close_to_expiry_is_reissued() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let o = opts(&[]);
    let first = ClusterPki::load_or_create(dir, &o)?;

    // Put a serving certificate with every name but 10 days left, from the same CA.
    let ca_key = rcgen::KeyPair::from_pem(&fs::read_to_string(dir.join(CA_KEY_FILE))?)?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(first.ca_cert_pem(), ca_key)?;
    let mut params = rcgen::CertificateParams::new(o.server_sans.clone())?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(300);
    params.not_after = now + time::Duration::days(10);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let short = params.signed_by(&key, &issuer)?;
    fs::write(dir.join(APISERVER_CERT_FILE), short.pem())?;
    fs::write(dir.join(APISERVER_KEY_FILE), key.serialize_pem())?;

    let second = ClusterPki::load_or_create(dir, &o)?;
    assert_eq!(second.serving_provenance(), Provenance::Reissued);
    assert!(
        not_after_unix(second.serving_cert_pem())? > not_after_unix(&short.pem())? + 300 * 86400
    );
    assert_eq!(second.ca_cert_pem(), first.ca_cert_pem());

    // 40 days left is fine: kept.
    let mut params = rcgen::CertificateParams::new(o.server_sans.clone())?;
    params.not_after = now + time::Duration::days(40);
    let kept = params.signed_by(&key, &issuer)?;
    fs::write(dir.join(APISERVER_CERT_FILE), kept.pem())?;
    fs::write(dir.join(APISERVER_KEY_FILE), key.serialize_pem())?;
    let third = ClusterPki::load_or_create(dir, &o)?;
    assert_eq!(third.serving_provenance(), Provenance::Loaded);
    assert_eq!(third.serving_cert_pem(), kept.pem());
    Ok(())
}

#[test]
fn foreign_corrupt_or_mismatched_leaves_are_reissued() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let pki_a = ClusterPki::load_or_create(&a, &opts(&[]))?;
    let pki_b = ClusterPki::load_or_create(&b, &opts(&[]))?;
    assert_ne!(pki_a.ca_cert_pem(), pki_b.ca_cert_pem());

    // A serving certificate from another CA.
    for f in [APISERVER_CERT_FILE, APISERVER_KEY_FILE] {
        fs::copy(b.join(f), a.join(f))?;
    }
    let again = ClusterPki::load_or_create(&a, &opts(&[]))?;
    assert_eq!(again.serving_provenance(), Provenance::Reissued);
    assert!(signed_by(again.serving_cert_pem(), pki_a.ca_cert_pem()));

    // A key that does not belong to the certificate.
    fs::copy(a.join(ADMIN_KEY_FILE), a.join(APISERVER_KEY_FILE))?;
    let again = ClusterPki::load_or_create(&a, &opts(&[]))?;
    assert_eq!(again.serving_provenance(), Provenance::Reissued);

    // Garbage.
    fs::write(a.join(APISERVER_CERT_FILE), "not pem")?;
    let again = ClusterPki::load_or_create(&a, &opts(&[]))?;
    assert_eq!(again.serving_provenance(), Provenance::Reissued);

    // A deleted admin certificate is issued again; the token file survives.
    fs::remove_file(a.join(ADMIN_CERT_FILE))?;
    let again = ClusterPki::load_or_create(&a, &opts(&[]))?;
    assert_ne!(again.admin_cert_pem(), pki_a.admin_cert_pem());
    assert_eq!(again.admin_token(), pki_a.admin_token());
    Ok(())
}

#[test]
fn half_a_ca_is_an_error_not_a_new_ca() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    ClusterPki::load_or_create(tmp.path(), &opts(&[]))?;
    fs::remove_file(tmp.path().join(CA_KEY_FILE))?;
    let err = ClusterPki::load_or_create(tmp.path(), &opts(&[])).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::Incomplete {
                present: "ca.crt",
                missing: "ca.key",
                ..
            }
        ),
        "{err}"
    );
    assert!(!tmp.path().join(CA_KEY_FILE).exists());
    Ok(())
}

#[test]
fn invalid_san_and_unreadable_dir_errors_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(&[]);
    o.server_sans.push("not a name".into());
    let err = ClusterPki::load_or_create(tmp.path(), &o).unwrap_err();
    assert!(
        matches!(err, PkiError::InvalidSan(ref s) if s == "not a name"),
        "{err}"
    );

    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    let err = ClusterPki::load_or_create(&file.join("pki"), &opts(&[])).unwrap_err();
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
}

#[test]
fn issued_client_certs_carry_every_group() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pki = ClusterPki::load_or_create(tmp.path(), &opts(&[]))?;
    let (cert, key) = pki.issue_client_cert(
        "system:node:pi-2",
        &["system:nodes", "dev", "ops"],
        std::time::Duration::from_secs(7 * 86400),
    )?;
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(signed_by(&cert, pki.ca_cert_pem()));
    let user = identity_from_client_cert(&der_of(&cert)).unwrap();
    assert_eq!(user.name, "system:node:pi-2");
    assert_eq!(user.groups, ["system:nodes", "dev", "ops"]);
    assert_eq!(user.uid, "");
    let diff = not_after_unix(&cert)? - not_after_unix(pki.admin_cert_pem())?;
    assert_eq!((diff as f64 / 86400.0).round() as i64, 7 - 365);

    // openssl agrees with our parser and accepts the chain and purpose.
    let dir = tmp.path();
    fs::write(dir.join("user.crt"), &cert)?;
    let out = std::process::Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(dir.join(CA_CERT_FILE))
        .arg(dir.join("user.crt"))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(dir.join("user.crt"))
        .output()?;
    assert_eq!(
        String::from_utf8(out.stdout)?.trim(),
        "subject=CN=system:node:pi-2,O=ops,O=dev,O=system:nodes"
    );
    Ok(())
}
