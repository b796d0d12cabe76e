//! Test support: a real Debian `docker-registry` on loopback and OCI images built in the test.
#![allow(dead_code)]

use anyhow::{bail, Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A `docker-registry serve` process on 127.0.0.1:<free port>, storage in a temp dir.
pub struct Registry {
    child: Child,
    pub ip: std::net::IpAddr,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Result<Self> {
        Self::start_with(None)
    }

    /// A registry on `ip` (not loopback), optionally with TLS (`(cert_pem, key_pem)`).
    pub fn start_on(ip: std::net::IpAddr, tls: Option<(&str, &str)>) -> Result<Self> {
        Self::start_full(ip, None, tls)
    }

    /// A registry requiring HTTP basic auth for `user`/`password` (htpasswd, bcrypt).
    pub fn start_with_auth(user: &str, password: &str) -> Result<Self> {
        Self::start_with(Some((user, password)))
    }

    fn start_with(auth: Option<(&str, &str)>) -> Result<Self> {
        Self::start_full("127.0.0.1".parse()?, auth, None)
    }

    fn start_full(
        ip: std::net::IpAddr,
        auth: Option<(&str, &str)>,
        tls: Option<(&str, &str)>,
    ) -> Result<Self> {
        if !Path::new(REGISTRY_BIN).exists() {
            bail!("{REGISTRY_BIN} missing: apt-get install -y docker-registry");
        }
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind((ip, 0))?.local_addr()?.port();
        let cfg = dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((cert, key)) = tls {
            let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&c, cert)?;
            std::fs::write(&k, key)?;
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                c.display(),
                k.display()
            ));
        }
        if let Some((user, password)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(
                &htpasswd,
                format!("{user}:{}\n", bcrypt::hash(password, 5)?),
            )?;
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: bramble-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&cfg, yaml)?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry")?;
        let reg = Registry {
            child,
            ip,
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((ip, port)).is_err() {
            if Instant::now() > deadline {
                bail!("docker-registry did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(reg)
    }

    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The registry's on-disk file holding blob `digest` (distribution's filesystem driver).
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// A file to put in a layer.
pub enum Item<'a> {
    File(&'a str, Vec<u8>, u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

/// Builds an uncompressed layer tar.
pub fn layer_tar(items: &[Item]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for it in items {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match it {
            Item::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            Item::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_cksum();
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Item::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                h.set_cksum();
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A layer: gzip blob plus its uncompressed diff id.
pub struct Layer {
    pub blob: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
}

impl Layer {
    pub fn new(items: &[Item]) -> Self {
        let tar = layer_tar(items);
        let blob = gzip(&tar);
        Layer {
            digest: sha256(&blob),
            diff_id: sha256(&tar),
            blob,
        }
    }
}

/// A single-platform image: config + manifest bytes and layers.
pub struct TestImage {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub layers: Vec<Layer>,
    pub arch: String,
}

impl TestImage {
    pub fn new(arch: &str, layers: Vec<Layer>, entrypoint: &[&str], cmd: &[&str]) -> Self {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {
                "Entrypoint": entrypoint,
                "Cmd": cmd,
                "Env": ["PATH=/bin"],
                "WorkingDir": "/",
                "User": "0:0",
            },
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        }))
        .unwrap();
        let config_digest = sha256(&config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": OCI_LAYER_GZIP, "digest": l.digest, "size": l.blob.len()
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        TestImage {
            manifest_digest: sha256(&manifest),
            config,
            config_digest,
            manifest,
            layers,
            arch: arch.to_string(),
        }
    }

    pub fn total_size(&self) -> u64 {
        self.config.len() as u64 + self.layers.iter().map(|l| l.blob.len() as u64).sum::<u64>()
    }
}

/// The host's busybox-static binary (Debian's `busybox-static`).
pub fn busybox() -> Vec<u8> {
    std::fs::read("/bin/busybox").expect("busybox-static installed at /bin/busybox")
}

/// A busybox image: `/bin/busybox`, `/bin/sh` -> busybox, `/etc/arch` naming the arch.
pub fn busybox_image(arch: &str) -> TestImage {
    let layer = Layer::new(&[
        Item::Dir("bin"),
        Item::File("bin/busybox", busybox(), 0o755),
        Item::Symlink("bin/sh", "busybox"),
        Item::Dir("etc"),
        Item::File("etc/arch", arch.as_bytes().to_vec(), 0o644),
    ]);
    TestImage::new(arch, vec![layer], &["/bin/sh"], &["-c", "echo hello"])
}

pub async fn client_with_auth(registry: &str, user: &str, password: &str) -> Client {
    let c = client();
    c.store_auth_if_needed(registry, &RegistryAuth::Basic(user.into(), password.into()))
        .await;
    c
}

/// A push client speaking HTTPS and trusting `ca_pem`.
pub fn tls_client(ca_pem: &str) -> Client {
    bramble_images::pull::install_crypto_provider();
    Client::try_from(ClientConfig {
        protocol: ClientProtocol::Https,
        extra_root_certificates: vec![oci_client::client::Certificate {
            encoding: oci_client::client::CertificateEncoding::Pem,
            data: ca_pem.as_bytes().to_vec(),
        }],
        ..Default::default()
    })
    .expect("https client")
}

pub fn client() -> Client {
    bramble_images::pull::install_crypto_provider();
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    })
}

fn header(ct: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(ct).unwrap()
}

/// Pushes blobs and the manifest; `tag_or_digest` names the manifest (`:tag` or `@digest`).
pub async fn push_image(c: &Client, repo: &str, img: &TestImage, name: &str) -> Result<()> {
    let r: Reference = format!("{repo}{name}").parse()?;
    c.store_auth_if_needed(r.resolve_registry(), &RegistryAuth::Anonymous)
        .await;
    c.push_blob(&r, img.config.clone(), &img.config_digest)
        .await?;
    for l in &img.layers {
        c.push_blob(&r, l.blob.clone(), &l.digest).await?;
    }
    c.push_manifest_raw(&r, img.manifest.clone(), header(OCI_MANIFEST))
        .await?;
    Ok(())
}

/// Pushes per-arch images by digest and an index naming them under `tag`; returns the index
/// digest.
pub async fn push_index(c: &Client, repo: &str, imgs: &[&TestImage], tag: &str) -> Result<String> {
    for img in imgs {
        push_image(c, repo, img, &format!("@{}", img.manifest_digest)).await?;
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": imgs.iter().map(|i| {
            let mut p = serde_json::json!({"architecture": i.arch, "os": "linux"});
            if i.arch == "arm64" { p["variant"] = "v8".into(); }
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": i.manifest_digest, "size": i.manifest.len(), "platform": p})
        }).collect::<Vec<_>>(),
    }))?;
    let r: Reference = format!("{repo}:{tag}").parse()?;
    c.push_manifest_raw(&r, index.clone(), header(OCI_INDEX))
        .await?;
    Ok(sha256(&index))
}

pub fn random(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Adds an image to the store the way a pull does (layers unpacked from verified blobs, config
/// blob, record), with its layers given as (file name, size, seed).
pub fn add_image(
    store: &bramble_images::ImageStore,
    name: &str,
    layers: &[&Layer],
) -> Result<bramble_images::ImageRecord> {
    let img = TestImage::new("amd64", vec![], &[], &["sh"]);
    store.put_blob(&img.config_digest, &img.config)?;
    for l in layers {
        store.unpack_layer_verified(&l.digest, &l.blob[..], Some(l.blob.len() as u64))?;
    }
    let manifest = format!("manifest of {name}");
    let md = sha256(manifest.as_bytes());
    store.put_blob(&md, manifest.as_bytes())?;
    let rec = bramble_images::ImageRecord {
        reference: format!("docker.io/library/{name}:latest"),
        repo_digest: md.clone(),
        manifest_digest: md,
        config_digest: img.config_digest.clone(),
        layer_digests: layers.iter().map(|l| l.digest.clone()).collect(),
        size: layers.iter().map(|l| l.blob.len() as u64).sum(),
        platform: "linux/amd64".into(),
        created_ms: 0,
        last_used_ms: 0,
    };
    store.put_record(&rec)?;
    Ok(rec)
}

pub fn data_layer(name: &str, kib: usize, seed: u8) -> Layer {
    Layer::new(&[Item::File(name, random(kib * 1024, seed), 0o644)])
}
