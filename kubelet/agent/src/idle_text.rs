//! Dropping the binary's code pages the kubelet no longer runs, and the heap it freed.
//!
//! Bramble is one ~50 MB multi-call binary. Starting a kubelet runs a lot of code once
//! (argument parsing, configuration, client and TLS set-up, node registration, the first
//! pod sync), and every 4 KiB page of `.text` it touched stays mapped, so counts in its
//! RSS, although an idle kubelet never runs it again: on x86_64 that was ~17 MiB of text
//! against ~4.4 MiB of anonymous memory. Every [`KUBELET_PERIOD`] the kubelet (and a
//! controller, alone or with a kubelet in its process) unmaps its
//! executable's text with `madvise(MADV_DONTNEED)`. For a private file mapping that was
//! never written this only drops this process's page-table entries: the pages stay in the
//! page cache (shared with the runtime helper and shims), and the code the kubelet does
//! run is mapped back on its next use by a minor fault. What remains mapped is the text the
//! kubelet ran since the last trim, its real working set.
//!
//! Only the executable's read-only mappings (code, and read-only data) are touched, and in
//! them only the pages `/proc/self/pagemap` shows mapped from the file: the relocated
//! `.data.rel.ro` pages are private copies, and dropping them would lose the relocation.

use std::time::Duration;

use tracing::debug;

/// How often [`run_kubelet`] trims (the kubelet's and the controller's period). Each trim costs a read of the maps and of the text's
/// page-map entries (well under a millisecond), and the faults that map the code run after it
/// back in; the kernel maps file pages in 64 KiB blocks around each fault ("fault-around"),
/// so every code page run since the trim counts 64 KiB. With a 60 s period an idle kubelet's
/// text had grown back to 16 MiB (kubelet bench) by the time it was trimmed again; what runs
/// within 10 s is its working set (PLEG relists every second, probes, lease and status
/// every 10 s).
pub const KUBELET_PERIOD: Duration = Duration::from_secs(10);

/// A mapping of `/proc/self/smaps`: start, end, permissions, path.
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    path: String,
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
                });
            }
        }
    }
    out
}

/// The executable's read-only mappings: code (`r-xp`, never written) and read-only data
/// (`r--p`, which also holds the relocated `.data.rel.ro`: those pages are private copies,
/// kept by [`file_pages`]).
fn read_only_ranges(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
    mappings(smaps)
        .into_iter()
        .filter(|m| (m.perms == "r-xp" || m.perms == "r--p") && m.path == exe)
        .map(|m| (m.start, m.end))
        .collect()
}

/// `/proc/self/pagemap` bits: present, and file-backed (or shared anonymous).
const PM_PRESENT: u64 = 1 << 63;
const PM_FILE: u64 = 1 << 61;

/// The runs of pages in `[start, end)` that are mapped from the file itself, not private
/// copies: dropping those loses nothing.
fn file_pages(
    pagemap: &std::fs::File,
    start: usize,
    end: usize,
) -> std::io::Result<Vec<(usize, usize)>> {
    use std::os::unix::fs::FileExt;
    let page = 4096usize;
    let n = (end - start) / page;
    let mut buf = vec![0u8; n * 8];
    pagemap.read_exact_at(&mut buf, (start / page * 8) as u64)?;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, e) in buf.chunks_exact(8).enumerate() {
        let e = u64::from_ne_bytes(e.try_into().expect("8 bytes"));
        if e & PM_PRESENT == 0 || e & PM_FILE == 0 {
            continue;
        }
        let addr = start + i * page;
        match runs.last_mut() {
            Some(r) if r.1 == addr => r.1 = addr + page,
            _ => runs.push((addr, addr + page)),
        }
    }
    Ok(runs)
}

/// Unmaps the executable's resident file pages (code and read-only data) from this
/// process; returns the bytes dropped.
pub fn trim() -> std::io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    // `maps` has the lines `read_only_ranges` reads, without `smaps`' walk of every page.
    let smaps = std::fs::read_to_string("/proc/self/maps")?;
    let pagemap = std::fs::File::open("/proc/self/pagemap")?;
    let mut bytes = 0;
    for (start, end) in read_only_ranges(&smaps, &exe.to_string_lossy()) {
        for (a, b) in file_pages(&pagemap, start, end)? {
            // SAFETY: [a, b) lies in a read-only mapping of this process's executable and
            // holds only pages mapped from the file (no private copies): MADV_DONTNEED drops
            // page-table entries that the next access faults back in from the same file.
            let r = unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            bytes += b - a;
        }
    }
    Ok(bytes)
}

fn trim_logged() {
    match trim() {
        Ok(b) => debug!(bytes = b, "dropped the binary's idle pages"),
        Err(e) => debug!(error = %e, "trimming text pages"),
    }
}

/// The kubelet's trim: every [`KUBELET_PERIOD`] the text, and the allocator's free pages
/// ([`release_heap`]), until the task is dropped.
pub async fn run_kubelet() {
    loop {
        tokio::time::sleep(KUBELET_PERIOD).await;
        trim_logged();
        release_heap();
    }
}

/// At most this many glibc malloc arenas in the kubelet (glibc's default is 8 per core).
/// Memory freed in one arena is reused only there; the kubelet runs 2 worker threads and a
/// few blocking ones.
pub const MALLOC_ARENAS: i32 = 2;

/// Limits glibc's malloc to [`MALLOC_ARENAS`] arenas; call before any thread starts. A no-op
/// with musl, whose allocator has no arenas.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc malloc parameter.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

/// Returns glibc malloc's free pages to the system (it keeps freed memory in its arenas);
/// musl's allocator unmaps large frees by itself, so this is a no-op there.
pub fn release_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
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
    fn only_the_executables_read_only_mappings_are_trimmed() {
        assert_eq!(
            read_only_ranges(SMAPS, "/usr/bin/bramble"),
            vec![
                (0x55d0a0000000, 0x55d0a0100000),
                (0x55d0a0100000, 0x55d0a2000000)
            ]
        );
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
    fn private_copies_are_not_file_pages() {
        use std::io::Write;
        let page = 4096;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; 3 * page]).unwrap();
        // SAFETY: a fresh private mapping of a 3-page file, unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                3 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
            )
        } as *mut u8;
        assert_ne!(p as *mut libc::c_void, libc::MAP_FAILED);
        // SAFETY: reads and one write inside the mapping.
        unsafe {
            for i in 0..3 {
                std::ptr::read_volatile(p.add(i * page));
            }
            std::ptr::write_volatile(p.add(page), 1);
        }
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        let start = p as usize;
        let runs = file_pages(&pagemap, start, start + 3 * page).unwrap();
        // SAFETY: unmapping the mapping made above.
        unsafe { libc::munmap(p as *mut libc::c_void, 3 * page) };
        assert_eq!(
            runs,
            vec![(start, start + page), (start + 2 * page, start + 3 * page)]
        );
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
