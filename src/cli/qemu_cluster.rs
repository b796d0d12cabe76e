//! `bramble qemu cluster N`: N qemu-virt boards that form one cluster, for a person to try a
//! multi-board Bramble on one machine. The boards sit on a virtual LAN of this machine (a
//! bridge holding `A.B.C.1/24` and a tap per board, nothing routed beyond it) with static
//! addresses `.10`, `.11`, ... from their node configs. Board 0 is `role: both`; once it is
//! Ready, a bootstrap token is created on it (`bramble token create --print-join-command`, run
//! as a child) and the other boards are built as workers joining it with that token and the
//! CA hash. The admin kubeconfig (fetched over board 0's node API) and each board's console
//! are written to `--dir`. Runs until SIGINT/SIGTERM, then stops the boards and removes the
//! LAN.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bramble_image_builder::{build_image, AptCache, BuildOptions};
use bramble_kubelet::client::{client, ApiAccess};
use bramble_node_api::NodeClient;
use bramble_qemu::{install_stop_handlers, stop_requested, Lan, Vm, VmOptions};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

/// `bramble qemu cluster` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Number of boards, 1 to 8.
    pub boards: usize,
    /// The static aarch64 bramble put into the images (scripts/build-aarch64.sh builds it).
    #[arg(
        long,
        env = "BRAMBLE_AARCH64_BINARY",
        default_value = "target/aarch64-unknown-linux-musl/release/bramble"
    )]
    pub bramble: PathBuf,
    /// Directory for the images, consoles and the admin kubeconfig (created).
    #[arg(long, default_value = "bramble-qemu-cluster")]
    pub dir: PathBuf,
    /// The LAN's /24: this machine holds .1, the boards .10, .11, ...
    #[arg(long, default_value = "172.30.100.0")]
    pub subnet: Ipv4Addr,
    /// Prefix of the bridge and tap names (at most 10 characters).
    #[arg(long, default_value = "bqc")]
    pub name: String,
    /// Memory per board in MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory: u32,
    /// CPUs per board.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Registry the boards pull from over plain HTTP (`host[:port]` or CIDR; repeatable),
    /// e.g. one listening on the LAN's .1.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Seconds to wait for each board to become Ready.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Directory of board files.
    #[arg(long, env = "BRAMBLE_BOARD_DIR", default_value = "board-configs")]
    pub board_dir: PathBuf,
}

/// A running board and where its console goes.
struct Board {
    name: String,
    ip: Ipv4Addr,
    vm: Vm,
    console: PathBuf,
    written: usize,
}

impl Board {
    /// Appends new console output to the board's console file.
    fn flush_console(&mut self) {
        let text = self.vm.console();
        if text.len() > self.written {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.console)
            {
                let _ = f.write_all(&text.as_bytes()[self.written..]);
            }
            self.written = text.len();
        }
    }
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Polls `f` every 2 s while the boards run, writing their consoles; fails after `limit`, on
/// a stop signal, or when a board's QEMU exits.
fn wait_for<T>(
    boards: &mut [Board],
    what: &str,
    limit: Duration,
    mut f: impl FnMut(&mut [Board]) -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        for b in boards.iter_mut() {
            b.flush_console();
        }
        if let Some(signal) = stop_requested() {
            bail!("stopped by signal {signal} while waiting for {what}");
        }
        for b in boards.iter_mut() {
            if b.vm.exited() {
                bail!(
                    "{}'s QEMU exited while waiting for {what}; console in {}",
                    b.name,
                    b.console.display()
                );
            }
        }
        if let Some(v) = f(boards) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!(
                "no {what} within {} s; consoles in the --dir",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn node_yaml(
    args: &ClusterArgs,
    gw: Ipv4Addr,
    ip: Ipv4Addr,
    i: usize,
    role: &str,
    api_token: &str,
) -> String {
    let mut y = format!(
        "# bramble qemu cluster: board {i}\n{role}hostname: qemu-b{i}\n\
         network:\n  mode: static\n  interface: eth0\n  address: {}/24\n  gateway: {gw}\n\
         ntp:\n  servers: ['{gw}']\n  timeout_seconds: 1\napi:\n  token: {api_token}\n",
        ip
    );
    if !args.insecure_registries.is_empty() {
        y.push_str("registries:\n  insecure:\n");
        for r in &args.insecure_registries {
            y.push_str(&format!("  - '{r}'\n"));
        }
    }
    y
}

fn build(args: &ClusterArgs, i: usize, yaml: &str) -> Result<PathBuf> {
    let cfg = args.dir.join(format!("b{i}.yaml"));
    std::fs::write(&cfg, yaml).with_context(|| cfg.display().to_string())?;
    let image = args.dir.join(format!("b{i}.img"));
    eprintln!("building {}", image.display());
    build_image(
        &BuildOptions {
            board_dir: args.board_dir.clone(),
            board: "qemu-virt".into(),
            node_config: Some(cfg),
            output: image.clone(),
            bramble: args.bramble.clone(),
            data_files: Vec::new(),
        },
        &AptCache::new(&AptCache::default_dir(), false),
    )?;
    // A 1 GiB card: first boot grows the data partition over it.
    let f = std::fs::OpenOptions::new().write(true).open(&image)?;
    if f.metadata()?.len() < 1 << 30 {
        f.set_len(1 << 30)?;
    }
    Ok(image)
}

fn boot(args: &ClusterArgs, lan: &Lan, i: usize, image: PathBuf) -> Result<Board> {
    let board = bramble_qemu::load_board(&args.board_dir, "virt")?;
    let vm = Vm::start(
        &board,
        &VmOptions {
            image,
            api_port: None,
            forwards: Vec::new(),
            memory_mib: Some(args.memory),
            cpus: Some(args.cpus),
            append: Vec::new(),
            isolated: false,
            lan: Some(lan.nic(i)),
        },
    )?;
    let console = args.dir.join(format!("b{i}.console"));
    let _ = std::fs::remove_file(&console);
    eprintln!(
        "qemu-b{i} booting at {} (console: {})",
        lan.board_ip(i),
        console.display()
    );
    Ok(Board {
        name: format!("qemu-b{i}"),
        ip: lan.board_ip(i),
        vm,
        console,
        written: 0,
    })
}

/// Names of the Ready nodes.
fn ready_nodes(rt: &tokio::runtime::Runtime, api: &Api<Node>) -> Vec<String> {
    let Ok(list) = rt.block_on(api.list(&ListParams::default())) else {
        return Vec::new();
    };
    list.items
        .into_iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|n| n.metadata.name)
        .collect()
}

/// Runs `bramble qemu cluster N` until a stop signal.
pub fn run(args: ClusterArgs) -> Result<()> {
    crate::cli::logging::init("warn");
    if !(1..=8).contains(&args.boards) {
        bail!("N: {} boards; 1 to 8 are supported", args.boards);
    }
    if !args.bramble.is_file() {
        bail!(
            "--bramble {}: no such file (scripts/build-aarch64.sh builds the static aarch64 binary)",
            args.bramble.display()
        );
    }
    if args.subnet.octets()[3] != 0 {
        bail!(
            "--subnet {}: give the /24's network address (A.B.C.0)",
            args.subnet
        );
    }
    install_stop_handlers().context("installing signal handlers")?;
    std::fs::create_dir_all(&args.dir).with_context(|| args.dir.display().to_string())?;
    let lan = Lan::create(&args.name, args.subnet, args.boards)?;
    eprintln!(
        "LAN {} on {}/24 (this machine: {})",
        lan.bridge(),
        args.subnet,
        lan.gateway()
    );
    let api_token = random_hex(16)?;
    let image0 = build(
        &args,
        0,
        &node_yaml(
            &args,
            lan.gateway(),
            lan.board_ip(0),
            0,
            "role: both\n",
            &api_token,
        ),
    )?;
    let mut boards = vec![boot(&args, &lan, 0, image0)?];
    let limit = Duration::from_secs(args.timeout);

    // The node API prints its certificate's fingerprint; the admin kubeconfig comes over it.
    let fingerprint = wait_for(&mut boards, "board 0's node API", limit, |b| {
        b[0].vm.console().lines().find_map(|l| {
            l.split_once("certificate sha256 ")
                .map(|(_, f)| f.trim().to_string())
        })
    })?;
    let node_api = NodeClient::new(
        &format!("{}:50000", boards[0].ip),
        &api_token,
        Some(&fingerprint),
    )?;
    let text = wait_for(&mut boards, "the admin kubeconfig", limit, |_| {
        node_api.kubeconfig().ok()
    })?;
    let server = format!("https://{}:6443", boards[0].ip);
    let text: String = text
        .lines()
        .map(|l| match l.split_once("server: ") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}server: {server}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let kubeconfig = args.dir.join("admin.kubeconfig");
    std::fs::write(&kubeconfig, text).with_context(|| kubeconfig.display().to_string())?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let kube = rt.block_on(client(&ApiAccess::Kubeconfig(kubeconfig.clone())))?;
    let nodes: Api<Node> = Api::all(kube);
    let mut ready_after: Vec<Option<Duration>> = vec![None; args.boards];
    let record = |boards: &mut [Board], ready_after: &mut Vec<Option<Duration>>| {
        let ready = ready_nodes(&rt, &nodes);
        for (i, b) in boards.iter().enumerate() {
            if ready_after[i].is_none() && ready.contains(&b.name) {
                ready_after[i] = Some(b.vm.elapsed());
                eprintln!(
                    "{} Ready {:.0} s after its QEMU started",
                    b.name,
                    b.vm.elapsed().as_secs_f64()
                );
            }
        }
        ready_after[..boards.len()].iter().all(Option::is_some)
    };
    wait_for(&mut boards, "qemu-b0 Ready", limit, |b| {
        record(b, &mut ready_after).then_some(())
    })?;

    if args.boards > 1 {
        let out = Command::new("/proc/self/exe")
            .args(["token", "create", "--ttl", "24h", "--print-join-command"])
            .args(["--description", "bramble qemu cluster"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .output()?;
        if !out.status.success() {
            bail!(
                "bramble token create: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let token = stdout.lines().next().unwrap_or_default().trim().to_string();
        let hash = stdout
            .lines()
            .find_map(|l| l.strip_prefix("ca-cert-hash: "))
            .context("bramble token create printed no ca-cert-hash")?
            .trim()
            .to_string();
        let join = format!(
            "role: worker\njoin:\n  address: {server}\n  token: {token}\n  ca_cert_hash: {hash}\n"
        );
        for i in 1..args.boards {
            let image = build(
                &args,
                i,
                &node_yaml(&args, lan.gateway(), lan.board_ip(i), i, &join, &api_token),
            )?;
            boards.push(boot(&args, &lan, i, image)?);
        }
        wait_for(&mut boards, "every board Ready", limit, |b| {
            record(b, &mut ready_after).then_some(())
        })?;
    }

    println!("board     address        Ready after (s of QEMU)");
    for (b, t) in boards.iter().zip(&ready_after) {
        println!(
            "{:<9} {:<14} {:.0}",
            b.name,
            b.ip,
            t.unwrap_or_default().as_secs_f64()
        );
    }
    println!(
        "kubectl --kubeconfig {} get nodes -o wide\nnode API: bramble node --kubeconfig {} \
         --node IP status (mutual TLS once a board's kubelet has its serving certificate), or \
         token {api_token}: bramble node --node {} --token ... --fingerprint {fingerprint} \
         status\nCtrl-C stops the boards.",
        kubeconfig.display(),
        kubeconfig.display(),
        boards[0].ip
    );
    let stopped = wait_for(
        &mut boards,
        "a stop signal",
        Duration::from_secs(10 * 365 * 86_400),
        |_| None::<()>,
    );
    for b in boards.iter_mut() {
        b.flush_console();
        b.vm.stop(Duration::from_secs(10));
    }
    drop(lan);
    match stopped {
        Err(e) if stop_requested().is_some() => {
            eprintln!("boards stopped, LAN removed ({e})");
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ClusterArgs,
    }

    #[test]
    fn board_configs_are_valid_node_configs_with_static_lan_addresses() {
        let args = Cli::parse_from(["x", "3", "--insecure-registry", "172.30.100.1:5000"]).args;
        let gw = Ipv4Addr::new(172, 30, 100, 1);
        let both = node_yaml(
            &args,
            gw,
            Ipv4Addr::new(172, 30, 100, 10),
            0,
            "role: both\n",
            "t0123456789abcdef",
        );
        let join = format!(
            "role: worker\njoin:\n  address: https://172.30.100.10:6443\n  token: abcdef.0123456789abcdef\n  ca_cert_hash: sha256:{}\n",
            "ab".repeat(32)
        );
        let worker = node_yaml(
            &args,
            gw,
            Ipv4Addr::new(172, 30, 100, 11),
            1,
            &join,
            "t0123456789abcdef",
        );
        for text in [&both, &worker] {
            let cfg =
                bramble_qemu::NodeConfig::parse(std::path::Path::new("b.yaml"), text).unwrap();
            assert_eq!(cfg.registries.insecure, ["172.30.100.1:5000"]);
            assert_eq!(cfg.network.gateway, Some(gw));
        }
        let w = bramble_qemu::NodeConfig::parse(std::path::Path::new("b1.yaml"), &worker).unwrap();
        assert_eq!(w.hostname, "qemu-b1");
        assert_eq!(
            w.network.address.unwrap().ip,
            Ipv4Addr::new(172, 30, 100, 11)
        );
        assert_eq!(w.join.unwrap().address, "https://172.30.100.10:6443");
    }

    #[test]
    fn board_count_is_checked_before_anything_is_made() {
        let args = Cli::parse_from(["x", "9"]).args;
        let e = run(args).unwrap_err();
        assert!(e.to_string().contains("1 to 8"), "{e}");
    }
}
