//! Builds real images from Debian's arm64 packages and inspects them with the standard tools
//! (sfdisk, mdir/mtype, unsquashfs, debugfs). Needs network access to Debian (first run; cached
//! after) and the static aarch64 `bramble` (scripts/build-aarch64.sh, or BRAMBLE_AARCH64_BINARY).
//! qemu-virt and rpi-4b are built by default; every board with BRAMBLE_SLOW_TESTS=1.

use std::path::{Path, PathBuf};
use std::process::Command;

use bramble_image_builder::{build_image, AptCache, BuildOptions, BuildReport, MIB};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The aarch64 binary the image gets: BRAMBLE_AARCH64_BINARY or the script's output.
pub fn aarch64_binary() -> PathBuf {
    let p = std::env::var_os("BRAMBLE_AARCH64_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/aarch64-unknown-linux-musl/release/bramble"));
    assert!(
        p.is_file(),
        "{} missing: run scripts/build-aarch64.sh (or set BRAMBLE_AARCH64_BINARY)",
        p.display()
    );
    p
}

fn cache() -> AptCache {
    AptCache::new(&AptCache::default_dir(), false)
}

fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build(board: &str, dir: &Path, config: Option<PathBuf>) -> BuildReport {
    let opts = BuildOptions {
        board_dir: repo().join("board-configs"),
        board: board.into(),
        node_config: config,
        output: dir.join(format!("{board}.img")),
        bramble: aarch64_binary(),
        data_files: Vec::new(),
    };
    build_image(&opts, &cache()).unwrap_or_else(|e| panic!("{board}: {e}"))
}

/// Extract partition `n` (offset, size from the report) into its own file for mtools/unsquashfs.
fn extract(image: &Path, (offset, size): (u64, u64), out: &Path) {
    sh(
        "dd",
        &[
            &format!("if={}", image.display()),
            &format!("of={}", out.display()),
            "bs=1M",
            &format!("skip={}", offset / MIB),
            &format!("count={}", size / MIB),
            "status=none",
        ],
    );
}

fn inspect(board: &str) {
    let dir = tempfile::tempdir().unwrap();
    let r = build(board, dir.path(), None);
    let img = &r.image;
    let len = std::fs::metadata(img).unwrap().len();
    assert_eq!(len, r.layout.total());
    eprintln!(
        "{board}: image {} MiB (boot {} MiB, root slot {} MiB with squashfs {:.1} MiB, data {} MiB)",
        len / MIB,
        r.layout.boot.1 / MIB,
        r.layout.root.1 / MIB,
        r.root_size as f64 / MIB as f64,
        r.layout.data.1 / MIB
    );
    assert!(
        len < 160 * MIB,
        "{board}: image {} MiB is over the 160 MiB target",
        len / MIB
    );

    // Partition table.
    let table = sh("sfdisk", &["--dump", &img.to_string_lossy()]);
    assert!(
        table.contains(&format!("label-id: 0x{}", r.manifest.disk_id)),
        "{table}"
    );
    let parts: Vec<&str> = table.lines().filter(|l| l.contains(" : start=")).collect();
    assert_eq!(parts.len(), 3, "{table}");
    assert!(
        parts[0].contains("type=c") && parts[0].contains("bootable"),
        "{table}"
    );
    assert!(
        parts[1].contains("type=83") && parts[2].contains("type=83"),
        "{table}"
    );
    assert!(parts[0].contains("start=        2048"), "{table}");

    // Boot partition (FAT).
    let boot = dir.path().join("boot.vfat");
    extract(img, r.layout.boot, &boot);
    let b = boot.to_string_lossy().to_string();
    let listing = sh("mdir", &["-i", &b, "-b", "::/"]);
    for f in [
        "vmlinuz",
        "initrd.img",
        "cmdline.txt",
        "bramble.yaml",
        "bramble-image.yaml",
    ] {
        assert!(
            listing.contains(&format!("::/{f}")),
            "{board}: {f} missing in\n{listing}"
        );
    }
    let cmdline = sh("mtype", &["-i", &b, "::/cmdline.txt"]);
    assert!(cmdline.contains("cgroup_no_v1=all"), "{cmdline}");
    assert!(
        cmdline.contains(&format!("bramble.root=PARTUUID={}-02", r.manifest.disk_id)),
        "{cmdline}"
    );
    assert!(
        cmdline.contains(&format!("bramble.data=PARTUUID={}-03", r.manifest.disk_id)),
        "{cmdline}"
    );
    let manifest = sh("mtype", &["-i", &b, "::/bramble-image.yaml"]);
    assert!(
        manifest.contains("name: containernetworking-plugins"),
        "{manifest}"
    );
    // nft and every package of its library closure, with their versions.
    for pkg in bramble_image_builder::NFTABLES_PACKAGES {
        let rec = r
            .manifest
            .packages
            .iter()
            .find(|p| p.name == pkg)
            .unwrap_or_else(|| panic!("{board}: {pkg} not in the manifest"));
        assert!(
            manifest.contains(&format!("name: {pkg}\n")) && manifest.contains(rec.version.as_str()),
            "{board}: {pkg} {} not recorded:\n{manifest}",
            rec.version
        );
    }
    assert!(
        manifest.contains(&format!("kernel_release: {}", r.manifest.kernel_release)),
        "{manifest}"
    );
    let board_cfg = bramble_boards::load_board(&repo().join("board-configs"), board).unwrap();
    for dtb in &board_cfg.dtbs {
        let name = Path::new(dtb).file_name().unwrap().to_string_lossy();
        assert!(
            listing.contains(&format!("::/{name}")),
            "{board}: {name} missing"
        );
    }
    for fw in &board_cfg.firmware {
        assert!(
            listing.contains(&format!("::/{fw}")),
            "{board}: {fw} missing"
        );
    }
    if board_cfg.boot == bramble_boards::BootKind::RaspberrypiFirmware {
        let cfg = sh("mtype", &["-i", &b, "::/config.txt"]);
        assert!(
            cfg.contains("arm_64bit=1\n") && cfg.contains("kernel=vmlinuz\n"),
            "{cfg}"
        );
        assert!(cfg.contains("initramfs initrd.img followkernel\n"), "{cfg}");
    }

    // Root (squashfs).
    let root = dir.path().join("root.sqfs");
    extract(img, r.layout.root, &root);
    let ls = sh("unsquashfs", &["-lls", "-d", "", &root.to_string_lossy()]);
    for f in [
        "/bin/bramble",
        "/sbin/init -> ../bin/bramble",
        "/sbin/modprobe -> ../bin/bramble",
        "/lib/ld-linux-aarch64.so.1 -> aarch64-linux-gnu/ld-linux-aarch64.so.1",
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/etc/ssl/certs/ca-certificates.crt",
        "/opt/cni/bin/bridge",
        "/opt/cni/bin/host-local",
        "/opt/cni/bin/loopback",
        "/opt/cni/bin/portmap",
        "/etc/bramble/packages",
        "/etc/resolv.conf -> /run/resolv.conf",
        // nft for the service proxy, NetworkPolicy and masquerade, found without PATH.
        "/sbin/nft",
        "/bin/nft -> ../sbin/nft",
        "/lib/aarch64-linux-gnu/libnftables.so.1",
        "/lib/aarch64-linux-gnu/libnftnl.so.11",
        "/lib/aarch64-linux-gnu/libmnl.so.0",
        "/lib/aarch64-linux-gnu/libxtables.so.12",
        "/lib/aarch64-linux-gnu/libjansson.so.4",
        "/lib/aarch64-linux-gnu/libgmp.so.10",
        "/lib/aarch64-linux-gnu/libedit.so.2",
        "/lib/aarch64-linux-gnu/libbsd.so.0",
        "/lib/aarch64-linux-gnu/libmd.so.0",
        "/lib/aarch64-linux-gnu/libtinfo.so.6",
    ] {
        assert!(
            ls.lines().any(|l| l.ends_with(f)),
            "{board}: {f} missing in root"
        );
    }
    let kdir = format!("/lib/modules/{}/", r.manifest.kernel_release);
    for m in [
        "overlay.ko",
        "br_netfilter.ko",
        "nf_tables.ko",
        // What the proxy's, NetworkPolicy's and masquerade's rules use.
        "nf_conntrack.ko",
        "nf_nat.ko",
        "nft_ct.ko",
        "nft_nat.ko",
        "nft_chain_nat.ko",
        "nft_masq.ko",
        "nft_numgen.ko",
        "nft_fib_ipv4.ko",
        "nft_reject_ipv4.ko",
        "veth.ko",
        "bridge.ko",
        "squashfs.ko",
        "ext4.ko",
    ] {
        assert!(
            ls.lines()
                .any(|l| l.contains(&kdir) && l.ends_with(&format!("/{m}"))),
            "{board}: module {m} missing"
        );
    }
    assert!(
        ls.lines()
            .any(|l| l.ends_with(&format!("{kdir}modules.dep"))),
        "modules.dep missing"
    );
    // Little else: no module outside the closure of the board's list (a few hundred at most).
    let modules = ls.lines().filter(|l| l.ends_with(".ko")).count();
    assert!(modules < 150, "{board}: {modules} modules in the root");
    assert!(!ls.contains("/usr/"), "{board}: root should hold no /usr");

    // Data (ext4).
    let data = dir.path().join("data.ext4");
    extract(img, r.layout.data, &data);
    let d = sh(
        "debugfs",
        &["-R", "ls -p /lib/bramble", &data.to_string_lossy()],
    );
    assert!(d.contains(".created-by-image"), "{d}");
}

#[test]
fn qemu_virt_image_has_the_expected_layout_and_contents() {
    inspect("qemu-virt");
}

#[test]
fn rpi_4b_image_has_firmware_config_txt_and_dtbs() {
    inspect("rpi-4b");
}

#[test]
fn every_other_board_builds_when_slow_tests_are_on() {
    if std::env::var_os("BRAMBLE_SLOW_TESTS").is_none() {
        eprintln!(
            "set BRAMBLE_SLOW_TESTS=1 to build rpi-3b, rpi-3b-plus, rpi-5, rpi-zero-2w and cm4"
        );
        return;
    }
    for board in ["rpi-3b", "rpi-3b-plus", "rpi-5", "rpi-zero-2w", "cm4"] {
        inspect(board);
    }
}

fn assert_nothing_written(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn bad_inputs_fail_clearly_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let base = BuildOptions {
        board_dir: repo().join("board-configs"),
        board: "qemu-virt".into(),
        node_config: None,
        output: out_dir.join("x.img"),
        bramble: aarch64_binary(),
        data_files: Vec::new(),
    };

    // Unknown board.
    let e = build_image(
        &BuildOptions {
            board: "rpi-9".into(),
            ..base.clone()
        },
        &cache(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown board `rpi-9`"), "{e}");

    // Node config with a wrong field.
    let cfg = dir.path().join("bramble.yaml");
    std::fs::write(&cfg, "hostname: pi-1\nrole: master\n").unwrap();
    let e = build_image(
        &BuildOptions {
            node_config: Some(cfg.clone()),
            ..base.clone()
        },
        &cache(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("bramble.yaml: field `role`") && msg.contains("master"),
        "{msg}"
    );

    // Board file with a bad field (in a copy of the board directory).
    let boards = dir.path().join("boards");
    std::fs::create_dir(&boards).unwrap();
    let virt = std::fs::read_to_string(repo().join("board-configs/qemu-virt.yaml")).unwrap();
    std::fs::write(
        boards.join("qemu-virt.yaml"),
        virt.replace("  cpus: 2", "  cpus: many"),
    )
    .unwrap();
    let e = build_image(
        &BuildOptions {
            board_dir: boards.clone(),
            ..base.clone()
        },
        &cache(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("qemu-virt.yaml: field `resources.cpus`"),
        "{e}"
    );

    // Missing kernel package (a flavour Debian does not have).
    std::fs::write(
        boards.join("qemu-virt.yaml"),
        virt.replace("flavour: arm64", "flavour: arm64-nosuch"),
    )
    .unwrap();
    let e = build_image(
        &BuildOptions {
            board_dir: boards.clone(),
            ..base.clone()
        },
        &cache(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("linux-image-arm64-nosuch") && msg.contains("not available"),
        "{msg}"
    );

    // Module the kernel does not have.
    std::fs::write(
        boards.join("qemu-virt.yaml"),
        virt.replace("  - veth\n", "  - veth_nosuch\n"),
    )
    .unwrap();
    let e = build_image(
        &BuildOptions {
            board_dir: boards.clone(),
            ..base.clone()
        },
        &cache(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("kernel module `veth_nosuch` does not exist"),
        "{e}"
    );

    // A binary for the wrong architecture.
    let e = build_image(
        &BuildOptions {
            bramble: std::env::current_exe().unwrap(),
            ..base.clone()
        },
        &cache(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("not a static aarch64 executable"),
        "{e}"
    );

    assert_nothing_written(&out_dir);
}
