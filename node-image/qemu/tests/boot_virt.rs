//! Boots the real qemu-virt image under qemu-system-aarch64 and watches Bramble's init on the
//! serial console: PID 1 in the initramfs, switch_root to the squashfs, cgroup2 mounted with its
//! controllers, the data partition grown on first boot, the node config read, DHCP from QEMU's
//! user network, the clock set from an SNTP server on this machine, then a reboot keeps the data.
//! Needs the static aarch64 bramble (scripts/build-aarch64.sh or BRAMBLE_AARCH64_BINARY).

use std::net::UdpSocket;
use std::time::Duration;

use bramble_image_builder::{build_image, AptCache, BuildOptions};
use bramble_qemu::{Vm, VmOptions};

mod common;
use common::{aarch64_binary, repo};

/// An SNTP server on 127.0.0.1 (the guest reaches it as 10.0.2.2) answering with a fixed time.
fn sntp_server(secs_since_1970: u64) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 48];
        // Bounded: answers at most 50 requests, then stops.
        for _ in 0..50 {
            let Ok((_, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            let mut reply = [0u8; 48];
            reply[0] = 0x24;
            reply[1] = 2;
            reply[24..32].copy_from_slice(&buf[40..48]);
            let tx = (secs_since_1970 + 2_208_988_800) << 32;
            reply[40..48].copy_from_slice(&tx.to_be_bytes());
            let _ = sock.send_to(&reply, from);
        }
    });
    port
}

#[test]
fn virt_image_boots_to_bramble_init_with_cgroup2_and_keeps_data_across_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let ntp_port = sntp_server(1_900_000_000); // 2030-03-17
    let cfg = dir.path().join("bramble.yaml");
    std::fs::write(
        &cfg,
        format!(
            "role: both\nhostname: qemu-node-1\nnetwork:\n  mode: dhcp\n  interface: eth0\n\
             ntp:\n  servers: ['10.0.2.2:{ntp_port}']\n  timeout_seconds: 3\n\
             debug:\n  no_services: true\n"
        ),
    )
    .unwrap();
    let image = dir.path().join("virt.img");
    let opts = BuildOptions {
        board_dir: repo().join("board-configs"),
        board: "qemu-virt".into(),
        node_config: Some(cfg),
        output: image.clone(),
        bramble: aarch64_binary(),
        data_files: Vec::new(),
    };
    build_image(&opts, &AptCache::new(&AptCache::default_dir(), false)).unwrap();
    let built_len = std::fs::metadata(&image).unwrap().len();
    // A 1 GiB "card": first boot grows the data partition and adds root slot B.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();

    let board = bramble_boards::load_board(&repo().join("board-configs"), "qemu-virt").unwrap();
    let vm_opts = VmOptions {
        image: image.clone(),
        api_port: None,
        forwards: Vec::new(),
        memory_mib: Some(512),
        cpus: Some(1),
        append: Vec::new(),
        isolated: false,
        lan: None,
    };
    let mut vm = Vm::start(&board, &vm_opts).unwrap();
    let t_stage1 = vm
        .wait_for(
            "bramble-init: stage 1 (initramfs)",
            Duration::from_secs(180),
        )
        .unwrap();
    let t_cg = vm
        .wait_for(
            "bramble-init: cgroup2 controllers:",
            Duration::from_secs(120),
        )
        .unwrap();
    let t_ready = vm
        .wait_for("bramble-init: ready", Duration::from_secs(180))
        .unwrap();
    let console = vm.console();
    eprintln!("{console}");
    eprintln!(
        "boot timings (wall, QEMU start): init PID 1 in initramfs {:.1} s, cgroup2 on real root {:.1} s, ready {:.1} s",
        t_stage1.as_secs_f64(),
        t_cg.as_secs_f64(),
        t_ready.as_secs_f64()
    );
    let cg_line = console
        .lines()
        .find(|l| l.contains("cgroup2 controllers:"))
        .unwrap();
    for c in ["cpu", "memory", "pids", "io"] {
        assert!(
            cg_line.split_whitespace().any(|w| w == c),
            "{c} missing: {cg_line}"
        );
    }
    assert!(
        console.contains("first boot: growing data partition"),
        "no growth"
    );
    assert!(console.contains("adding root slot B"));
    assert!(console.contains("data partition /dev/vda3 mounted on /var"));
    assert!(console.contains("node config /boot/bramble.yaml: role Both, hostname qemu-node-1"));
    assert!(
        console.contains("network eth0 10.0.2.15/24"),
        "no DHCP lease"
    );
    assert!(
        console.contains(&format!("clock set from NTP server 10.0.2.2:{ntp_port}")),
        "no NTP"
    );
    assert!(!console.contains("Kernel panic"));
    drop(vm);
    assert!(built_len < 160 << 20);

    // Second boot: no growth, the saved clock floor is read from the data partition.
    let mut vm = Vm::start(&board, &vm_opts).unwrap();
    vm.wait_for("bramble-init: ready", Duration::from_secs(240))
        .unwrap();
    let console = vm.console();
    assert!(!console.contains("first boot: growing"), "grew twice");
    assert!(
        console.contains("clock set from the saved-time floor"),
        "floor not used:\n{console}"
    );
}
