//! Checking that the `bramble` binary put into an image is a static aarch64 executable.

use std::io::Read;
use std::path::Path;

use crate::error::{io_err, BuildError};

const EM_AARCH64: u16 = 183;
const PT_INTERP: u32 = 3;

/// Error unless `path` is a 64-bit little-endian aarch64 ELF without a program interpreter.
pub fn check_static_aarch64(path: &Path) -> Result<(), BuildError> {
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut data))
        .map_err(io_err(path))?;
    let bad = |reason: &str| BuildError::BadBinary {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Err(bad("not an ELF file"));
    }
    if data[4] != 2 || data[5] != 1 {
        return Err(bad("not a 64-bit little-endian ELF"));
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]);
    let machine = u16_at(18);
    if machine != EM_AARCH64 {
        return Err(bad(&format!("machine {machine}, expected aarch64 (183)")));
    }
    let phoff = u64::from_le_bytes(data[32..40].try_into().unwrap_or_default()) as usize;
    let phentsize = u16_at(54) as usize;
    let phnum = u16_at(56) as usize;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > data.len() {
            return Err(bad("truncated program headers"));
        }
        let p_type = u32::from_le_bytes(data[o..o + 4].try_into().unwrap_or_default());
        if p_type == PT_INTERP {
            return Err(bad("dynamically linked (has an ELF interpreter)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_binary_is_rejected_with_reason() {
        let exe = std::env::current_exe().unwrap();
        let e = check_static_aarch64(&exe).unwrap_err().to_string();
        assert!(e.contains("not a static aarch64 executable"), "{e}");
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), b"#!/bin/sh\n").unwrap();
        assert!(check_static_aarch64(tmp.path())
            .unwrap_err()
            .to_string()
            .contains("not an ELF"));
    }
}
