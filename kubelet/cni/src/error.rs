//! Errors of CNI configuration loading and plugin execution.

use std::path::PathBuf;

use crate::types::PluginError;

/// Everything that can go wrong while configuring a pod's network through CNI.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// Reading or writing a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid JSON or lacks required fields.
    #[error("invalid CNI configuration {path}: {reason}")]
    InvalidConfig {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The configuration directory holds no usable network configuration.
    #[error("no network config found in {0}")]
    NoConfig(PathBuf),
    /// No bin directory holds an executable for the plugin type.
    #[error("failed to find plugin {plugin:?} in path {dirs:?}")]
    PluginNotFound {
        /// The plugin type.
        plugin: String,
        /// The directories searched.
        dirs: Vec<PathBuf>,
    },
    /// Starting the plugin process failed.
    #[error("starting plugin {path}: {source}")]
    Spawn {
        /// The plugin executable.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The plugin reported an error (non-zero exit with a CNI error object on stdout).
    #[error("plugin type={plugin:?} failed ({command}): {error}")]
    Plugin {
        /// The plugin type.
        plugin: String,
        /// ADD, DEL, CHECK or VERSION, lower-case as libcni prints it.
        command: String,
        /// The error the plugin printed.
        error: Box<PluginError>,
    },
    /// The plugin printed something that is not a valid CNI result.
    #[error("plugin type={plugin:?} ({command}) printed an invalid result: {reason}")]
    InvalidResult {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: String,
        /// What could not be parsed.
        reason: String,
    },
    /// Encoding JSON failed (should not happen for well-formed values).
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An invalid pod CIDR was given for the default configuration.
    #[error("invalid pod CIDR {0:?}")]
    InvalidCidr(String),
}

impl CniError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CniError {
        let path = path.into();
        move |source| CniError::Io { path, source }
    }
}
