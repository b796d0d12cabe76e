//! A/B upgrade on the qemu-virt board, through the node API, as `bramble node upgrade` does it:
//!
//! 1. an image boots from slot A (the card is larger than the image, so first boot adds slot B);
//! 2. a second image is sent: written to slot B, verified, a one-shot try recorded, reboot;
//! 3. `bramble qemu run` (the board's firmware) boots slot B; init marks it good once up;
//!    a plain reboot then stays on B;
//! 4. an image whose root cannot start init is sent to slot A: its trial boot fails, and the
//!    next boot falls back to B, which reports the failed slot.
//!
//! Five boots under software emulation (several minutes): runs with BRAMBLE_SLOW_TESTS=1.
//! Needs the static aarch64 bramble (scripts/build-aarch64.sh).

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bramble_image_builder::{build_image, AptCache, BuildOptions};
use bramble_node_api::image::bundle_from_image;
use bramble_node_api::{NodeClient, PowerRequest};
use bramble_qemu::{partition_extent, Vm, VmOptions};

mod common;
use common::{aarch64_binary, free_port, repo};

const TOKEN: &str = "upgrade-test-token-0123";

fn fingerprint(console: &str) -> String {
    console
        .lines()
        .filter_map(|l| {
            l.split_once("certificate sha256 ")
                .map(|(_, f)| f.trim().to_string())
        })
        .next_back()
        .unwrap_or_else(|| panic!("no node API line:\n{console}"))
}

fn build(dir: &Path, name: &str, cfg: &Path) -> PathBuf {
    let image = dir.join(name);
    build_image(
        &BuildOptions {
            board_dir: repo().join("board-configs"),
            board: "qemu-virt".into(),
            node_config: Some(cfg.to_path_buf()),
            output: image.clone(),
            bramble: aarch64_binary(),
            data_files: Vec::new(),
        },
        &AptCache::new(&AptCache::default_dir(), false),
    )
    .unwrap();
    image
}

/// Boot and wait for the node API; returns the VM and a client pinned to its certificate.
fn boot(board: &bramble_boards::BoardConfig, opts: &VmOptions, port: u16) -> (Vm, NodeClient) {
    let mut vm = Vm::start(board, opts).unwrap();
    let up = vm.wait_for("node API on https://", Duration::from_secs(420));
    let console = vm.console();
    up.unwrap_or_else(|e| panic!("{e}:\n{console}"));
    let client = NodeClient::new(
        &format!("127.0.0.1:{port}"),
        TOKEN,
        Some(&fingerprint(&console)),
    )
    .unwrap();
    (vm, client)
}

fn slots(client: &NodeClient) -> serde_json::Value {
    client.status().unwrap()["slots"].clone()
}

fn upgrade(client: &NodeClient, image: &Path, work: &Path) -> serde_json::Value {
    std::fs::create_dir_all(work).unwrap();
    let bundle = bundle_from_image(image, work).unwrap();
    let mut readers = bundle.readers().unwrap();
    let mut refs: Vec<&mut dyn std::io::Read> = readers
        .iter_mut()
        .map(|r| r.as_mut() as &mut dyn std::io::Read)
        .collect();
    client.upgrade(&bundle.manifest, &mut refs).unwrap()
}

fn wait_exit(vm: &mut Vm, what: &str) {
    let exited = vm.wait_exit(Duration::from_secs(240));
    assert!(exited, "QEMU did not exit ({what}):\n{}", vm.console());
}

#[test]
fn upgrade_switches_slots_and_a_broken_image_falls_back() {
    if std::env::var_os("BRAMBLE_SLOW_TESTS").is_none() {
        eprintln!("set BRAMBLE_SLOW_TESTS=1 to run the A/B upgrade test (five QEMU boots)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bramble.yaml");
    std::fs::write(
        &cfg,
        format!(
            "role: worker\nhostname: qemu-ab\njoin:\n  address: https://10.0.2.2:6443\n  \
             token: abcdef.0123456789abcdef\nntp:\n  servers: ['10.0.2.2:9']\n  timeout_seconds: 1\n\
             debug:\n  no_services: true\napi:\n  token: {TOKEN}\n"
        ),
    )
    .unwrap();
    let card = build(dir.path(), "card.img", &cfg);
    let next = build(dir.path(), "next.img", &cfg);
    // A card larger than the image: first boot grows the data partition and adds slot B.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&card)
        .unwrap()
        .set_len(640 << 20)
        .unwrap();

    let board = bramble_boards::load_board(&repo().join("board-configs"), "qemu-virt").unwrap();
    let port = free_port();
    let opts = VmOptions {
        image: card.clone(),
        api_port: None,
        forwards: vec![(port, 50000)],
        memory_mib: Some(512),
        cpus: Some(1),
        append: Vec::new(),
        isolated: false,
        lan: None,
    };

    // 1. Slot A.
    let (mut vm, client) = boot(&board, &opts, port);
    assert!(
        vm.console().contains("adding root slot B"),
        "{}",
        vm.console()
    );
    let s = slots(&client);
    assert_eq!(
        (s["booted"].as_str(), s["active"].as_str()),
        (Some("a"), Some("a")),
        "{s}"
    );

    // 2. Upgrade to slot B.
    let answer = upgrade(&client, &next, &dir.path().join("bundle1"));
    assert_eq!(answer["slot"], "b", "{answer}");
    assert!(answer["partition"].as_str().unwrap().ends_with("vda4"));
    wait_exit(&mut vm, "reboot after the upgrade");
    drop(vm);

    // 3. The trial boot of B, marked good; a plain reboot stays on B.
    let (mut vm, client) = boot(&board, &opts, port);
    assert!(
        vm.console().contains("root slot b on trial"),
        "{}",
        vm.console()
    );
    let s = slots(&client);
    assert_eq!(
        (s["booted"].as_str(), s["trying"].as_str()),
        (Some("b"), Some("b")),
        "{s}"
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while slots(&client)["active"] != "b" {
        assert!(
            Instant::now() < deadline,
            "slot b never marked good:\n{}",
            vm.console()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(vm.console().contains("root slot b marked good"));
    client.power(PowerRequest::Reboot).unwrap();
    wait_exit(&mut vm, "plain reboot");
    drop(vm);
    let (vm, client) = boot(&board, &opts, port);
    let s = slots(&client);
    assert_eq!(
        (s["booted"].as_str(), s["active"].as_str()),
        (Some("b"), Some("b")),
        "{s}"
    );
    assert!(vm.console().contains("root slot b (active)"));

    // 4. A root without /sbin/init goes to slot A: its trial cannot start init.
    let broken = dir.path().join("broken.img");
    std::fs::copy(&next, &broken).unwrap();
    let empty = dir.path().join("empty-root");
    std::fs::create_dir_all(empty.join("etc")).unwrap();
    std::fs::write(empty.join("etc/os-release"), "NAME=broken\n").unwrap();
    let squash = dir.path().join("broken.squashfs");
    let out = Command::new("mksquashfs")
        .arg(&empty)
        .arg(&squash)
        .args(["-noappend", "-all-root", "-comp", "zstd", "-quiet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (offset, _) = partition_extent(&broken, 2).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&broken)
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&std::fs::read(&squash).unwrap()).unwrap();
    drop(f);
    let mut vm = vm;
    let answer = upgrade(&client, &broken, &dir.path().join("bundle2"));
    assert_eq!(answer["slot"], "a", "{answer}");
    wait_exit(&mut vm, "reboot after the broken upgrade");
    drop(vm);
    // The trial boot of A fails in the initramfs and resets the board.
    let mut vm = Vm::start(&board, &opts).unwrap();
    wait_exit(&mut vm, "failed trial boot");
    assert!(
        vm.console().contains("FATAL in stage 1"),
        "{}",
        vm.console()
    );
    drop(vm);
    // The firmware's try is used up: back to B, which reports the failure.
    let (vm, client) = boot(&board, &opts, port);
    let s = slots(&client);
    assert_eq!(
        (
            s["booted"].as_str(),
            s["active"].as_str(),
            s["failed"].as_str()
        ),
        (Some("b"), Some("b"), Some("a")),
        "{s}\n{}",
        vm.console()
    );
}
