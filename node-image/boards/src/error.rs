//! Errors of board and node-config loading; every variant names the file.

use std::fmt;
use std::path::PathBuf;

/// One problem with one field of a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// Dotted path of the field (`kernel.flavour`, `cmdline[3]`, `.` for the whole document).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

/// Errors loading a board file or a node config.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// File that was read.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid YAML or does not match the schema (wrong type, unknown or missing
    /// field).
    #[error("{path}: field `{field}`: {message}")]
    Parse {
        /// File that was parsed.
        path: PathBuf,
        /// Field the parser stopped at.
        field: String,
        /// Parser message (with line and column).
        message: String,
    },
    /// The file parsed but some fields hold invalid values.
    #[error("{path}: {}", join_issues(.issues))]
    Invalid {
        /// File that was validated.
        path: PathBuf,
        /// Every problem found.
        issues: Vec<FieldIssue>,
    },
    /// No board file has that name.
    #[error("unknown board `{name}` (no {dir}/{name}.yaml); known boards: {known}")]
    UnknownBoard {
        /// Requested board.
        name: String,
        /// Directory searched.
        dir: PathBuf,
        /// Boards that exist.
        known: String,
    },
}

fn join_issues(issues: &[FieldIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl BoardError {
    /// Fields named by this error (empty for read errors and unknown boards).
    pub fn fields(&self) -> Vec<String> {
        match self {
            BoardError::Parse { field, .. } => vec![field.clone()],
            BoardError::Invalid { issues, .. } => issues.iter().map(|i| i.field.clone()).collect(),
            _ => Vec::new(),
        }
    }
}
