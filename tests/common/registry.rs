//! A real Debian `docker-registry` on a free loopback port, and tiny OCI images built from
//! Debian's busybox-static (an OCI layout written here, pushed with skopeo).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const SKOPEO: &str = "/usr/bin/skopeo";

/// `docker-registry serve` on 127.0.0.1:<free port>, storage in a temp dir; killed on drop.
pub struct TestRegistry {
    child: Child,
    /// The address it listens on (127.0.0.1 unless [`TestRegistry::start_on`]).
    pub ip: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// HTTP basic credentials the registry requires (`start_with_auth`).
    creds: Option<(String, String)>,
}

fn sha256_file(path: &Path) -> Result<String> {
    let out = Command::new("sha256sum").arg(path).output()?;
    if !out.status.success() {
        bail!("sha256sum {} failed", path.display());
    }
    let text = String::from_utf8(out.stdout)?;
    Ok(format!(
        "sha256:{}",
        text.split_whitespace().next().context("sha256sum output")?
    ))
}

/// Writes `data` as a blob of an OCI layout; returns (digest, size).
fn put_blob(layout: &Path, data: &[u8]) -> Result<(String, u64)> {
    let tmp = layout.join("blob.tmp");
    std::fs::write(&tmp, data)?;
    let digest = sha256_file(&tmp)?;
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir)?;
    std::fs::rename(&tmp, dir.join(digest.trim_start_matches("sha256:")))?;
    Ok((digest, data.len() as u64))
}

/// A rootfs with /bin/busybox and one symlink per applet (sh, sleep, cat, ...).
pub fn busybox_rootfs(dir: &Path) -> Result<()> {
    busybox_rootfs_from(dir, Path::new("/bin/busybox"))
}

/// [`busybox_rootfs`] with another busybox binary (e.g. Debian's arm64 busybox-static for a
/// QEMU guest). The applet list is this host's busybox's: the same Debian package's.
pub fn busybox_rootfs_from(dir: &Path, busybox: &Path) -> Result<()> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    for d in ["etc", "tmp", "proc", "sys", "dev", "root", "srv"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy(busybox, bin.join("busybox"))
        .with_context(|| format!("{} (apt-get install busybox-static)", busybox.display()))?;
    let list = Command::new("/bin/busybox").arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    std::fs::write(dir.join("etc/image-marker"), "bramble busybox test image\n")?;
    Ok(())
}

impl TestRegistry {
    pub fn start() -> Result<Self> {
        Self::start_inner("127.0.0.1", None)
    }

    /// A registry listening on `ip` (an address of this machine, e.g. a test bridge's that
    /// QEMU boards reach) instead of loopback.
    pub fn start_on(ip: &str) -> Result<Self> {
        Self::start_inner(ip, None)
    }

    /// A registry that refuses every request without HTTP basic auth for `user`/`password`
    /// (htpasswd with bcrypt, the only hash distribution accepts).
    pub fn start_with_auth(user: &str, password: &str) -> Result<Self> {
        Self::start_inner("127.0.0.1", Some((user.to_string(), password.to_string())))
    }

    fn start_inner(ip: &str, creds: Option<(String, String)>) -> Result<Self> {
        if !Path::new(REGISTRY_BIN).exists() {
            bail!("{REGISTRY_BIN} missing: apt-get install -y docker-registry");
        }
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind((ip, 0))?.local_addr()?.port();
        let cfg = dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {ip}:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = &creds {
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
        let reg = TestRegistry {
            child,
            ip: ip.to_string(),
            port,
            dir,
            creds,
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

    /// `<ip>:<port>` (`127.0.0.1:<port>` by default).
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Builds a busybox image (Cmd `sh`, plus `extra` files as `(path, contents)`) and
    /// pushes it as `<host>/<name>:<tag>`; returns that reference.
    pub fn push_busybox(&self, name: &str, tag: &str, extra: &[(&str, &[u8])]) -> Result<String> {
        self.push_busybox_layer(name, tag, extra, false)
    }

    /// [`TestRegistry::push_busybox`] with the layer gzip-compressed (`tar+gzip`), as registries
    /// usually serve images.
    pub fn push_busybox_gzip(
        &self,
        name: &str,
        tag: &str,
        extra: &[(&str, &[u8])],
    ) -> Result<String> {
        self.push_busybox_layer(name, tag, extra, true)
    }

    /// [`TestRegistry::push_busybox`] for another architecture: `busybox` is that
    /// architecture's static busybox, `arch` the OCI name (`arm64`).
    pub fn push_busybox_for(
        &self,
        name: &str,
        tag: &str,
        busybox: &Path,
        arch: &str,
    ) -> Result<String> {
        self.push_image(name, tag, &[], false, busybox, arch)
    }

    fn push_busybox_layer(
        &self,
        name: &str,
        tag: &str,
        extra: &[(&str, &[u8])],
        gzip: bool,
    ) -> Result<String> {
        let arch = match std::env::consts::ARCH {
            "aarch64" => "arm64",
            "x86_64" => "amd64",
            other => other,
        };
        self.push_image(name, tag, extra, gzip, Path::new("/bin/busybox"), arch)
    }

    fn push_image(
        &self,
        name: &str,
        tag: &str,
        extra: &[(&str, &[u8])],
        gzip: bool,
        busybox: &Path,
        arch: &str,
    ) -> Result<String> {
        let work = tempfile::tempdir()?;
        let rootfs = work.path().join("rootfs");
        busybox_rootfs_from(&rootfs, busybox)?;
        for (path, data) in extra {
            let p = rootfs.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap())?;
            std::fs::write(p, data)?;
        }
        let layout = work.path().join("layout");
        std::fs::create_dir_all(&layout)?;
        let tar = work.path().join("layer.tar");
        let st = Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()?;
        if !st.success() {
            bail!("tar failed");
        }
        let (diff_id, tar_size) = put_blob(&layout, &std::fs::read(&tar)?)?;
        let (layer_digest, layer_size, layer_type) = if gzip {
            let out = Command::new("gzip").arg("-c").arg(&tar).output()?;
            if !out.status.success() {
                bail!("gzip failed");
            }
            let (d, n) = put_blob(&layout, &out.stdout)?;
            (d, n, "application/vnd.oci.image.layer.v1.tar+gzip")
        } else {
            (
                diff_id.clone(),
                tar_size,
                "application/vnd.oci.image.layer.v1.tar",
            )
        };
        let config = serde_json::to_vec(&json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))?;
        let (config_digest, config_size) = put_blob(&layout, &config)?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer_size}],
        }))?;
        let (manifest_digest, manifest_size) = put_blob(&layout, &manifest)?;
        std::fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest, "size": manifest_size,
                    "annotations": {"org.opencontainers.image.ref.name": tag}}],
            }))?,
        )?;
        std::fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let reference = format!("{}/{name}:{tag}", self.host());
        let mut skopeo = Command::new(SKOPEO);
        skopeo.args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--insecure-policy",
        ]);
        if let Some((user, password)) = &self.creds {
            skopeo.arg(format!("--dest-creds={user}:{password}"));
        }
        let out = skopeo
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{reference}"))
            .output()
            .context("running skopeo")?;
        if !out.status.success() {
            bail!(
                "skopeo copy failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(reference)
    }

    /// Where the registry keeps its data.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
