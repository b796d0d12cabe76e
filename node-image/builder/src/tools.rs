//! Running the external tools the build uses (sfdisk, mkfs.vfat, mtools, mksquashfs, mkfs.ext4,
//! depmod, apt-get, dpkg-deb), with errors that carry the command line and its stderr.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

use crate::error::BuildError;

/// Debian package that provides `tool` (for the "install it" hint).
fn package_of(tool: &str) -> &'static str {
    match tool {
        "sfdisk" => "fdisk",
        "mkfs.vfat" => "dosfstools",
        "mcopy" | "mmd" | "mdir" => "mtools",
        "mksquashfs" | "unsquashfs" => "squashfs-tools",
        "mkfs.ext4" => "e2fsprogs",
        "depmod" => "kmod",
        "apt-get" | "apt-cache" => "apt",
        "dpkg-deb" | "dpkg" => "dpkg",
        "xz" => "xz-utils",
        "zstd" => "zstd",
        _ => "?",
    }
}

/// Run `tool args...`, feeding `stdin` if given; error unless it exits 0.
pub(crate) fn run<I, S>(tool: &str, args: I, stdin: Option<&str>) -> Result<Output, BuildError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command_line = std::iter::once(tool.to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    tracing::debug!(command = %command_line, "run");
    let mut cmd = Command::new(tool);
    cmd.args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .env("LC_ALL", "C");
    let mut child = cmd.spawn().map_err(|source| BuildError::ToolMissing {
        tool: tool.to_string(),
        package: package_of(tool).to_string(),
        source,
    })?;
    if let Some(input) = stdin {
        use std::io::Write;
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input.as_bytes())
                .map_err(|source| BuildError::Io {
                    path: tool.into(),
                    source,
                })?;
        }
    }
    let out = child.wait_with_output().map_err(|source| BuildError::Io {
        path: tool.into(),
        source,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let text = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        return Err(BuildError::ToolFailed {
            command: command_line,
            status: out.status.to_string(),
            stderr: text.trim().chars().take(2000).collect(),
        });
    }
    Ok(out)
}
