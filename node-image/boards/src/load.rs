//! Reading board files and YAML documents with field-naming errors.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::board::BoardConfig;
use crate::error::BoardError;

/// Parse a YAML document strictly; a schema error names the field path it happened at.
///
/// `path` is only used in error messages.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, BoardError> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field.is_empty() { ".".into() } else { field };
        let message = e.into_inner().to_string();
        // The YAML parser sometimes prefixes its message with the path already.
        let message = message
            .strip_prefix(&format!("{field}: "))
            .map(str::to_string)
            .unwrap_or(message);
        BoardError::Parse {
            path: path.to_path_buf(),
            field,
            message,
        }
    })
}

/// Parse and validate a board document. `expected_name` (the file stem) must equal `name`.
pub fn parse_board(
    path: &Path,
    text: &str,
    expected_name: Option<&str>,
) -> Result<BoardConfig, BoardError> {
    let board: BoardConfig = parse_yaml(path, text)?;
    let issues = board.check(expected_name);
    if issues.is_empty() {
        Ok(board)
    } else {
        Err(BoardError::Invalid {
            path: path.to_path_buf(),
            issues,
        })
    }
}

/// Load and validate one board file.
pub fn load_board_file(path: &Path) -> Result<BoardConfig, BoardError> {
    let text = std::fs::read_to_string(path).map_err(|source| BoardError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let stem = path.file_stem().and_then(|s| s.to_str());
    parse_board(path, &text, stem)
}

/// Names of the boards defined in `dir` (file stems of `*.yaml`), sorted.
pub fn list_boards(dir: &Path) -> Result<Vec<String>, BoardError> {
    let rd = std::fs::read_dir(dir).map_err(|source| BoardError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| BoardError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let p = entry.path();
        if p.extension().and_then(|e| e.to_str()) == Some("yaml") {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Load board `name` from `dir/<name>.yaml`; an unknown name lists the known boards.
pub fn load_board(dir: &Path, name: &str) -> Result<BoardConfig, BoardError> {
    let path: PathBuf = dir.join(format!("{name}.yaml"));
    let valid_name = !name.is_empty() && !name.contains('/') && !name.starts_with('.');
    if !valid_name || !path.is_file() {
        return Err(BoardError::UnknownBoard {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            known: list_boards(dir)?.join(", "),
        });
    }
    load_board_file(&path)
}
