//! Picking the kernel modules a board needs (with their dependencies from `modules.dep`),
//! copying them uncompressed into a staging tree and running `depmod -b` there.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{io_err, BuildError};
use crate::tools::run;

/// Module name as the kernel knows it (`sdhci-iproc` and `sdhci_iproc` are the same module).
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Name of the module stored in `path` (`kernel/fs/ext4/ext4.ko.xz` -> `ext4`).
fn module_name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file
        .strip_suffix(".ko.xz")
        .or_else(|| file.strip_suffix(".ko.zst"))
        .or_else(|| file.strip_suffix(".ko.gz"))
        .or_else(|| file.strip_suffix(".ko"))
        .unwrap_or(file);
    normalize(stem)
}

/// Parsed `modules.dep`: module name -> (its file, the files it depends on).
#[derive(Debug, Default, Clone)]
pub struct ModulesDep {
    entries: BTreeMap<String, (String, Vec<String>)>,
    by_path: BTreeMap<String, String>,
}

impl ModulesDep {
    /// Parse the text of a `modules.dep` file.
    pub fn parse(text: &str) -> ModulesDep {
        let mut dep = ModulesDep::default();
        for line in text.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let name = module_name_of(path);
            dep.by_path.insert(path.to_string(), name.clone());
            dep.entries.insert(
                name,
                (
                    path.to_string(),
                    deps.split_whitespace().map(str::to_string).collect(),
                ),
            );
        }
        dep
    }

    /// File of module `name`, if it exists.
    pub fn path_of(&self, name: &str) -> Option<&str> {
        self.entries.get(&normalize(name)).map(|(p, _)| p.as_str())
    }

    /// Files needed to load `names` (each with all its dependencies), in load order (every
    /// dependency before its users). Unknown names are returned as the error.
    pub fn closure(&self, names: &[String]) -> Result<Vec<String>, String> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for n in names {
            let (path, deps) = self.entries.get(&normalize(n)).ok_or_else(|| n.clone())?;
            // modules.dep lists deps so that loading them in reverse order works.
            for d in deps.iter().rev() {
                if seen.insert(d.clone()) {
                    order.push(d.clone());
                }
            }
            if seen.insert(path.clone()) {
                order.push(path.clone());
            }
        }
        Ok(order)
    }
}

/// The kernel release of an extracted kernel package (the single directory under lib/modules).
pub fn kernel_release(kernel_root: &Path) -> Result<String, BuildError> {
    for base in ["lib/modules", "usr/lib/modules"] {
        let dir = kernel_root.join(base);
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                if e.path().join("kernel").is_dir() {
                    return Ok(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    Err(BuildError::Layout(format!(
        "no lib/modules/<release>/kernel in {}",
        kernel_root.display()
    )))
}

fn modules_dir(kernel_root: &Path, release: &str) -> PathBuf {
    let usr = kernel_root.join("usr/lib/modules").join(release);
    if usr.is_dir() {
        usr
    } else {
        kernel_root.join("lib/modules").join(release)
    }
}

/// `modules.dep` of the extracted kernel, generated with `depmod -b` once if the package has none.
pub fn load_modules_dep(kernel_root: &Path, release: &str) -> Result<ModulesDep, BuildError> {
    let dir = modules_dir(kernel_root, release);
    let dep = dir.join("modules.dep");
    if !dep.exists() {
        let base = dir
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .unwrap_or(kernel_root);
        run(
            "depmod",
            ["-b".as_ref(), base.as_os_str(), release.as_ref()],
            None,
        )?;
    }
    let text = fs::read_to_string(&dep).map_err(io_err(&dep))?;
    Ok(ModulesDep::parse(&text))
}

/// Copy the modules `names` and their dependencies from the kernel package into
/// `dest/lib/modules/<release>/` (decompressed), then run `depmod -b dest`. Returns the files
/// copied, in load order.
pub fn install_modules(
    board: &str,
    kernel_root: &Path,
    release: &str,
    dep: &ModulesDep,
    names: &[String],
    dest: &Path,
) -> Result<Vec<String>, BuildError> {
    let files = dep
        .closure(names)
        .map_err(|module| BuildError::ModuleMissing {
            board: board.into(),
            module,
            kernel: release.into(),
        })?;
    let src_dir = modules_dir(kernel_root, release);
    let dst_dir = dest.join("lib/modules").join(release);
    for rel in &files {
        let src = src_dir.join(rel);
        let plain = rel.strip_suffix(".xz").unwrap_or(rel);
        let dst = dst_dir.join(plain);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        if rel.ends_with(".xz") {
            let out = run("xz", ["-dc".as_ref(), src.as_os_str()], None)?;
            fs::write(&dst, out.stdout).map_err(io_err(&dst))?;
        } else {
            fs::copy(&src, &dst).map_err(io_err(&src))?;
        }
    }
    for f in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        let src = src_dir.join(f);
        if src.exists() {
            fs::copy(&src, dst_dir.join(f)).map_err(io_err(&src))?;
        }
    }
    run(
        "depmod",
        ["-b".as_ref(), dest.as_os_str(), release.as_ref()],
        None,
    )?;
    Ok(files
        .iter()
        .map(|f| f.strip_suffix(".xz").unwrap_or(f).to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\n\
kernel/drivers/mmc/host/sdhci-iproc.ko.xz: kernel/drivers/mmc/host/sdhci-pltfm.ko.xz kernel/drivers/mmc/host/sdhci.ko.xz\n\
kernel/drivers/mmc/host/sdhci-pltfm.ko.xz: kernel/drivers/mmc/host/sdhci.ko.xz\nkernel/drivers/mmc/host/sdhci.ko.xz:\n";

    #[test]
    fn closure_orders_dependencies_first() {
        let d = ModulesDep::parse(DEP);
        let c = d.closure(&["sdhci_iproc".into(), "ext4".into()]).unwrap();
        assert_eq!(
            c,
            vec![
                "kernel/drivers/mmc/host/sdhci.ko.xz",
                "kernel/drivers/mmc/host/sdhci-pltfm.ko.xz",
                "kernel/drivers/mmc/host/sdhci-iproc.ko.xz",
                "kernel/fs/jbd2/jbd2.ko",
                "kernel/fs/mbcache.ko",
                "kernel/lib/crc16.ko",
                "kernel/fs/ext4/ext4.ko",
            ]
        );
        assert_eq!(d.closure(&["nope".into()]), Err("nope".into()));
        assert_eq!(
            d.path_of("sdhci-pltfm"),
            Some("kernel/drivers/mmc/host/sdhci-pltfm.ko.xz")
        );
    }
}
