//! Debian's `nft` in the root filesystem: the service proxy, the NetworkPolicy agent and the
//! routes' masquerade table all run `nft -f -`. The binary is dynamically linked against glibc
//! (shipped for the CNI plugins) and the libraries below; the build follows the `DT_NEEDED`
//! entries from `nft` (what `readelf -d` lists) through these packages, so exactly the shared
//! objects the loader will ask for are copied, and a package that stops providing one fails
//! the build instead of the board.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use bramble_boards::BoardConfig;

use crate::debian::{ExtractedPackage, PackageSource};
use crate::elf::needed_libraries;
use crate::error::{io_err, BuildError};

/// Debian bookworm packages holding `nft` and its shared-library closure (from their
/// `Depends`: nftables -> libnftables1, libedit2; libnftables1 -> libmnl0, libnftnl11,
/// libxtables12, libjansson4, libgmp10; libedit2 -> libbsd0, libtinfo6; libbsd0 -> libmd0;
/// all -> libc6, which the image ships already).
pub const NFTABLES_PACKAGES: [&str; 11] = [
    "nftables",
    "libnftables1",
    "libnftnl11",
    "libmnl0",
    "libxtables12",
    "libjansson4",
    "libgmp10",
    "libedit2",
    "libbsd0",
    "libmd0",
    "libtinfo6",
];

/// Where `nft` goes in the root. /bin/nft links to it: init starts services without PATH,
/// and the C library's default search path is /usr/local/bin:/bin:/usr/bin.
pub const NFT_PATH: &str = "sbin/nft";

/// Directory of the shared libraries in the root (glibc's loader searches it by default).
pub const LIB_DIR: &str = "lib/aarch64-linux-gnu";

/// Fetches [`NFTABLES_PACKAGES`] from bookworm.
pub fn fetch(source: &dyn PackageSource) -> Result<Vec<ExtractedPackage>, BuildError> {
    NFTABLES_PACKAGES
        .iter()
        .map(|p| source.fetch("bookworm", p))
        .collect()
}

/// Installs `nft` at [`NFT_PATH`] and every shared object it needs, transitively, into
/// [`LIB_DIR`] under their sonames, taking them from `packages` (and `libc`). Sonames the
/// root already holds (glibc's) are not copied again. Returns the sonames installed.
pub fn stage_nft(
    board: &BoardConfig,
    packages: &[ExtractedPackage],
    libc: &ExtractedPackage,
    root: &Path,
) -> Result<Vec<String>, BuildError> {
    let nftables = packages
        .iter()
        .find(|p| p.name == "nftables")
        .ok_or_else(|| BuildError::PackageMissing {
            package: "nftables".into(),
            suite: "bookworm".into(),
            detail: "not fetched".into(),
        })?;
    let src = nftables.root.join("usr/sbin/nft");
    if !src.is_file() {
        return Err(BuildError::FileMissing {
            board: board.name.clone(),
            file: "usr/sbin/nft".into(),
            package: nftables.name.clone(),
            looked: nftables.root.clone(),
        });
    }
    install(&src, &root.join(NFT_PATH))?;
    let link = root.join("bin/nft");
    symlink("../sbin/nft", &link).map_err(io_err(&link))?;

    let mut queue = VecDeque::from(needed_libraries(&src)?);
    let mut seen = BTreeSet::new();
    let mut installed = Vec::new();
    while let Some(soname) = queue.pop_front() {
        if !seen.insert(soname.clone()) {
            continue;
        }
        let dst = root.join(LIB_DIR).join(&soname);
        if dst.exists() {
            continue;
        }
        let found = find_soname(&soname, packages.iter().chain([libc])).ok_or_else(|| {
            BuildError::FileMissing {
                board: board.name.clone(),
                file: format!("{soname} (needed by nft)"),
                package: NFTABLES_PACKAGES.join(", "),
                looked: nftables.root.clone(),
            }
        })?;
        // The soname is usually a symlink to the versioned file: copy what it points at.
        let real = fs::canonicalize(&found).map_err(io_err(&found))?;
        install(&real, &dst)?;
        queue.extend(needed_libraries(&real)?);
        installed.push(soname);
    }
    installed.sort();
    Ok(installed)
}

/// The path of `soname` in the first package holding it in a multiarch library directory.
fn find_soname<'a>(
    soname: &str,
    packages: impl Iterator<Item = &'a ExtractedPackage>,
) -> Option<PathBuf> {
    for p in packages {
        for dir in [LIB_DIR, "usr/lib/aarch64-linux-gnu"] {
            let c = p.root.join(dir).join(soname);
            if c.exists() {
                return Some(c);
            }
        }
    }
    None
}

fn install(src: &Path, dst: &Path) -> Result<(), BuildError> {
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    fs::copy(src, dst).map_err(io_err(src))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(0o755)).map_err(io_err(dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A package whose multiarch library directory is this host's (x86_64 or aarch64: the
    /// closure walk does not care which architecture the objects are for).
    fn host_package(dir: &Path, name: &str, lib: &str, host_lib: &str) -> ExtractedPackage {
        let root = dir.join(name);
        let d = root.join(lib);
        fs::create_dir_all(d.parent().unwrap()).unwrap();
        symlink(host_lib, &d).unwrap();
        ExtractedPackage {
            name: name.into(),
            version: "1".into(),
            suite: "bookworm".into(),
            root,
        }
    }

    fn host_multiarch() -> String {
        let arch = std::env::consts::ARCH;
        format!("{arch}-linux-gnu")
    }

    fn board() -> BoardConfig {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../board-configs");
        bramble_boards::load_board(&dir, "qemu-virt").unwrap()
    }

    #[test]
    fn nft_and_exactly_its_library_closure_are_installed() {
        let host_nft = Path::new("/usr/sbin/nft");
        assert!(
            host_nft.is_file(),
            "the host's nftables (scripts/deps.sh) is needed"
        );
        let tmp = tempfile::tempdir().unwrap();
        let ma = host_multiarch();
        let nftables = tmp.path().join("nftables");
        fs::create_dir_all(nftables.join("usr/sbin")).unwrap();
        fs::copy(host_nft, nftables.join("usr/sbin/nft")).unwrap();
        let packages = vec![
            ExtractedPackage {
                name: "nftables".into(),
                version: "1".into(),
                suite: "bookworm".into(),
                root: nftables,
            },
            host_package(
                tmp.path(),
                "libs",
                "usr/lib/aarch64-linux-gnu",
                &format!("/usr/lib/{ma}"),
            ),
        ];
        let libc = host_package(tmp.path(), "libc6", LIB_DIR, &format!("/lib/{ma}"));
        let root = tmp.path().join("root");
        // glibc is in the root already (stage_glibc): it is not copied again.
        fs::create_dir_all(root.join(LIB_DIR)).unwrap();
        fs::write(root.join(LIB_DIR).join("libc.so.6"), b"glibc").unwrap();
        fs::create_dir_all(root.join("bin")).unwrap();

        let installed = stage_nft(&board(), &packages, &libc, &root).unwrap();
        assert!(root.join(NFT_PATH).is_file());
        assert_eq!(
            fs::read_link(root.join("bin/nft")).unwrap(),
            Path::new("../sbin/nft")
        );
        for lib in ["libnftables.so.1", "libnftnl.so.11", "libmnl.so.0"] {
            assert!(installed.iter().any(|l| l == lib), "{installed:?}");
            let meta = fs::symlink_metadata(root.join(LIB_DIR).join(lib)).unwrap();
            assert!(meta.is_file(), "{lib} is a copied file, not a link");
        }
        assert!(!installed.iter().any(|l| l == "libc.so.6"), "{installed:?}");
        assert_eq!(
            fs::read(root.join(LIB_DIR).join("libc.so.6")).unwrap(),
            b"glibc"
        );
        // Closed: every installed object's own needs are in the root too.
        for lib in &installed {
            for n in needed_libraries(&root.join(LIB_DIR).join(lib)).unwrap() {
                assert!(root.join(LIB_DIR).join(&n).exists(), "{lib} needs {n}");
            }
        }
    }

    #[test]
    fn a_library_no_package_provides_fails_the_build_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let nftables = tmp.path().join("nftables");
        fs::create_dir_all(nftables.join("usr/sbin")).unwrap();
        fs::copy("/usr/sbin/nft", nftables.join("usr/sbin/nft")).unwrap();
        let pkg = |name: &str, root: PathBuf| ExtractedPackage {
            name: name.into(),
            version: "1".into(),
            suite: "bookworm".into(),
            root,
        };
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("bin")).unwrap();
        let e = stage_nft(
            &board(),
            &[pkg("nftables", nftables)],
            &pkg("libc6", tmp.path().join("empty")),
            &root,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("libnftables.so.1 (needed by nft)"), "{e}");
    }
}
