//! Applying a ruleset with `nft -f -` (one atomic transaction).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::ProxyError;

/// Runs `nft -f -` with `script` on stdin.
pub fn apply(script: &str) -> Result<(), ProxyError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ProxyError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(ProxyError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(ProxyError::Spawn)?;
    if !out.status.success() {
        return Err(ProxyError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// Removes the proxy's table (when the proxy stops for good).
pub fn delete_table(family: &str, table: &str) -> Result<(), ProxyError> {
    apply(&format!(
        "add table {family} {table}\ndelete table {family} {table}\n"
    ))
}
