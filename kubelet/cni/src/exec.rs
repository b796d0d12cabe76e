//! Running one plugin executable with the CNI environment and stdin configuration.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::CniError;
use crate::types::{PluginError, VersionInfo};

/// The CNI operations (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniCommand {
    /// Add the container to the network.
    Add,
    /// Remove the container from the network.
    Del,
    /// Check the container's networking is as expected.
    Check,
    /// Report supported versions.
    Version,
}

impl CniCommand {
    /// The `CNI_COMMAND` value.
    pub fn as_env(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
            CniCommand::Check => "CHECK",
            CniCommand::Version => "VERSION",
        }
    }
}

/// The per-invocation runtime parameters passed in the environment.
#[derive(Debug, Clone, Default)]
pub struct InvokeArgs {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`: path of the sandbox network namespace.
    pub netns: String,
    /// `CNI_IFNAME`: interface name inside the sandbox.
    pub ifname: String,
    /// `CNI_ARGS` as key/value pairs (joined `K=V;K=V`).
    pub args: Vec<(String, String)>,
}

/// Finds and runs plugin executables from a list of bin directories.
#[derive(Debug, Clone)]
pub struct PluginExec {
    bin_dirs: Vec<PathBuf>,
}

/// The bin directories used when none are configured: the CNI convention and Debian's
/// containernetworking-plugins location.
pub fn default_bin_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
}

impl PluginExec {
    /// Searches plugins in `bin_dirs`, first match wins.
    pub fn new(bin_dirs: Vec<PathBuf>) -> Self {
        PluginExec { bin_dirs }
    }

    /// The directories searched.
    pub fn bin_dirs(&self) -> &[PathBuf] {
        &self.bin_dirs
    }

    /// The executable for a plugin type.
    pub fn find(&self, plugin: &str) -> Result<PathBuf, CniError> {
        if !plugin.contains('/') && !plugin.is_empty() {
            for dir in &self.bin_dirs {
                let candidate = dir.join(plugin);
                if is_executable(&candidate) {
                    return Ok(candidate);
                }
            }
        }
        Err(CniError::PluginNotFound {
            plugin: plugin.to_string(),
            dirs: self.bin_dirs.clone(),
        })
    }

    /// Runs `plugin` for `command` with `config` on stdin. Returns the parsed stdout (`None`
    /// when the plugin printed nothing, as DEL and CHECK do), or the plugin's error.
    pub fn invoke(
        &self,
        plugin: &str,
        command: CniCommand,
        args: &InvokeArgs,
        config: &Value,
    ) -> Result<Option<Value>, CniError> {
        let path = self.find(plugin)?;
        let cni_path = std::env::join_paths(&self.bin_dirs)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cni_args = args
            .args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        let _span = tracing::debug_span!("cni", plugin, command = command.as_env(), container = %args.container_id).entered();
        let mut child = Command::new(&path)
            .env("CNI_COMMAND", command.as_env())
            .env("CNI_CONTAINERID", &args.container_id)
            .env("CNI_NETNS", &args.netns)
            .env("CNI_IFNAME", &args.ifname)
            .env("CNI_ARGS", cni_args)
            .env("CNI_PATH", cni_path)
            .env("PATH", search_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CniError::Spawn {
                path: path.clone(),
                source,
            })?;
        let input = serde_json::to_vec(config)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A plugin that exits without reading its stdin makes this fail with EPIPE; its
            // exit status then tells what happened.
            let _ = stdin.write_all(&input);
        }
        let out = child.wait_with_output().map_err(|source| CniError::Spawn {
            path: path.clone(),
            source,
        })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stdout = stdout.trim();
        if !out.status.success() {
            let error = serde_json::from_str::<PluginError>(stdout)
                .ok()
                .filter(|e| !e.msg.is_empty())
                .unwrap_or_else(|| PluginError {
                    cni_version: String::new(),
                    code: 999,
                    msg: format!(
                        "{}: {}",
                        out.status,
                        if stdout.is_empty() {
                            String::from_utf8_lossy(&out.stderr).trim().to_string()
                        } else {
                            stdout.to_string()
                        }
                    ),
                    details: String::new(),
                });
            return Err(CniError::Plugin {
                plugin: plugin.to_string(),
                command: command.as_env().to_lowercase(),
                error: Box::new(error),
            });
        }
        if stdout.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(stdout)
            .map(Some)
            .map_err(|e| CniError::InvalidResult {
                plugin: plugin.to_string(),
                command: command.as_env().to_lowercase(),
                reason: e.to_string(),
            })
    }

    /// Asks a plugin which spec versions it supports (VERSION).
    pub fn version(&self, plugin: &str) -> Result<VersionInfo, CniError> {
        let out = self.invoke(
            plugin,
            CniCommand::Version,
            &InvokeArgs::default(),
            &serde_json::json!({ "cniVersion": crate::config::CNI_VERSION }),
        )?;
        let value = out.unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|e| CniError::InvalidResult {
            plugin: plugin.to_string(),
            command: "version".into(),
            reason: e.to_string(),
        })
    }
}

/// `PATH` for plugins (portmap and bridge run iptables): the caller's, or the usual system
/// directories when it has none.
fn search_path() -> String {
    std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
