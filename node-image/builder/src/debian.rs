//! Debian arm64 packages: fetched with apt into a private cache (its own sources list, lists and
//! archives; the host's apt configuration and dpkg database are not touched), extracted with
//! `dpkg-deb -x`, versions recorded.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{io_err, BuildError};
use crate::tools::run;

/// A package unpacked into the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedPackage {
    /// Package name.
    pub name: String,
    /// Exact Debian version.
    pub version: String,
    /// Suite it was taken from.
    pub suite: String,
    /// Directory holding the unpacked tree.
    pub root: PathBuf,
}

/// Where packages come from. The real one is [`AptCache`]; tests of the rest of the build may
/// pass a directory of pre-extracted trees.
pub trait PackageSource {
    /// Fetch and unpack `package` (a concrete package or a metapackage, see
    /// [`PackageSource::resolve_kernel`]) from `suite`.
    fn fetch(&self, suite: &str, package: &str) -> Result<ExtractedPackage, BuildError>;

    /// Resolve `linux-image-<flavour>` in `suite` to the kernel image package it depends on and
    /// fetch that.
    fn resolve_kernel(&self, suite: &str, flavour: &str) -> Result<ExtractedPackage, BuildError>;
}

/// Private apt state under a cache directory.
#[derive(Debug, Clone)]
pub struct AptCache {
    dir: PathBuf,
    offline: bool,
    max_list_age: Duration,
}

/// Suites the private sources list knows.
const SUITES: [&str; 3] = ["bookworm", "bookworm-updates", "bookworm-backports"];

impl AptCache {
    /// A cache in `dir` (created if needed). With `offline`, never runs `apt-get update` or
    /// downloads; only what is already cached can be used.
    pub fn new(dir: &Path, offline: bool) -> AptCache {
        AptCache {
            dir: dir.to_path_buf(),
            offline,
            max_list_age: Duration::from_secs(24 * 3600),
        }
    }

    /// The default cache directory: `$BRAMBLE_CACHE_DIR`, else `$XDG_CACHE_HOME/bramble`, else
    /// `$HOME/.cache/bramble`, with `debian-arm64` appended.
    pub fn default_dir() -> PathBuf {
        let base = std::env::var_os("BRAMBLE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("bramble"))
            })
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/bramble")))
            .unwrap_or_else(|| PathBuf::from("/var/cache/bramble"));
        base.join("debian-arm64")
    }

    fn apt_options(&self) -> Vec<String> {
        let d = self.dir.display();
        vec![
            format!("-oDir::State={d}/state"),
            format!("-oDir::State::Lists={d}/state/lists"),
            format!("-oDir::State::status={d}/state/status"),
            format!("-oDir::Cache={d}/cache"),
            format!("-oDir::Etc::SourceList={d}/sources.list"),
            "-oDir::Etc::SourceParts=/nonexistent".into(),
            "-oDir::Etc::Preferences=/nonexistent".into(),
            "-oDir::Etc::PreferencesParts=/nonexistent".into(),
            "-oAPT::Architecture=arm64".into(),
            "-oAPT::Architectures::=arm64".into(),
            "-oAPT::Sandbox::User=root".into(),
            "-oDebug::NoLocking=1".into(),
            "-oAcquire::Languages=none".into(),
        ]
    }

    fn prepare(&self) -> Result<File, BuildError> {
        for sub in [
            "state/lists/partial",
            "cache/archives/partial",
            "debs",
            "extracted",
        ] {
            let p = self.dir.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let status = self.dir.join("state/status");
        if !status.exists() {
            fs::write(&status, "").map_err(io_err(&status))?;
        }
        let sources = self.dir.join("sources.list");
        let mut text = String::new();
        for suite in SUITES {
            text.push_str(&format!(
                "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
                 http://deb.debian.org/debian {suite} main non-free-firmware\n"
            ));
        }
        if fs::read_to_string(&sources).ok().as_deref() != Some(text.as_str()) {
            fs::write(&sources, &text).map_err(io_err(&sources))?;
        }
        // One build at a time uses the cache (parallel tests share it).
        let lock_path = self.dir.join("lock");
        let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        Ok(lock)
    }

    fn update_if_stale(&self) -> Result<(), BuildError> {
        let stamp = self.dir.join("state/updated");
        let fresh = fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < self.max_list_age);
        if fresh || self.offline {
            return Ok(());
        }
        tracing::info!(cache = %self.dir.display(), "apt-get update (arm64)");
        let mut args = self.apt_options();
        args.push("update".into());
        run("apt-get", &args, None)?;
        fs::write(&stamp, "").map_err(io_err(&stamp))?;
        Ok(())
    }

    /// Download `spec` (`name`, `name/suite` or `name=version`) into debs/ and return the file.
    fn download(&self, spec: &str, package: &str, suite: &str) -> Result<PathBuf, BuildError> {
        let debs = self.dir.join("debs");
        let existing = find_deb(&debs, package, spec)?;
        if let Some(p) = existing.filter(|_| self.offline || spec.contains('=')) {
            return Ok(p);
        }
        if self.offline {
            return Err(BuildError::PackageMissing {
                package: package.into(),
                suite: suite.into(),
                detail: format!("not in the cache {} and --offline given", debs.display()),
            });
        }
        let mut args = self.apt_options();
        args.push("download".into());
        args.push(spec.into());
        let out = std::process::Command::new("apt-get")
            .args(&args)
            .current_dir(&debs)
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| BuildError::ToolMissing {
                tool: "apt-get".into(),
                package: "apt".into(),
                source,
            })?;
        if !out.status.success() {
            let detail = String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| l.starts_with("E:"))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(BuildError::PackageMissing {
                package: package.into(),
                suite: suite.into(),
                detail,
            });
        }
        find_deb(&debs, package, spec)?.ok_or_else(|| BuildError::PackageMissing {
            package: package.into(),
            suite: suite.into(),
            detail: "apt-get download left no .deb".into(),
        })
    }

    fn extract(&self, deb: &Path, suite: &str) -> Result<ExtractedPackage, BuildError> {
        let fields = run(
            "dpkg-deb",
            [
                "-f".as_ref(),
                deb.as_os_str(),
                "Package".as_ref(),
                "Version".as_ref(),
            ],
            None,
        )?;
        let text = String::from_utf8_lossy(&fields.stdout).into_owned();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .unwrap_or("")
                .to_string()
        };
        let (name, version) = (field("Package"), field("Version"));
        let root = self
            .dir
            .join("extracted")
            .join(format!("{name}_{}", version.replace([':', '~'], "_")));
        let done = root.join(".bramble-extracted");
        if !done.exists() {
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).map_err(io_err(&root))?;
            run(
                "dpkg-deb",
                ["-x".as_ref(), deb.as_os_str(), root.as_os_str()],
                None,
            )?;
            fs::write(&done, "").map_err(io_err(&done))?;
        }
        Ok(ExtractedPackage {
            name,
            version,
            suite: suite.into(),
            root,
        })
    }
}

/// The newest-looking .deb for `package` in `dir` (exact version when `spec` is `name=version`).
fn find_deb(dir: &Path, package: &str, spec: &str) -> Result<Option<PathBuf>, BuildError> {
    let version = spec.split_once('=').map(|(_, v)| v.replace(':', "%3a"));
    let mut found: Vec<PathBuf> = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err(dir))? {
        let p = e.map_err(io_err(dir))?.path();
        let Some(file) = p.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let mut parts = file.splitn(3, '_');
        let (Some(n), Some(v)) = (parts.next(), parts.next()) else {
            continue;
        };
        if n == package && file.ends_with(".deb") && version.as_deref().is_none_or(|want| want == v)
        {
            found.push(p.clone());
        }
    }
    found.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
    Ok(found.pop())
}

impl PackageSource for AptCache {
    fn fetch(&self, suite: &str, package: &str) -> Result<ExtractedPackage, BuildError> {
        let _lock = self.prepare()?;
        self.update_if_stale()?;
        let deb = self.download(&format!("{package}/{suite}"), package, suite)?;
        self.extract(&deb, suite)
    }

    fn resolve_kernel(&self, suite: &str, flavour: &str) -> Result<ExtractedPackage, BuildError> {
        let _lock = self.prepare()?;
        self.update_if_stale()?;
        let meta = format!("linux-image-{flavour}");
        let deb = self.download(&format!("{meta}/{suite}"), &meta, suite)?;
        let out = run(
            "dpkg-deb",
            ["-f".as_ref(), deb.as_os_str(), "Depends".as_ref()],
            None,
        )?;
        let depends = String::from_utf8_lossy(&out.stdout).into_owned();
        let (name, version) =
            parse_kernel_depends(&depends).ok_or_else(|| BuildError::PackageMissing {
                package: meta.clone(),
                suite: suite.into(),
                detail: format!(
                    "cannot find the kernel image in its Depends: {}",
                    depends.trim()
                ),
            })?;
        let spec = match &version {
            Some(v) => format!("{name}={v}"),
            None => format!("{name}/{suite}"),
        };
        let deb = self.download(&spec, &name, suite)?;
        self.extract(&deb, suite)
    }
}

/// From a metapackage's `Depends:` value, the `linux-image-*` package and its pinned version.
pub fn parse_kernel_depends(depends: &str) -> Option<(String, Option<String>)> {
    depends.split(',').find_map(|dep| {
        let dep = dep.split('|').next()?.trim();
        let (name, rest) = dep.split_once(' ').unwrap_or((dep, ""));
        if !name.starts_with("linux-image-") {
            return None;
        }
        let version = rest
            .trim()
            .strip_prefix("(=")
            .and_then(|v| v.strip_suffix(')'))
            .map(|v| v.trim().to_string());
        Some((name.to_string(), version))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_depends_parses_pinned_and_unpinned() {
        assert_eq!(
            parse_kernel_depends("linux-image-6.12.95+deb12-arm64 (= 6.12.95-1~bpo12+1)"),
            Some((
                "linux-image-6.12.95+deb12-arm64".into(),
                Some("6.12.95-1~bpo12+1".into())
            ))
        );
        assert_eq!(
            parse_kernel_depends("foo, linux-image-6.1.0-50-arm64"),
            Some(("linux-image-6.1.0-50-arm64".into(), None))
        );
        assert_eq!(parse_kernel_depends("foo (>= 1)"), None);
    }
}
