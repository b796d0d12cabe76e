//! Dropping the binary's code pages the kubelet no longer runs.
//!
//! Bramble is one ~50 MB multi-call binary. Starting a kubelet runs a lot of code once
//! (argument parsing, configuration, client and TLS set-up, node registration, the first
//! pod sync), and every 4 KiB page of `.text` it touched stays mapped, so counts in its
//! RSS, although an idle kubelet never runs it again: on x86_64 that was ~17 MiB of text
//! against ~4.4 MiB of anonymous memory. Every [`PERIOD`] the kubelet unmaps its
//! executable's text with `madvise(MADV_DONTNEED)`. For a private file mapping that was
//! never written this only drops this process's page-table entries: the pages stay in the
//! page cache (shared with the runtime helper and shims), and the code the kubelet does
//! run is mapped back on its next use by a minor fault. What remains mapped is the text the
//! kubelet ran since the last trim, its real working set.
//!
//! Only the executable's `r-xp` mappings with no anonymous (copied-on-write) pages are
//! touched: dropping a written private page would lose the write.

use std::time::Duration;

use tracing::debug;

/// How often the text is trimmed.
pub const PERIOD: Duration = Duration::from_secs(60);

/// A mapping of `/proc/self/smaps`: start, end, permissions, path, anonymous KiB.
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    path: String,
    anonymous_kib: u64,
}

fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                let perms = f.next().unwrap_or_default().to_string();
                let path = f.nth(3).unwrap_or_default().to_string();
                out.push(Mapping {
                    start,
                    end,
                    perms,
                    path,
                    anonymous_kib: 0,
                });
                continue;
            }
        }
        if first == "Anonymous:" {
            if let Some(m) = out.last_mut() {
                m.anonymous_kib = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            }
        }
    }
    out
}

/// The executable's read-only code mappings that hold no private copies.
fn text_ranges(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
    mappings(smaps)
        .into_iter()
        .filter(|m| m.perms == "r-xp" && m.path == exe && m.anonymous_kib == 0)
        .map(|m| (m.start, m.end))
        .collect()
}

/// Unmaps the executable's text pages from this process; returns the bytes covered.
pub fn trim() -> std::io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut bytes = 0;
    for (start, end) in text_ranges(&smaps, &exe.to_string_lossy()) {
        // SAFETY: the range is a whole mapping of this process's executable, read-only and
        // executable, with no anonymous pages: MADV_DONTNEED drops page-table entries that
        // the next access faults back in from the unchanged file.
        let r =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        bytes += end - start;
    }
    Ok(bytes)
}

/// Trims every [`PERIOD`] until the task is dropped.
pub async fn run() {
    loop {
        tokio::time::sleep(PERIOD).await;
        match trim() {
            Ok(b) => debug!(mapped_bytes = b, "dropped the binary's idle text pages"),
            Err(e) => debug!(error = %e, "trimming text pages"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:01 123 /usr/bin/bramble
Rss:                 100 kB
Anonymous:            40 kB
55d0a0100000-55d0a2000000 r-xp 00100000 fe:01 123 /usr/bin/bramble
Rss:               17000 kB
Anonymous:             0 kB
55d0a2000000-55d0a2100000 r-xp 00100000 fe:01 124 /usr/lib/libc.so.6
Anonymous:             0 kB
55d0a3000000-55d0a3001000 r-xp 00000000 00:00 0
Anonymous:             4 kB
";

    #[test]
    fn only_the_executables_clean_text_is_trimmed() {
        assert_eq!(
            text_ranges(SMAPS, "/usr/bin/bramble"),
            vec![(0x55d0a0100000, 0x55d0a2000000)]
        );
        let written = SMAPS.replace(
            "Anonymous:             0 kB\n55d0a2",
            "Anonymous:             8 kB\n55d0a2",
        );
        assert!(text_ranges(&written, "/usr/bin/bramble").is_empty());
    }

    fn rss_file_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    #[test]
    fn trimming_this_process_drops_file_pages_and_code_still_runs() {
        let before = rss_file_kib();
        let bytes = trim().unwrap();
        assert!(bytes > 0, "no text mapping of /proc/self/exe found");
        // This code runs again (faulted back in); the rest of the text is gone from RSS.
        let after = rss_file_kib();
        assert!(after < before, "RssFile {before} KiB -> {after} KiB");
    }
}
