//! SIGTERM, SIGINT and SIGHUP for `bramble qemu run`: without a handler the runner died at
//! once and left its QEMU child running. The handler only records the signal; the runner's
//! loop sees it, stops QEMU (and waits for it) and returns [`crate::QemuError::Interrupted`].

use std::sync::atomic::{AtomicI32, Ordering};

static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    STOP.store(signal, Ordering::SeqCst);
}

/// Signals that stop the runner.
pub const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Installs the recording handler for [`STOP_SIGNALS`].
pub fn install_stop_handlers() -> std::io::Result<()> {
    for signal in STOP_SIGNALS {
        // SAFETY: a zeroed sigaction with an async-signal-safe handler (one atomic store).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The stop signal received since the handlers were installed, if any.
pub fn stop_requested() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_signal_is_recorded_instead_of_ending_the_process() {
        install_stop_handlers().unwrap();
        // SAFETY: signalling this process, whose handler is installed above.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        for _ in 0..100 {
            if stop_requested().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(stop_requested(), Some(libc::SIGTERM));
    }
}
