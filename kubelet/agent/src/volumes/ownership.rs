//! `fsGroup` volume ownership (upstream `SetVolumeOwnership`): every file and directory gets
//! group `fsGroup`, group read (and write, for writable volumes) permission, and directories
//! the setgid bit so new files inherit the group.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{Gid, Uid};

use super::error::{io, VolumeError};

/// The group to give a volume's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// `fsGroup`.
    pub gid: u32,
    /// Read-only volumes (configMap, secret, ...) get group read; others read and write.
    pub readonly: bool,
}

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

fn apply(path: &Path, o: &Ownership) -> Result<(), VolumeError> {
    let md = std::fs::symlink_metadata(path).map_err(io("stat", path))?;
    if md.file_type().is_symlink() {
        return Ok(());
    }
    if md.gid() != o.gid {
        rustix::fs::chown(path, None::<Uid>, Some(Gid::from_raw(o.gid)))
            .map_err(|e| io("chown", path)(e.into()))?;
    }
    let mut mode = md.permissions().mode() & 0o7777;
    mode |= if o.readonly { RO_MASK } else { RW_MASK };
    if md.is_dir() {
        mode |= SETGID | EXEC_MASK;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

/// Applies `o` to `root` and everything below it (symlinks are left alone).
pub fn set_ownership(root: &Path, o: &Ownership) -> Result<(), VolumeError> {
    apply(root, o)?;
    let md = std::fs::symlink_metadata(root).map_err(io("stat", root))?;
    if md.is_dir() {
        for e in std::fs::read_dir(root)
            .map_err(io("read_dir", root))?
            .flatten()
        {
            set_ownership(&e.path(), o)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_bits_and_setgid() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        set_ownership(
            d.path(),
            &Ownership {
                gid: 4321,
                readonly: true,
            },
        )
        .unwrap();
        let md = std::fs::metadata(&f).unwrap();
        assert_eq!(md.gid(), 4321);
        assert_eq!(md.permissions().mode() & 0o7777, 0o640);
        let dm = std::fs::metadata(d.path()).unwrap();
        assert_ne!(dm.permissions().mode() & SETGID, 0);
    }
}
