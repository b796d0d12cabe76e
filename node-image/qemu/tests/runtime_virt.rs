//! Containers on cgroup v2 in the QEMU aarch64 guest: the real qemu-virt image (static aarch64
//! bramble with seccomp) boots with `debug.runtime_selftest`, and init runs `bramble init
//! selftest`: a pod sandbox (`bramble pause`) and a busybox container with a 32 MiB memory
//! limit through bramble-runtime (libcontainer). The test reads the results from the serial
//! console: the container's cgroup v2 `memory.max` while it runs, its output, then the OOM kill
//! (`memory.events` oom_kill, exit code 137, reason OOMKilled).
//! Needs the static aarch64 bramble (scripts/build-aarch64.sh or BRAMBLE_AARCH64_BINARY) and
//! Debian's arm64 busybox-static (fetched into the image builder's apt cache).

use std::path::PathBuf;
use std::time::Duration;

use bramble_image_builder::{build_image, AptCache, BuildOptions, PackageSource};
use bramble_qemu::{Vm, VmOptions};

mod common;
use common::{aarch64_binary, repo};

fn line<'a>(console: &'a str, prefix: &str) -> &'a str {
    console
        .lines()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no `{prefix}` line on the console:\n{console}"))
}

#[test]
fn virt_guest_runs_a_busybox_container_on_cgroup2_with_memory_limit_and_oom_kill() {
    let dir = tempfile::tempdir().unwrap();
    let cache = AptCache::new(&AptCache::default_dir(), false);
    let busybox = cache.fetch("bookworm", "busybox-static").unwrap();
    let cfg = dir.path().join("bramble.yaml");
    std::fs::write(
        &cfg,
        "role: worker\nhostname: qemu-rt\njoin:\n  address: https://10.0.2.2:6443\n  \
         token: abcdef.0123456789abcdef\nnetwork:\n  mode: dhcp\n  interface: eth0\n\
         ntp:\n  servers: ['10.0.2.2:9']\n  timeout_seconds: 1\n\
         debug:\n  no_services: true\n  runtime_selftest: true\n",
    )
    .unwrap();
    let image = dir.path().join("virt.img");
    let opts = BuildOptions {
        board_dir: repo().join("board-configs"),
        board: "qemu-virt".into(),
        node_config: Some(cfg),
        output: image.clone(),
        bramble: aarch64_binary(),
        data_files: vec![(
            busybox.root.join("bin/busybox"),
            PathBuf::from("lib/bramble/selftest/busybox"),
        )],
    };
    build_image(&opts, &cache).unwrap();
    // A 1 GiB "card": first boot grows the data partition (the pause rootfs holds a copy of the
    // whole bramble binary, more than the built 32 MiB partition has free).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let board = bramble_boards::load_board(&repo().join("board-configs"), "qemu-virt").unwrap();
    let mut vm = Vm::start(
        &board,
        &VmOptions {
            image,
            api_port: None,
            forwards: Vec::new(),
            memory_mib: Some(512),
            cpus: Some(1),
            append: Vec::new(),
            isolated: false,
            lan: None,
        },
    )
    .unwrap();
    let waited = vm.wait_for("selftest: done", Duration::from_secs(300));
    let console = vm.console();
    eprintln!("{console}");
    waited.unwrap();

    assert!(
        line(&console, "selftest: cgroup ").starts_with("V2"),
        "not cgroup v2"
    );
    assert!(
        line(&console, "selftest: sandbox ").contains("ready true"),
        "sandbox not ready"
    );
    assert!(
        line(&console, "selftest: pause cmdline ").contains("pause"),
        "the sandbox process is not `bramble pause`"
    );
    assert_eq!(
        line(&console, "selftest: running memory.max = "),
        (32u64 << 20).to_string()
    );
    assert!(line(&console, "selftest: log ").contains("hello from busybox"));
    let events = line(&console, "selftest: exited memory.events = ");
    let oom_kill: u64 = events
        .split(", ")
        .find_map(|kv| kv.strip_prefix("oom_kill "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no oom_kill in memory.events: {events}"));
    assert!(oom_kill >= 1, "{events}");
    let exit = line(&console, "selftest: container exit code ");
    assert!(
        exit.starts_with("137 ")
            && exit.contains("reason OOMKilled")
            && exit.contains("oom_killed true"),
        "{exit}"
    );
    assert!(console.contains("selftest: result ok"));
    assert!(!console.contains("Kernel panic"));
}
