//! The initramfs: `/init` (bramble), device nodes, mount points and the storage modules stage 1
//! loads, as a newc cpio. Compressed with zstd when the kernel's config says it can unpack it
//! (`CONFIG_RD_ZSTD=y`: smaller than gzip and far quicker to unpack than xz on a slow board),
//! otherwise gzip.

use std::fs;
use std::io::Write;
use std::path::Path;

use bramble_boards::BoardConfig;

use crate::cpio::{CpioWriter, Entry};
use crate::error::{io_err, BuildError};
use crate::tools::run;

/// How the initramfs is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip level 9 (every kernel).
    Gzip,
    /// zstd level 19 (kernels with `CONFIG_RD_ZSTD=y`).
    Zstd,
}

/// The best compression the kernel in `kernel_root` unpacks (from `boot/config-<release>`).
pub fn initramfs_compression(kernel_root: &Path, release: &str) -> Compression {
    let config =
        fs::read_to_string(kernel_root.join(format!("boot/config-{release}"))).unwrap_or_default();
    if config.lines().any(|l| l.trim() == "CONFIG_RD_ZSTD=y") {
        Compression::Zstd
    } else {
        Compression::Gzip
    }
}

/// Write the compressed cpio initramfs: /init (bramble), /dev/console, mount points, the modules.
pub fn write_initramfs(
    bramble: &Path,
    modules_stage: &Path,
    board: &BoardConfig,
    out: &Path,
    compression: Compression,
) -> Result<(), BuildError> {
    let raw = out.with_extension("cpio");
    let f = fs::File::create(&raw).map_err(io_err(&raw))?;
    let mut w = CpioWriter::new(std::io::BufWriter::new(f));
    let dir = |p: &str| Entry::Dir {
        path: p.into(),
        mode: 0o755,
    };
    let mut entries = vec![
        dir("dev"),
        Entry::CharDev {
            path: "dev/console".into(),
            mode: 0o600,
            major: 5,
            minor: 1,
        },
        Entry::CharDev {
            path: "dev/null".into(),
            mode: 0o666,
            major: 1,
            minor: 3,
        },
        dir("proc"),
        dir("sys"),
        dir("run"),
        dir("newroot"),
        dir("etc"),
        dir("etc/bramble"),
        Entry::File {
            path: "etc/bramble/initramfs-modules".into(),
            mode: 0o644,
            data: (board.initramfs_modules.join("\n") + "\n").into_bytes(),
        },
        Entry::File {
            path: "init".into(),
            mode: 0o755,
            data: fs::read(bramble).map_err(io_err(bramble))?,
        },
    ];
    collect_tree(modules_stage, modules_stage, &mut entries)?;
    for e in &entries {
        w.add(e).map_err(io_err(out))?;
    }
    let mut f = w.finish().map_err(io_err(out))?;
    f.flush().map_err(io_err(out))?;
    drop(f);
    match compression {
        Compression::Zstd => {
            run(
                "zstd",
                [
                    "-19".as_ref(),
                    "-q".as_ref(),
                    "-f".as_ref(),
                    raw.as_os_str(),
                    "-o".as_ref(),
                    out.as_os_str(),
                ],
                None,
            )?;
        }
        Compression::Gzip => {
            let mut input = fs::File::open(&raw).map_err(io_err(&raw))?;
            let f = fs::File::create(out).map_err(io_err(out))?;
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::new(9));
            std::io::copy(&mut input, &mut gz).map_err(io_err(out))?;
            gz.finish().map_err(io_err(out))?;
        }
    }
    fs::remove_file(&raw).map_err(io_err(&raw))
}

fn collect_tree(base: &Path, dir: &Path, out: &mut Vec<Entry>) -> Result<(), BuildError> {
    let mut items: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    items.sort_by_key(|e| e.file_name());
    for e in items {
        let p = e.path();
        let rel = p
            .strip_prefix(base)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        if p.is_dir() {
            out.push(Entry::Dir {
                path: rel,
                mode: 0o755,
            });
            collect_tree(base, &p, out)?;
        } else {
            out.push(Entry::File {
                path: rel,
                mode: 0o644,
                data: fs::read(&p).map_err(io_err(&p))?,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_follows_the_kernel_config() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            initramfs_compression(d.path(), "6.1.0-1-arm64"),
            Compression::Gzip
        );
        std::fs::create_dir_all(d.path().join("boot")).unwrap();
        let config = d.path().join("boot/config-6.1.0-1-arm64");
        std::fs::write(&config, "CONFIG_RD_GZIP=y\n# CONFIG_RD_ZSTD is not set\n").unwrap();
        assert_eq!(
            initramfs_compression(d.path(), "6.1.0-1-arm64"),
            Compression::Gzip
        );
        std::fs::write(&config, "CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n").unwrap();
        assert_eq!(
            initramfs_compression(d.path(), "6.1.0-1-arm64"),
            Compression::Zstd
        );
    }
}
