//! The node API on a booted qemu-virt guest: init serves HTTPS on port 50000 (forwarded to
//! 127.0.0.1 here); the client pins the certificate fingerprint init printed, reads status
//! (memory, processes, block-device writes) and init's log ring, is refused with a wrong token,
//! and reboots the board; the certificate lives on the data partition, so the next boot serves
//! the same one. Needs the static aarch64 bramble (scripts/build-aarch64.sh).

use std::time::Duration;

use bramble_image_builder::{build_image, AptCache, BuildOptions};
use bramble_node_api::{NodeApiError, NodeClient, PowerRequest};
use bramble_qemu::{Vm, VmOptions};

mod common;
use common::{aarch64_binary, free_port, repo};

const TOKEN: &str = "node-api-test-token-0123";

fn fingerprint(console: &str) -> String {
    console
        .lines()
        .find_map(|l| {
            l.split_once("certificate sha256 ")
                .map(|(_, f)| f.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no node API line:\n{console}"))
}

#[test]
fn node_api_serves_status_logs_and_reboot_on_the_virt_guest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bramble.yaml");
    std::fs::write(
        &cfg,
        format!(
            "role: worker\nhostname: qemu-api\njoin:\n  address: https://10.0.2.2:6443\n  \
             token: abcdef.0123456789abcdef\nntp:\n  servers: ['10.0.2.2:9']\n  timeout_seconds: 1\n\
             debug:\n  no_services: true\napi:\n  token: {TOKEN}\n"
        ),
    )
    .unwrap();
    let image = dir.path().join("virt.img");
    build_image(
        &BuildOptions {
            board_dir: repo().join("board-configs"),
            board: "qemu-virt".into(),
            node_config: Some(cfg),
            output: image.clone(),
            bramble: aarch64_binary(),
            data_files: Vec::new(),
        },
        &AptCache::new(&AptCache::default_dir(), false),
    )
    .unwrap();
    let board = bramble_boards::load_board(&repo().join("board-configs"), "qemu-virt").unwrap();
    let port = free_port();
    let opts = VmOptions {
        image,
        api_port: None,
        forwards: vec![(port, 50000)],
        memory_mib: Some(512),
        cpus: Some(1),
        append: Vec::new(),
        isolated: false,
        lan: None,
    };
    let mut vm = Vm::start(&board, &opts).unwrap();
    let up = vm.wait_for("node API on https://", Duration::from_secs(240));
    let console = vm.console();
    up.unwrap_or_else(|e| panic!("{e}:\n{console}"));
    let fp = fingerprint(&console);
    let addr = format!("127.0.0.1:{port}");
    let client = NodeClient::new(&addr, TOKEN, Some(&fp)).unwrap();

    let status = client.status().unwrap();
    eprintln!("{status:#}");
    assert_eq!(status["hostname"], "qemu-api");
    assert_eq!(status["node_api_fingerprint"], fp.as_str());
    assert!(status["memory"]["total_kib"].as_u64().unwrap() > 100_000);
    assert!(status["uptime_seconds"].as_f64().unwrap() > 0.0);
    let procs = status["processes"].as_array().unwrap();
    assert!(procs
        .iter()
        .any(|p| p["pid"] == 1 && p["command"].as_str().unwrap().contains("init")));
    let io = status["block_io"].as_array().unwrap();
    assert!(
        io.iter().any(|d| d["device"] == "vda3"),
        "data partition counters missing: {io:?}"
    );
    assert!(status["data_disk"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(status["image_manifest"]
        .as_str()
        .unwrap()
        .contains("board: qemu-virt"));

    let logs = client.logs(0, Some("init")).unwrap();
    assert!(
        logs.iter().any(|l| l.text.starts_with("ready after")),
        "{logs:?}"
    );
    let last = logs.last().unwrap().seq;
    assert!(client
        .logs(last, Some("init"))
        .unwrap()
        .iter()
        .all(|l| l.seq > last));

    match NodeClient::new(&addr, "not-the-token-at-all", Some(&fp))
        .unwrap()
        .power(PowerRequest::Reboot)
    {
        Err(NodeApiError::Status { status: 401, .. }) => {}
        other => panic!("wrong token: {other:?}"),
    }
    client.power(PowerRequest::Reboot).unwrap();
    vm.wait_for("file systems synced and unmounted", Duration::from_secs(60))
        .unwrap();
    assert!(
        vm.wait_exit(Duration::from_secs(30)),
        "QEMU did not exit on reboot"
    );
    drop(vm);

    // Next boot: same certificate from the data partition.
    let mut vm = Vm::start(&board, &opts).unwrap();
    vm.wait_for("node API on https://", Duration::from_secs(240))
        .unwrap();
    assert_eq!(fingerprint(&vm.console()), fp);
    assert_eq!(
        NodeClient::new(&addr, TOKEN, Some(&fp))
            .unwrap()
            .status()
            .unwrap()["hostname"],
        "qemu-api"
    );
}
