//! The Raspberry Pi 3 B image on QEMU's raspi3b board model (a real BCM2837 model, SD card on
//! the SoC's SD host): boots Debian's kernel with the board's DTB from the image and reaches
//! Bramble's init reading its node config from the FAT partition. Slow (~minutes of emulation):
//! runs with BRAMBLE_SLOW_TESTS=1.

use std::path::PathBuf;
use std::time::Duration;

use bramble_image_builder::{build_image, AptCache, BuildOptions};
use bramble_qemu::{Vm, VmOptions};

mod common;
use common::repo;

#[test]
fn rpi_3b_image_boots_on_raspi3b_to_init_reading_its_node_config() {
    if std::env::var_os("BRAMBLE_SLOW_TESTS").is_none() {
        eprintln!("set BRAMBLE_SLOW_TESTS=1 to boot the rpi-3b image on QEMU's raspi3b model");
        return;
    }
    let bramble = std::env::var_os("BRAMBLE_AARCH64_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/aarch64-unknown-linux-musl/release/bramble"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bramble.yaml");
    std::fs::write(&cfg, "role: worker\nhostname: pi3-node\njoin:\n  address: https://10.0.0.1:6443\n  token: abcdef.0123456789abcdef\ndebug:\n  no_services: true\n").unwrap();
    let image = dir.path().join("rpi-3b.img");
    let opts = BuildOptions {
        board_dir: repo().join("board-configs"),
        board: "rpi-3b".into(),
        node_config: Some(cfg),
        output: image.clone(),
        bramble,
        data_files: Vec::new(),
    };
    build_image(&opts, &AptCache::new(&AptCache::default_dir(), false)).unwrap();
    let board = bramble_boards::load_board(&repo().join("board-configs"), "rpi-3b").unwrap();
    let vm_opts = VmOptions {
        image,
        api_port: None,
        forwards: Vec::new(),
        memory_mib: None,
        cpus: None,
        append: Vec::new(),
        isolated: true,
        lan: None,
    };
    let mut vm = Vm::start(&board, &vm_opts).unwrap();
    let t1 = vm
        .wait_for(
            "bramble-init: stage 1 (initramfs)",
            Duration::from_secs(600),
        )
        .unwrap();
    let t2 = vm
        .wait_for(
            "node config /boot/bramble.yaml: role Worker, hostname pi3-node",
            Duration::from_secs(600),
        )
        .unwrap();
    let console = vm.console();
    eprintln!(
        "{}",
        console
            .lines()
            .filter(|l| l.contains("bramble-init"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "raspi3b: init PID 1 at {:.1} s, node config read at {:.1} s",
        t1.as_secs_f64(),
        t2.as_secs_f64()
    );
    assert!(console.contains("bramble-init: cgroup2 controllers:"));
    assert!(
        console.contains("is /dev/mmcblk0p2"),
        "root not found on the SD card"
    );
}
