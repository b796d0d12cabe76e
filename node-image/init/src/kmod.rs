//! Loading kernel modules without kmod: `modules.dep` for dependencies, `modules.alias` for the
//! names the kernel asks for (`fs-ext4`, `crypto-crc32c`, `nft-chain-2-nat`), `finit_module(2)`
//! to load. Also serves as `/sbin/modprobe` (the kernel's usermode helper) through the multi-call
//! binary.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{io, InitError};

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    // SAFETY: uname fills the zeroed struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Glob match with `*` and `?` (the patterns modules.alias uses, plus `[...]` treated literally).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Modules directory of a kernel release.
#[derive(Debug, Clone)]
pub struct ModuleIndex {
    dir: PathBuf,
    deps: Vec<(String, String, Vec<String>)>,
    aliases: Vec<(String, String)>,
}

impl ModuleIndex {
    /// Read `modules.dep` (and `modules.alias` if present) from `dir`.
    pub fn load(dir: &Path) -> Result<ModuleIndex, InitError> {
        let dep_path = dir.join("modules.dep");
        let dep = std::fs::read_to_string(&dep_path).map_err(io("read", &dep_path))?;
        let alias = std::fs::read_to_string(dir.join("modules.alias")).unwrap_or_default();
        Ok(ModuleIndex::parse(dir, &dep, &alias))
    }

    /// Build from the texts of modules.dep and modules.alias.
    pub fn parse(dir: &Path, dep: &str, alias: &str) -> ModuleIndex {
        let deps = dep
            .lines()
            .filter_map(|l| {
                let (path, rest) = l.split_once(':')?;
                let file = path.rsplit('/').next()?;
                let name = normalize(file.split(".ko").next()?);
                Some((
                    name,
                    path.to_string(),
                    rest.split_whitespace().map(str::to_string).collect(),
                ))
            })
            .collect();
        let aliases = alias
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()? == "alias").then_some(())?;
                Some((w.next()?.to_string(), normalize(w.next()?)))
            })
            .collect();
        ModuleIndex {
            dir: dir.to_path_buf(),
            deps,
            aliases,
        }
    }

    /// Resolve a name or alias to module names.
    pub fn resolve(&self, name: &str) -> Vec<String> {
        let n = normalize(name);
        if self.deps.iter().any(|(m, _, _)| *m == n) {
            return vec![n];
        }
        let mut out: Vec<String> = self
            .aliases
            .iter()
            .filter(|(pat, _)| glob_match(pat, name) || glob_match(&normalize(pat), &n))
            .map(|(_, m)| m.clone())
            .collect();
        out.dedup();
        out
    }

    /// Files to load for module `name` (dependencies first), relative to the directory.
    pub fn load_order(&self, name: &str) -> Option<Vec<String>> {
        let (_, path, deps) = self.deps.iter().find(|(m, _, _)| *m == normalize(name))?;
        let mut v: Vec<String> = deps.iter().rev().cloned().collect();
        v.push(path.clone());
        Some(v)
    }

    /// The module files `name` (module or alias) needs, each with the files it depends on, the
    /// module's own file last.
    pub fn files_of(&self, name: &str) -> Result<Vec<(String, Vec<String>)>, InitError> {
        let modules = self.resolve(name);
        if modules.is_empty() {
            return Err(InitError::ModuleNotFound(
                name.into(),
                self.dir.join("modules.dep"),
            ));
        }
        let deps_of = |file: &str| {
            self.deps
                .iter()
                .find(|(_, path, _)| path == file)
                .map(|(_, _, deps)| deps.clone())
                .unwrap_or_default()
        };
        Ok(modules
            .iter()
            .flat_map(|m| self.load_order(m).unwrap_or_default())
            .map(|file| {
                let deps = deps_of(&file);
                (file, deps)
            })
            .collect())
    }

    /// The directory the module files are relative to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Load `name` (module or alias) with its dependencies; already-loaded modules are fine.
    /// Returns the files newly loaded.
    pub fn load_module(
        &self,
        name: &str,
        loaded: &mut BTreeSet<String>,
    ) -> Result<Vec<String>, InitError> {
        let mut done = Vec::new();
        for (file, _) in self.files_of(name)? {
            if loaded.contains(&file) {
                continue;
            }
            finit_module(&self.dir.join(&file))?;
            loaded.insert(file.clone());
            done.push(file);
        }
        Ok(done)
    }
}

/// Load one module file (EEXIST counts as success).
pub fn finit_module(path: &Path) -> Result<(), InitError> {
    let f = File::open(path).map_err(io("open", path))?;
    let params = CString::default();
    // SAFETY: finit_module(fd, "", 0) with a valid fd and empty parameter string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(InitError::Sys {
                op: "finit_module",
                path: path.into(),
                source: e,
            });
        }
    }
    Ok(())
}

/// `/sbin/modprobe [-q] [-b] [--] NAME...` as the kernel calls it: load each name, print errors
/// unless `-q`. Returns the process exit code.
pub fn modprobe_main(args: &[String]) -> i32 {
    let quiet = args.iter().any(|a| a == "-q" || a == "--quiet");
    let names: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let dir = Path::new("/lib/modules").join(kernel_release());
    let index = match ModuleIndex::load(&dir) {
        Ok(i) => i,
        Err(e) => {
            if !quiet {
                eprintln!("modprobe: {e}");
            }
            return 1;
        }
    };
    let mut loaded = BTreeSet::new();
    let mut code = 0;
    for n in names {
        if let Err(e) = index.load_module(n, &mut loaded) {
            if !quiet {
                eprintln!("modprobe: {e}");
            }
            code = 1;
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\nkernel/crypto/crc32c_generic.ko:\n\
kernel/net/netfilter/nft_chain_nat.ko: kernel/net/netfilter/nf_tables.ko\nkernel/net/netfilter/nf_tables.ko:\n";
    const ALIAS: &str = "# Aliases extracted from modules themselves.\nalias fs-ext4 ext4\nalias crypto-crc32c crc32c_generic\n\
alias nft-chain-*-nat nft_chain_nat\nalias pci:v00001AF4d*sv* virtio_pci\n";

    #[test]
    fn resolves_names_and_aliases() {
        let idx = ModuleIndex::parse(Path::new("/lib/modules/x"), DEP, ALIAS);
        assert_eq!(idx.resolve("ext4"), vec!["ext4"]);
        assert_eq!(idx.resolve("fs-ext4"), vec!["ext4"]);
        assert_eq!(idx.resolve("crypto-crc32c"), vec!["crc32c_generic"]);
        assert_eq!(idx.resolve("nft-chain-2-nat"), vec!["nft_chain_nat"]);
        assert!(idx.resolve("nope").is_empty());
        assert_eq!(
            idx.load_order("ext4").unwrap(),
            vec![
                "kernel/fs/jbd2/jbd2.ko",
                "kernel/fs/mbcache.ko",
                "kernel/lib/crc16.ko",
                "kernel/fs/ext4/ext4.ko"
            ]
        );
        let mut loaded = BTreeSet::new();
        assert!(matches!(
            idx.load_module("nope", &mut loaded),
            Err(InitError::ModuleNotFound(..))
        ));
    }

    #[test]
    fn globs() {
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a*d", "abc"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn release_is_read() {
        assert!(!kernel_release().is_empty());
    }
}
