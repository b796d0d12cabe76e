//! The container shim's I/O: the descriptors a container's stdio is made of (pipes, or a
//! pseudo-terminal whose master arrives on a console socket), and the single-threaded poll
//! loop that copies output to the CRI log and to attached clients ([`crate::attach`]), client
//! input to the container, and reaps the container's init.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};

use crate::attach::{self, Hub};
use crate::console::ConsoleSocket;
use crate::logs::{CriLogWriter, Stream};
use crate::protocol::StdioConfig;

/// The descriptors a container's stdio is made of.
pub(crate) struct ContainerStdio {
    /// What the container gets as stdin, stdout, stderr (`/dev/null` with a terminal).
    pub child: [OwnedFd; 3],
    /// With a terminal: where libcontainer sends its master.
    pub console: Option<ConsoleSocket>,
    /// The shim's ends of the output pipes.
    pub outputs: Vec<(Rc<OwnedFd>, Stream)>,
    /// The shim's end of the stdin pipe.
    pub input: Option<OwnedFd>,
}

impl ContainerStdio {
    pub fn new(cfg: StdioConfig) -> Result<Self, String> {
        let null = || {
            std::fs::File::open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| format!("open /dev/null: {e}"))
        };
        if cfg.tty {
            let console = ConsoleSocket::bind().map_err(|e| e.to_string())?;
            return Ok(ContainerStdio {
                child: [null()?, null()?, null()?],
                console: Some(console),
                outputs: Vec::new(),
                input: None,
            });
        }
        let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe2: {e}"));
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (stdin, input) = if cfg.stdin {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            (null()?, None)
        };
        Ok(ContainerStdio {
            child: [stdin, out_w, err_w],
            console: None,
            outputs: vec![
                (Rc::new(out_r), Stream::Stdout),
                (Rc::new(err_r), Stream::Stderr),
            ],
            input,
        })
    }
}

/// What a polled descriptor of the shim's loop is.
#[derive(Clone, Copy)]
enum Polled {
    Output(usize),
    Exit,
    Signal,
    Attach(attach::Tag),
}

/// Copies output to the log and to attached clients, and client input to the container,
/// until the init exits and the output drains; returns its status.
pub(crate) fn pump_until_exit(
    log: &mut CriLogWriter,
    outputs: Vec<(Rc<OwnedFd>, Stream)>,
    hub: &mut Hub,
    pid: i32,
    pidfd: Option<OwnedFd>,
) -> WaitStatus {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGUSR1);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None);
    // A write to a stdin pipe whose reader exited must fail with EPIPE, not kill the shim.
    // SAFETY: setting a signal disposition in this single-threaded process.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut sigfd =
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
    let mut open: Vec<Option<(Rc<OwnedFd>, Stream)>> = outputs.into_iter().map(Some).collect();
    let mut status: Option<WaitStatus> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if status.is_none() {
            status = reap(pid);
            if status.is_some() {
                drain_deadline = Some(Instant::now() + Duration::from_millis(500));
            }
        }
        let done_reading = open.iter().all(Option::is_none);
        match (status, drain_deadline) {
            (Some(s), _) if done_reading => return finish(log, s),
            (Some(s), Some(d)) if Instant::now() >= d => return finish(log, s),
            _ => {}
        }
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut which: Vec<Polled> = Vec::new();
        let mut add = |fd: RawFd, events: i16, w: Polled| {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            which.push(w);
        };
        for (i, o) in open.iter().enumerate() {
            if let Some((fd, _)) = o {
                add(fd.as_raw_fd(), libc::POLLIN, Polled::Output(i));
            }
        }
        if status.is_none() {
            if let Some(p) = &pidfd {
                add(p.as_raw_fd(), libc::POLLIN, Polled::Exit);
            }
        }
        if let Some(s) = &sigfd {
            add(s.as_raw_fd(), libc::POLLIN, Polled::Signal);
        }
        for (fd, events, tag) in hub.poll_fds() {
            add(fd, events, Polled::Attach(tag));
        }
        // Without a pidfd (old kernel) poll with a timeout and check waitpid.
        let timeout = if pidfd.is_some() && status.is_none() {
            1000
        } else {
            100
        };
        // SAFETY: poll over a vector of pollfd we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n <= 0 {
            continue;
        }
        for (f, w) in fds.iter().zip(which) {
            if f.revents == 0 {
                continue;
            }
            match w {
                Polled::Output(i) => {
                    let Some((fd, stream)) = open[i].clone() else {
                        continue;
                    };
                    // SAFETY: reading into our buffer from a descriptor we own.
                    let n =
                        unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                    let err = (n < 0).then(std::io::Error::last_os_error);
                    if n > 0 {
                        let data = &buf[..n as usize];
                        let _ = log.write_chunk(stream, data);
                        let kind = match stream {
                            Stream::Stdout => attach::kind::STDOUT,
                            Stream::Stderr => attach::kind::STDERR,
                        };
                        hub.broadcast(kind, data);
                    } else if n == 0
                        || err.is_some_and(|e| {
                            !matches!(
                                e.kind(),
                                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                            )
                        })
                    {
                        // End of file; EIO from a terminal master whose slave closed.
                        let _ = log.finish(stream);
                        open[i] = None;
                    }
                }
                Polled::Signal => {
                    if let Some(s) = sigfd.as_mut() {
                        while let Ok(Some(_)) = s.read_signal() {}
                    }
                    let _ = log.reopen();
                }
                Polled::Attach(tag) => hub.ready(tag, f.revents),
                Polled::Exit => {}
            }
        }
        hub.sweep();
    }
}

fn finish(log: &mut CriLogWriter, s: WaitStatus) -> WaitStatus {
    let _ = log.finish(Stream::Stdout);
    let _ = log.finish(Stream::Stderr);
    s
}

/// Reaps children without blocking (the shim is a subreaper); returns `pid`'s status once it
/// has exited.
fn reap(pid: i32) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(s) => {
                if s.pid() == Some(Pid::from_raw(pid)) {
                    found = Some(s);
                }
            }
        }
    }
}
