//! `bramble image build`: a flashable SD-card image for one board, built without root and
//! without loop devices.
//!
//! The image has an MBR with a FAT boot partition (Pi firmware, kernel, initramfs, DTBs,
//! `config.txt`, `cmdline.txt`, `bramble.yaml`, the image manifest), a read-only squashfs root
//! (the static aarch64 `bramble`, CNI plugins, the kernel modules the board needs) and an ext4
//! data partition that `bramble init` grows to the card on first boot. Kernel, modules, DTBs and
//! firmware are Debian arm64 packages fetched with apt into a private cache.

mod build;
mod cpio;
mod debian;
mod elf;
mod error;
mod filesystems;
mod initramfs;
mod modules;
mod nftables;
mod partition;
mod tools;

use std::path::PathBuf;

pub use build::{
    build_image, BuildOptions, BuildReport, ImageManifest, PackageRecord, CNI_PLUGINS,
    INITRAMFS_FILE, KERNEL_FILE, MANIFEST_FILE, NODE_CONFIG_FILE,
};
pub use cpio::{CpioWriter, Entry as CpioEntry};
pub use debian::{parse_kernel_depends, AptCache, ExtractedPackage, PackageSource};
pub use elf::check_static_aarch64;
pub use error::BuildError;
pub use modules::ModulesDep;
pub use nftables::{NFTABLES_PACKAGES, NFT_PATH};
pub use partition::{Layout, MIB};

/// Default location of the aarch64 binary built by scripts/build-aarch64.sh.
pub const DEFAULT_BRAMBLE_BINARY: &str = "target/aarch64-unknown-linux-musl/release/bramble";

/// `bramble image build` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// Board to build for (a file name in the board directory without `.yaml`, e.g. rpi-4b,
    /// qemu-virt).
    #[arg(long)]
    pub board: String,
    /// Node config (bramble.yaml) to put on the boot partition; validated before anything is
    /// built. Default: a single-board cluster (role both) on DHCP.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output image file.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Directory holding the board files.
    #[arg(long, env = "BRAMBLE_BOARD_DIR", default_value = "board-configs")]
    pub board_dir: PathBuf,
    /// Static aarch64 `bramble` binary to install (build it with scripts/build-aarch64.sh).
    #[arg(long, env = "BRAMBLE_AARCH64_BINARY", default_value = DEFAULT_BRAMBLE_BINARY)]
    pub bramble: PathBuf,
    /// Cache for Debian arm64 packages (default: $BRAMBLE_CACHE_DIR, $XDG_CACHE_HOME/bramble or
    /// ~/.cache/bramble, plus /debian-arm64).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Use only cached packages; never run apt-get update or download.
    #[arg(long)]
    pub offline: bool,
}

/// Run `bramble image build`; prints a summary of what was written.
pub fn run(args: BuildArgs) -> Result<BuildReport, BuildError> {
    let cache = AptCache::new(
        &args.cache_dir.clone().unwrap_or_else(AptCache::default_dir),
        args.offline,
    );
    let opts = BuildOptions {
        board_dir: args.board_dir,
        board: args.board,
        node_config: args.config,
        output: args.output,
        bramble: args.bramble,
        data_files: Vec::new(),
    };
    let report = build_image(&opts, &cache)?;
    let l = &report.layout;
    println!(
        "{}: board {} ({}), {} MiB: boot {} MiB, root {} MiB (squashfs {:.1} MiB), data {} MiB (grows on first boot); kernel {}",
        report.image.display(),
        report.manifest.board,
        report.manifest.model,
        l.total() / MIB,
        l.boot.1 / MIB,
        l.root.1 / MIB,
        report.root_size as f64 / MIB as f64,
        l.data.1 / MIB,
        report.manifest.kernel_release,
    );
    for p in &report.manifest.packages {
        println!("  {} {} ({})", p.name, p.version, p.suite);
    }
    Ok(report)
}
