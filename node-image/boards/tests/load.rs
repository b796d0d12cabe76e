//! Loading the real board files and rejecting bad ones with errors that name file and field.

use std::path::{Path, PathBuf};

use bramble_boards::{
    list_boards, load_board, load_board_file, parse_board, render_cmdline, render_config_txt,
    BoardError, BootKind, NodeConfig, NodeRole, RootRef,
};

fn board_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../board-configs")
}

const ALL: [&str; 7] = [
    "cm4",
    "qemu-virt",
    "rpi-3b",
    "rpi-3b-plus",
    "rpi-4b",
    "rpi-5",
    "rpi-zero-2w",
];

#[test]
fn every_board_file_loads_and_validates() {
    let names = list_boards(&board_dir()).unwrap();
    assert_eq!(names, ALL);
    for name in ALL {
        let b = load_board(&board_dir(), name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.name, name);
        assert_eq!(b.arch, "aarch64");
        assert!(b.initramfs_modules.iter().any(|m| m == "squashfs"));
        for m in [
            "overlay",
            "br_netfilter",
            "nf_tables",
            "veth",
            "bridge",
            "ext4",
        ] {
            assert!(b.modules.iter().any(|x| x == m), "{name} lacks {m}");
        }
        let cmd = render_cmdline(
            &b,
            &RootRef {
                disk_id: 0xdeadbeef,
                root_partition: 2,
                data_partition: 4,
            },
        );
        assert!(cmd.contains("cgroup_no_v1=all"), "{cmd}");
        // THP off: khugepaged's raised min_free_kbytes would hold back a third of a small
        // board's memory (issue 9's board RSS).
        assert!(cmd.contains("transparent_hugepage=never"), "{cmd}");
        assert!(
            cmd.contains("cgroup_enable=memory cgroup_memory=1"),
            "{cmd}"
        );
        assert!(cmd.contains(&format!("console={}", b.uart)), "{cmd}");
        assert!(
            cmd.ends_with("bramble.root=PARTUUID=deadbeef-02 bramble.data=PARTUUID=deadbeef-04")
        );
        if b.boot == BootKind::RaspberrypiFirmware {
            let cfg = render_config_txt(&b, "vmlinuz", "initrd.img");
            assert!(cfg.contains("\narm_64bit=1\n"));
            assert!(cfg.contains("\nenable_uart=1\n"));
            assert!(cfg.contains("\nkernel=vmlinuz\n"));
            assert!(cfg.contains("\ninitramfs initrd.img followkernel\n"));
            assert!(!b.dtbs.is_empty());
        }
    }
}

fn virt_text() -> String {
    std::fs::read_to_string(board_dir().join("qemu-virt.yaml")).unwrap()
}

fn parse_err(text: &str) -> BoardError {
    parse_board(
        Path::new("board-configs/qemu-virt.yaml"),
        text,
        Some("qemu-virt"),
    )
    .unwrap_err()
}

#[test]
fn unknown_field_is_named_with_file() {
    let text = virt_text().replace("kernel:\n", "kernel:\n  flavor: arm64\n");
    let e = parse_err(&text);
    let msg = e.to_string();
    assert!(
        msg.starts_with("board-configs/qemu-virt.yaml: field `kernel.flavor`"),
        "{msg}"
    );
    assert!(msg.contains("unknown field `flavor`"), "{msg}");
}

#[test]
fn missing_kernel_flavour_is_named() {
    let text = virt_text().replace("  flavour: arm64\n", "");
    let msg = parse_err(&text).to_string();
    assert!(msg.contains("field `kernel`"), "{msg}");
    assert!(msg.contains("missing field `flavour`"), "{msg}");
}

#[test]
fn wrong_type_is_named() {
    let text = virt_text().replace("  cpus: 2\n", "  cpus: two\n");
    let e = parse_err(&text);
    assert_eq!(e.fields(), vec!["resources.cpus".to_string()]);
    assert!(e.to_string().contains("invalid type"), "{e}");
}

#[test]
fn semantic_errors_name_every_field() {
    let text = virt_text()
        .replace("arch: aarch64", "arch: armv7")
        .replace("  - console=ttyAMA0\n", "  - root=/dev/sda1\n")
        .replace("  - squashfs\n", "  - squashfs.ko\n");
    let e = parse_err(&text);
    let fields = e.fields();
    for f in [
        "arch",
        "cmdline[0]",
        "cmdline",
        "initramfs_modules[2]",
        "initramfs_modules",
    ] {
        assert!(
            fields.contains(&f.to_string()),
            "{f} not in {fields:?}: {e}"
        );
    }
}

#[test]
fn name_must_match_file() {
    let text = virt_text().replace("name: qemu-virt", "name: other");
    let e = parse_err(&text);
    assert_eq!(e.fields(), vec!["name".to_string()]);
}

#[test]
fn unknown_board_lists_known_ones() {
    let e = load_board(&board_dir(), "rpi-9").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("unknown board `rpi-9`"), "{msg}");
    assert!(msg.contains("rpi-4b"), "{msg}");
    assert!(load_board(&board_dir(), "../Cargo").is_err());
}

#[test]
fn read_error_names_path() {
    let e = load_board_file(Path::new("/nonexistent/x.yaml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.yaml: cannot read"),
        "{e}"
    );
}

#[test]
fn node_config_parses_with_defaults() {
    let c = NodeConfig::parse(Path::new("bramble.yaml"), "hostname: pi-1\n").unwrap();
    assert_eq!(c.role, NodeRole::Both);
    assert_eq!(c.network.interface, "eth0");
    assert_eq!(c.ntp.servers, vec!["pool.ntp.org".to_string()]);
    let full = "role: worker\nhostname: pi-2\njoin:\n  address: https://10.0.0.1:6443\n  token: abcdef.0123456789abcdef\nnetwork:\n  mode: static\n  address: 192.168.1.10/24\n  gateway: 192.168.1.1\n  dns: [192.168.1.1]\nntp:\n  servers: [time.example:123]\n";
    let c = NodeConfig::parse(Path::new("bramble.yaml"), full).unwrap();
    assert_eq!(c.network.address.unwrap().prefix, 24);
    assert!(c.role.runs_kubelet() && !c.role.runs_controller());
}

#[test]
fn node_config_insecure_registries_are_checked_by_entry() {
    let p = Path::new("/boot/bramble.yaml");
    let ok = "hostname: a\nregistries:\n  insecure: ['10.0.2.2:5000', registry.lan, '192.168.1.0/24', '[fd00::1]:5000']\n";
    let c = NodeConfig::parse(p, ok).unwrap();
    assert_eq!(c.registries.insecure.len(), 4);
    let bad = "hostname: a\nregistries:\n  insecure: [ok.lan, 'http://10.0.2.2:5000', 'r:0', '10.0.0.0/33', 'a b', '[x]:1']\n";
    let e = NodeConfig::parse(p, bad).unwrap_err();
    assert_eq!(
        e.fields(),
        (1..=5)
            .map(|i| format!("registries.insecure[{i}]"))
            .collect::<Vec<_>>(),
        "{e}"
    );
    assert!(e.to_string().contains("without a scheme"), "{e}");
    let e = NodeConfig::parse(p, "hostname: a\nregistries:\n  mirrors: []\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `mirrors`"), "{e}");
}

#[test]
fn node_config_errors_name_fields() {
    let p = Path::new("/boot/bramble.yaml");
    let e = NodeConfig::parse(p, "hostname: a\nrole: master\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/boot/bramble.yaml: field `role`: unknown variant `master`"),
        "{e}"
    );
    let e = NodeConfig::parse(
        p,
        "hostname: a\nnetwork:\n  mode: static\n  address: 10.0.0.1\n",
    )
    .unwrap_err();
    assert_eq!(e.fields(), vec!["network.address".to_string()], "{e}");
    let e = NodeConfig::parse(p, "role: worker\nhostname: Bad_Name\n").unwrap_err();
    assert_eq!(
        e.fields(),
        vec!["hostname".to_string(), "join".to_string()],
        "{e}"
    );
    let e = NodeConfig::parse(p, "hostname: a\nntp:\n  servers: []\n").unwrap_err();
    assert_eq!(e.fields(), vec!["ntp.servers".to_string()], "{e}");
    let e = NodeConfig::parse(p, "hostname: a\nsshd: true\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `sshd`"), "{e}");
}
