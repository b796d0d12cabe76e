//! Partition images made from staging directories with the standard tools, no root needed:
//! FAT (`mkfs.vfat` on a file + `mcopy`), squashfs (`mksquashfs`), ext4 (`mkfs.ext4 -d`).

use std::fs;
use std::path::Path;

use crate::error::{io_err, BuildError};
use crate::partition::MIB;
use crate::tools::run;

/// Total size in bytes of the regular files under `dir`.
pub fn tree_size(dir: &Path) -> Result<u64, BuildError> {
    let mut total = 0;
    for e in fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let ft = e.file_type().map_err(io_err(e.path()))?;
        if ft.is_dir() {
            total += tree_size(&e.path())?;
        } else if ft.is_file() {
            total += e.metadata().map_err(io_err(e.path()))?.len();
        }
    }
    Ok(total)
}

/// Make a FAT image of `size` bytes labelled `label` holding the contents of `dir`.
pub fn make_fat(dir: &Path, image: &Path, size: u64, label: &str) -> Result<(), BuildError> {
    let _ = fs::remove_file(image);
    let kib = (size / 1024).to_string();
    run(
        "mkfs.vfat",
        [
            "-C".as_ref(),
            image.as_os_str(),
            "-n".as_ref(),
            label.as_ref(),
            "-i".as_ref(),
            "b0017b1e".as_ref(),
            kib.as_ref(),
        ],
        None,
    )?;
    let img = format!("{}", image.display());
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort();
    if entries.is_empty() {
        return Ok(());
    }
    // mcopy -s copies directories recursively; -Q stops at the first error; -m keeps mtimes.
    let mut args: Vec<std::ffi::OsString> = vec![
        "-i".into(),
        img.into(),
        "-s".into(),
        "-Q".into(),
        "-m".into(),
    ];
    args.extend(entries.into_iter().map(|p| p.into_os_string()));
    args.push("::/".into());
    run("mcopy", &args, None)?;
    Ok(())
}

/// Make a read-only squashfs (zstd) of `dir`, every file owned by root.
pub fn make_squashfs(dir: &Path, image: &Path) -> Result<(), BuildError> {
    let _ = fs::remove_file(image);
    run(
        "mksquashfs",
        [
            dir.as_os_str(),
            image.as_os_str(),
            "-noappend".as_ref(),
            "-all-root".as_ref(),
            "-comp".as_ref(),
            "zstd".as_ref(),
            "-Xcompression-level".as_ref(),
            "19".as_ref(),
            "-b".as_ref(),
            "256K".as_ref(),
            "-no-progress".as_ref(),
            "-quiet".as_ref(),
        ],
        None,
    )?;
    Ok(())
}

/// Largest size (4 KiB blocks) the data file system can be grown to online: 1 TiB. mke2fs
/// reserves group-descriptor blocks for it (a few dozen), so first-boot growth works on any card.
const DATA_RESIZE_MAX_BLOCKS: u64 = 1 << 28;

/// Make an ext4 image of `size` bytes labelled `label`, populated from `dir`: 4 KiB blocks
/// (mke2fs would pick 1 KiB for a partition this small, wrong once it is grown to the card).
pub fn make_ext4(dir: &Path, image: &Path, size: u64, label: &str) -> Result<(), BuildError> {
    let _ = fs::remove_file(image);
    let mib = format!("{}M", size / MIB);
    let extended = format!("root_owner=0:0,resize={DATA_RESIZE_MAX_BLOCKS}");
    run(
        "mkfs.ext4",
        [
            "-q".as_ref(),
            "-F".as_ref(),
            "-L".as_ref(),
            label.as_ref(),
            "-b".as_ref(),
            "4096".as_ref(),
            "-E".as_ref(),
            extended.as_ref(),
            "-d".as_ref(),
            dir.as_os_str(),
            image.as_os_str(),
            mib.as_ref(),
        ],
        None,
    )?;
    Ok(())
}
