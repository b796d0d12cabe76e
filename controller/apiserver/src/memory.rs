//! Giving freed heap back to the system after the few requests that allocate tens of MiB at
//! once (building an OpenAPI document, encoding a large list). glibc's malloc keeps freed
//! memory in its arenas (the controller stayed 15 MiB larger after serving the OpenAPI
//! documents once, and 40 MiB after listing 10,000 Pods); `malloc_trim` returns the free
//! pages. musl's allocator (the static board binary) unmaps large frees by itself, so this is a
//! no-op there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Responses at least this large ask for a trim once they are sent.
pub const LARGE_RESPONSE_BYTES: usize = 4 << 20;

/// How long after the request a trim runs, so a burst of large requests costs one trim and
/// the response's own buffers are already freed.
const DELAY: Duration = Duration::from_secs(1);

static PENDING: AtomicBool = AtomicBool::new(false);

/// Schedules one trim of the allocator's free memory on the current tokio runtime (at most one
/// is pending at a time).
pub fn release_freed_soon() {
    if PENDING.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        PENDING.store(false, Ordering::SeqCst);
        return;
    };
    rt.spawn(async {
        tokio::time::sleep(DELAY).await;
        PENDING.store(false, Ordering::SeqCst);
        let _ = tokio::task::spawn_blocking(release_freed).await;
    });
}

/// Returns the allocator's free pages to the system now.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}
