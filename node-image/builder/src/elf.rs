//! Checking that the `bramble` binary put into an image is a static aarch64 executable, and
//! reading the shared libraries (`DT_NEEDED`, as `readelf -d` shows them) other ELF files
//! shipped in the root need.

use std::io::Read;
use std::path::Path;

use crate::error::{io_err, BuildError};

const EM_AARCH64: u16 = 183;
const PT_INTERP: u32 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// The `DT_NEEDED` sonames of a 64-bit little-endian ELF object (empty for a static one), in
/// the order of its dynamic section.
pub fn needed_libraries(path: &Path) -> Result<Vec<String>, BuildError> {
    let data = std::fs::read(path).map_err(io_err(path))?;
    let bad = |reason: &str| BuildError::BadElf {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return Err(bad("not a 64-bit little-endian ELF"));
    }
    let u16_at = |o: usize| -> Option<u16> {
        Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?))
    };
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?))
    };
    let u64_at = |o: usize| -> Option<u64> {
        Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?))
    };
    let truncated = || bad("truncated headers");
    let phoff = u64_at(32).ok_or_else(truncated)? as usize;
    let phentsize = u16_at(54).ok_or_else(truncated)? as usize;
    let phnum = u16_at(56).ok_or_else(truncated)? as usize;
    // (vaddr, offset, filesz) of the loaded segments, and the dynamic section's (offset, size).
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let p_type = u32_at(o).ok_or_else(truncated)?;
        let offset = u64_at(o + 8).ok_or_else(truncated)?;
        let vaddr = u64_at(o + 16).ok_or_else(truncated)?;
        let filesz = u64_at(o + 32).ok_or_else(truncated)?;
        match p_type {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset as usize, filesz as usize)),
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Ok(Vec::new());
    };
    let mut needed = Vec::new();
    let mut strtab = None;
    for e in (dyn_off..dyn_off + dyn_size).step_by(16) {
        let tag = u64_at(e).ok_or_else(truncated)?;
        let val = u64_at(e + 8).ok_or_else(truncated)?;
        match tag {
            0 => break,
            DT_NEEDED => needed.push(val),
            DT_STRTAB => strtab = Some(val),
            _ => {}
        }
    }
    let strtab = strtab.ok_or_else(|| bad("dynamic section without DT_STRTAB"))?;
    let strtab = loads
        .iter()
        .find(|(vaddr, _, filesz)| (*vaddr..vaddr + filesz).contains(&strtab))
        .map(|(vaddr, offset, _)| (strtab - vaddr + offset) as usize)
        .ok_or_else(|| bad("DT_STRTAB outside the loaded segments"))?;
    needed
        .into_iter()
        .map(|n| {
            let start = strtab + n as usize;
            let tail = data
                .get(start..)
                .ok_or_else(|| bad("DT_NEEDED name outside the file"))?;
            let end = tail
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| bad("unterminated DT_NEEDED name"))?;
            Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
        })
        .collect()
}

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
    fn needed_libraries_are_read_from_the_dynamic_section() {
        // The test binary itself (x86_64 or aarch64 glibc): libc is among its DT_NEEDED.
        let exe = std::env::current_exe().unwrap();
        let needed = needed_libraries(&exe).unwrap();
        assert!(needed.iter().any(|n| n == "libc.so.6"), "{needed:?}");
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), b"#!/bin/sh\n").unwrap();
        let e = needed_libraries(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("not a readable ELF object"), "{e}");
    }

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
