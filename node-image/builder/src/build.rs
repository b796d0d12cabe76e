//! Building one board image: fetch packages, stage the boot, root and data trees, make the
//! filesystems and assemble the card image. Nothing is written at the output path unless the
//! whole build succeeds (it is built as `<out>.partial` beside it and renamed at the end).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use bramble_boards::{
    load_board, render_cmdline, render_config_txt, BoardConfig, BootKind, NodeConfig, RootRef,
};
use serde::Serialize;

use crate::debian::{ExtractedPackage, PackageSource};
use crate::elf::check_static_aarch64;
use crate::error::{io_err, BuildError};
use crate::filesystems::{make_ext4, make_fat, make_squashfs, tree_size};
use crate::initramfs::{initramfs_compression, write_initramfs};
use crate::modules::{install_modules, kernel_release, load_modules_dep};
use crate::partition::{assemble, Layout, MIB};

/// CNI plugins from Debian's `containernetworking-plugins` that go into /opt/cni/bin.
pub const CNI_PLUGINS: [&str; 7] = [
    "bridge",
    "host-local",
    "loopback",
    "portmap",
    "bandwidth",
    "firewall",
    "tuning",
];

/// Smallest initial data partition (grown to the card on first boot); more when files are
/// preloaded onto it.
pub const DATA_SIZE: u64 = 16 * MIB;

/// File names on the boot partition.
pub const KERNEL_FILE: &str = "vmlinuz";
/// Initramfs file on the boot partition.
pub const INITRAMFS_FILE: &str = "initrd.img";
/// Node config file on the boot partition.
pub const NODE_CONFIG_FILE: &str = "bramble.yaml";
/// Image manifest on the boot partition (also /etc/bramble/image.yaml in the root).
pub const MANIFEST_FILE: &str = "bramble-image.yaml";

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Directory of board files.
    pub board_dir: PathBuf,
    /// Board name.
    pub board: String,
    /// Node config to put on the boot partition (default: single-board cluster on DHCP).
    pub node_config: Option<PathBuf>,
    /// Output image path.
    pub output: PathBuf,
    /// Static aarch64 `bramble` binary to install.
    pub bramble: PathBuf,
    /// Files preloaded onto the data partition: (host file, path relative to the partition,
    /// which the board mounts on /var), e.g. a container rootfs for the runtime self-test.
    pub data_files: Vec<(PathBuf, PathBuf)>,
}

/// One package recorded in the manifest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PackageRecord {
    /// Package name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// Suite.
    pub suite: String,
}

/// The manifest recorded in the image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageManifest {
    /// Board name.
    pub board: String,
    /// Board model.
    pub model: String,
    /// Version of the bramble that built the image.
    pub builder_version: String,
    /// Kernel release (`uname -r`).
    pub kernel_release: String,
    /// Debian packages the image was made from.
    pub packages: Vec<PackageRecord>,
    /// Build time (seconds since the epoch).
    pub built_at: u64,
    /// MBR disk id.
    pub disk_id: String,
    /// Partition sizes in MiB: boot, root slot, data (initial).
    pub partitions_mib: [u64; 3],
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Image written.
    pub image: PathBuf,
    /// Layout used.
    pub layout: Layout,
    /// Manifest recorded in it.
    pub manifest: ImageManifest,
    /// Bytes of content in the boot partition, and the squashfs size.
    pub boot_content: u64,
    /// Squashfs root size in bytes.
    pub root_size: u64,
}

/// Build the image described by `opts`, taking packages from `source`.
pub fn build_image(
    opts: &BuildOptions,
    source: &dyn PackageSource,
) -> Result<BuildReport, BuildError> {
    // Inputs first: nothing is fetched or written if they are wrong.
    let board = load_board(&opts.board_dir, &opts.board)?;
    let node_text = match &opts.node_config {
        Some(p) => {
            NodeConfig::load(p)?;
            fs::read_to_string(p).map_err(io_err(p))?
        }
        None => default_node_config_text(&board),
    };
    check_static_aarch64(&opts.bramble)?;
    let out_dir = opts
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !out_dir.is_dir() {
        return Err(BuildError::Io {
            path: out_dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "output directory does not exist",
            ),
        });
    }

    let kernel = source.resolve_kernel(&board.kernel.suite, &board.kernel.flavour)?;
    let firmware = if board.firmware.is_empty() {
        None
    } else {
        Some(source.fetch("bookworm", "raspi-firmware")?)
    };
    let cni = source.fetch("bookworm", "containernetworking-plugins")?;
    // Debian builds the CNI plugins against glibc: its loader and libc.so.6 go in too.
    let libc = source.fetch("bookworm", "libc6")?;
    let ca = source.fetch("bookworm", "ca-certificates")?;
    let nft = crate::nftables::fetch(source)?;
    let mut packages = vec![&kernel];
    packages.extend(firmware.as_ref());
    packages.push(&cni);
    packages.push(&libc);
    packages.push(&ca);
    packages.extend(&nft);

    let work = tempfile::Builder::new()
        .prefix(".bramble-build-")
        .tempdir_in(out_dir)
        .map_err(io_err(out_dir))?;
    let w = work.path();
    let (boot, root, data) = (w.join("boot"), w.join("root"), w.join("data"));
    for d in [&boot, &root, &data] {
        fs::create_dir_all(d).map_err(io_err(d))?;
    }

    let release = kernel_release(&kernel.root)?;
    let dep = load_modules_dep(&kernel.root, &release)?;
    let disk_id = loop {
        let id: u32 = rand::random();
        if id != 0 {
            break id;
        }
    };
    let manifest = ImageManifest {
        board: board.name.clone(),
        model: board.model.clone(),
        builder_version: env!("CARGO_PKG_VERSION").into(),
        kernel_release: release.clone(),
        packages: packages
            .iter()
            .map(|p| PackageRecord {
                name: p.name.clone(),
                version: p.version.clone(),
                suite: p.suite.clone(),
            })
            .collect(),
        built_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        disk_id: format!("{disk_id:08x}"),
        partitions_mib: [0; 3],
    };

    // Initramfs: bramble as /init plus the modules that reach the root partition.
    let initrd_stage = w.join("initrd");
    let initrd_modules = install_modules(
        &board.name,
        &kernel.root,
        &release,
        &dep,
        &board.initramfs_modules,
        &initrd_stage,
    )?;
    let compression = initramfs_compression(&kernel.root, &release);
    write_initramfs(
        &opts.bramble,
        &initrd_stage,
        &board,
        &boot.join(INITRAMFS_FILE),
        compression,
    )?;
    tracing::info!(modules = initrd_modules.len(), "initramfs");

    stage_boot(&board, &kernel, firmware.as_ref(), &release, &boot)?;
    let mut all_modules = board.initramfs_modules.clone();
    all_modules.extend(board.modules.iter().cloned());
    install_modules(
        &board.name,
        &kernel.root,
        &release,
        &dep,
        &all_modules,
        &root,
    )?;
    stage_root(&board, &opts.bramble, &cni, &root)?;
    stage_glibc(&board, &libc, &root)?;
    let nft_libs = crate::nftables::stage_nft(&board, &nft, &libc, &root)?;
    tracing::info!(libraries = ?nft_libs, "nft");
    stage_ca_bundle(&board, &ca, &root)?;
    let package_lines: String = manifest
        .packages
        .iter()
        .map(|p| format!("{} {} {}\n", p.name, p.version, p.suite))
        .collect();
    write_file(&root.join("etc/bramble/packages"), &package_lines)?;
    stage_data(&data)?;
    for (src, rel) in &opts.data_files {
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(BuildError::Layout(format!(
                "data file destination {} must be relative and stay inside the partition",
                rel.display()
            )));
        }
        copy_file(src, &data.join(rel))?;
    }

    let root_img = w.join("root.squashfs");
    make_squashfs(&root, &root_img)?;
    let root_size = fs::metadata(&root_img).map_err(io_err(&root_img))?.len();
    let data_img = w.join("data.ext4");
    let data_size = (tree_size(&data)? * 5 / 4 + 12 * MIB)
        .div_ceil(MIB)
        .max(DATA_SIZE / MIB)
        * MIB;
    make_ext4(&data, &data_img, data_size, "bramble-data")?;

    // Boot files that depend on the layout come last.
    let boot_content = tree_size(&boot)? + 64 * 1024;
    let slot_files = [KERNEL_FILE, INITRAMFS_FILE]
        .iter()
        .map(|f| fs::metadata(boot.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum();
    let layout = Layout::plan(disk_id, boot_content, slot_files, root_size, data_size);
    let root_ref = RootRef {
        disk_id,
        root_partition: 2,
        data_partition: 3,
    };
    let mut manifest = manifest;
    manifest.partitions_mib = [
        layout.boot.1 / MIB,
        layout.root.1 / MIB,
        layout.data.1 / MIB,
    ];
    let manifest_text =
        serde_norway::to_string(&manifest).map_err(|e| BuildError::Layout(e.to_string()))?;
    write_file(
        &boot.join("cmdline.txt"),
        &(render_cmdline(&board, &root_ref) + "\n"),
    )?;
    if board.boot == BootKind::RaspberrypiFirmware {
        write_file(
            &boot.join("config.txt"),
            &render_config_txt(&board, KERNEL_FILE, INITRAMFS_FILE),
        )?;
    }
    write_file(&boot.join(NODE_CONFIG_FILE), &node_text)?;
    write_file(&boot.join(MANIFEST_FILE), &manifest_text)?;
    let boot_img = w.join("boot.vfat");
    make_fat(&boot, &boot_img, layout.boot.1, "BRAMBLEBOOT")?;

    let partial = opts.output.with_extension("partial");
    let result = assemble(&partial, &layout, &boot_img, &root_img, &data_img)
        .and_then(|()| fs::rename(&partial, &opts.output).map_err(io_err(&opts.output)));
    if let Err(e) = result {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    Ok(BuildReport {
        image: opts.output.clone(),
        layout,
        manifest,
        boot_content,
        root_size,
    })
}

fn default_node_config_text(board: &BoardConfig) -> String {
    let cfg = NodeConfig::default_for_board(&board.name);
    let body = serde_norway::to_string(&cfg).unwrap_or_default();
    format!(
        "# Bramble node config, read by `bramble init` on every boot.\n\
         # Edit on the boot partition: role (controller|worker|both), hostname, join, network, ntp.\n{body}"
    )
}

fn write_file(path: &Path, text: &str) -> Result<(), BuildError> {
    fs::write(path, text).map_err(io_err(path))
}

fn copy_file(src: &Path, dst: &Path) -> Result<(), BuildError> {
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    fs::copy(src, dst).map_err(io_err(src))?;
    Ok(())
}

/// Kernel (gzipped if the board says so), DTBs and Pi firmware onto the boot tree.
fn stage_boot(
    board: &BoardConfig,
    kernel: &ExtractedPackage,
    firmware: Option<&ExtractedPackage>,
    release: &str,
    boot: &Path,
) -> Result<(), BuildError> {
    let vmlinuz = kernel.root.join(format!("boot/vmlinuz-{release}"));
    let raw = fs::read(&vmlinuz).map_err(io_err(&vmlinuz))?;
    let dst = boot.join(KERNEL_FILE);
    if board.kernel.compress {
        let f = fs::File::create(&dst).map_err(io_err(&dst))?;
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
        gz.write_all(&raw).map_err(io_err(&dst))?;
        gz.finish().map_err(io_err(&dst))?;
    } else {
        fs::write(&dst, raw).map_err(io_err(&dst))?;
    }
    let dtb_dir = kernel.root.join(format!("usr/lib/linux-image-{release}"));
    for dtb in &board.dtbs {
        let src = dtb_dir.join(dtb);
        if !src.is_file() {
            return Err(BuildError::FileMissing {
                board: board.name.clone(),
                file: dtb.clone(),
                package: kernel.name.clone(),
                looked: dtb_dir,
            });
        }
        let name = Path::new(dtb).file_name().unwrap_or_default();
        copy_file(&src, &boot.join(name))?;
    }
    if let Some(fw) = firmware {
        let dir = fw.root.join("usr/lib/raspi-firmware");
        for f in &board.firmware {
            let src = dir.join(f);
            if !src.is_file() {
                return Err(BuildError::FileMissing {
                    board: board.name.clone(),
                    file: f.clone(),
                    package: fw.name.clone(),
                    looked: dir,
                });
            }
            copy_file(&src, &boot.join(f))?;
        }
    }
    Ok(())
}

/// The read-only root: bramble, CNI plugins, modules (already installed), /etc links to /run.
fn stage_root(
    board: &BoardConfig,
    bramble: &Path,
    cni: &ExtractedPackage,
    root: &Path,
) -> Result<(), BuildError> {
    for d in [
        "bin",
        "sbin",
        "etc/bramble",
        "etc/cni",
        "opt/cni/bin",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "var",
        "boot",
        "root",
    ] {
        let p = root.join(d);
        fs::create_dir_all(&p).map_err(io_err(&p))?;
    }
    let bin = root.join("bin/bramble");
    copy_file(bramble, &bin)?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).map_err(io_err(&bin))?;
    for (link, target) in [
        ("sbin/init", "../bin/bramble"),
        ("sbin/modprobe", "../bin/bramble"),
        ("etc/resolv.conf", "/run/resolv.conf"),
        ("etc/hosts", "/run/hosts"),
        ("etc/hostname", "/run/hostname"),
        ("etc/cni/net.d", "/var/lib/bramble/cni/net.d"),
    ] {
        let p = root.join(link);
        symlink(target, &p).map_err(io_err(&p))?;
    }
    let cni_dir = cni.root.join("usr/lib/cni");
    for plugin in CNI_PLUGINS {
        let src = cni_dir.join(plugin);
        if !src.is_file() {
            return Err(BuildError::FileMissing {
                board: board.name.clone(),
                file: plugin.into(),
                package: cni.name.clone(),
                looked: cni_dir,
            });
        }
        let dst = root.join("opt/cni/bin").join(plugin);
        copy_file(&src, &dst)?;
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).map_err(io_err(&dst))?;
    }
    write_file(
        &root.join("etc/os-release"),
        &format!(
            "NAME=Bramble\nID=bramble\nPRETTY_NAME=\"Bramble {} ({})\"\nVERSION_ID={}\n",
            env!("CARGO_PKG_VERSION"),
            board.model,
            env!("CARGO_PKG_VERSION")
        ),
    )?;
    write_file(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bramble\n",
    )?;
    write_file(&root.join("etc/group"), "root:x:0:\n")?;
    write_file(
        &root.join("etc/bramble/board"),
        &format!("{}\n", board.name),
    )?;
    write_file(
        &root.join("etc/bramble/modules"),
        &(board.modules.join("\n") + "\n"),
    )?;
    Ok(())
}

/// Files of Debian's `libc6` the dynamically linked CNI plugins need (`readelf -d`: only
/// libc.so.6), at the paths their ELF interpreter and the loader's default search use.
pub const GLIBC_FILES: [&str; 2] = [
    "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
    "lib/aarch64-linux-gnu/libc.so.6",
];

/// glibc's loader and libc for the CNI plugins (the plugins fail with ENOENT without the
/// interpreter `/lib/ld-linux-aarch64.so.1`).
fn stage_glibc(
    board: &BoardConfig,
    libc: &ExtractedPackage,
    root: &Path,
) -> Result<(), BuildError> {
    for f in GLIBC_FILES {
        let src = libc.root.join(f);
        if !src.is_file() {
            return Err(BuildError::FileMissing {
                board: board.name.clone(),
                file: f.into(),
                package: libc.name.clone(),
                looked: libc.root.clone(),
            });
        }
        let dst = root.join(f);
        copy_file(&src, &dst)?;
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).map_err(io_err(&dst))?;
    }
    let link = root.join("lib/ld-linux-aarch64.so.1");
    symlink("aarch64-linux-gnu/ld-linux-aarch64.so.1", &link).map_err(io_err(&link))
}

/// Where the CA bundle goes (the first place rustls-native-certs / openssl-probe look).
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// The CA bundle `update-ca-certificates` would make from Debian's `ca-certificates` (the
/// package ships the certificates; its postinst writes the bundle): registry pulls over HTTPS
/// need it, and the image puller refuses to start without any system CA.
fn stage_ca_bundle(
    board: &BoardConfig,
    ca: &ExtractedPackage,
    root: &Path,
) -> Result<(), BuildError> {
    let dir = ca.root.join("usr/share/ca-certificates/mozilla");
    let mut certs: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    certs.sort();
    if certs.is_empty() {
        return Err(BuildError::FileMissing {
            board: board.name.clone(),
            file: "usr/share/ca-certificates/mozilla/*.crt".into(),
            package: ca.name.clone(),
            looked: dir,
        });
    }
    let mut bundle = String::new();
    for c in &certs {
        let pem = fs::read_to_string(c).map_err(io_err(c))?;
        bundle.push_str(pem.trim_end());
        bundle.push('\n');
    }
    let out = root.join(CA_BUNDLE);
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    write_file(&out, &bundle)
}

/// The initial data partition: the directories services write to.
fn stage_data(data: &Path) -> Result<(), BuildError> {
    for d in ["lib/bramble/cni/net.d", "log"] {
        let p = data.join(d);
        fs::create_dir_all(&p).map_err(io_err(&p))?;
    }
    write_file(
        &data.join("lib/bramble/.created-by-image"),
        "bramble image build\n",
    )
}
