//! Attaching to real containers through their shims' sockets ([`bramble_runtime::attach`]):
//! a `stdin: true` container echoes input, also through a new helper after the old one was
//! killed (a kubelet restart); a `tty: true` container runs on its own pseudo-terminal, takes
//! resizes and records its output in the log; exited containers cannot be attached.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use bramble_runtime::attach::{self, flags, kind};
use bramble_runtime::{ContainerRuntime, ContainerStatusKind, RuntimeError, StdioConfig};
use common::{wait_exit, Fixture};

async fn attach_to<R: ContainerRuntime>(rt: &R, id: &str, f: u8) -> UnixStream {
    let mut s = UnixStream::from(rt.attach(id).await.unwrap());
    s.write_all(&attach::frame(kind::HELLO, &[f])).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Reads stdout frames until their text contains every one of `want` (or EOF); returns the
/// text and whether the shim closed the connection.
fn read_until(s: &mut UnixStream, want: &[&str]) -> (String, bool) {
    let mut dec = attach::Decoder::default();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => {
                while let Some((_, d)) = dec.next_frame().unwrap() {
                    text.push_str(&String::from_utf8_lossy(&d));
                }
                return (text, true);
            }
            Ok(n) => dec.feed(&buf[..n]),
            Err(_) => {}
        }
        while let Some((k, d)) = dec.next_frame().unwrap() {
            assert_eq!(k, kind::STDOUT);
            text.push_str(&String::from_utf8_lossy(&d));
        }
        if want.iter().all(|w| text.contains(w)) {
            return (text, false);
        }
    }
    panic!("never saw {want:?}: {text:?}");
}

/// Whether the shim closes the connection within a while.
fn closed(s: &mut UnixStream) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(0) = s.read(&mut buf) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_and_tty_containers_through_their_shims() {
    let fx = Fixture::new("attach");
    let rt = fx.client();
    let sb = rt
        .run_pod_sandbox(&fx.sandbox_config("attach"))
        .await
        .unwrap();
    let mut echo = fx.container_config("echo", "while read l; do echo echo $l; done");
    echo.stdio = StdioConfig {
        stdin: true,
        ..Default::default()
    };
    let echo_id = rt.create_container(&sb, &echo).await.unwrap();
    rt.start_container(&echo_id).await.unwrap();
    let mut s = attach_to(&rt, &echo_id, flags::STDIN | flags::STDOUT).await;
    s.write_all(&attach::frame(kind::STDIN, b"one\n")).unwrap();
    read_until(&mut s, &["echo one"]);
    drop(s);

    // The kubelet dies (its helper with it); a new helper attaches to the same shim.
    let helper = rt.helper_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helper as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    rt.shutdown().await;
    let rt = fx.client();
    let mut s = attach_to(&rt, &echo_id, flags::STDIN | flags::STDOUT).await;
    s.write_all(&attach::frame(kind::STDIN, b"two\n")).unwrap();
    read_until(&mut s, &["echo two"]);
    drop(s);

    let mut term = fx.container_config("term", "read l; stty size; echo got $l; tty");
    term.stdio = StdioConfig {
        stdin: true,
        stdin_once: true,
        tty: true,
    };
    let term_id = rt.create_container(&sb, &term).await.unwrap();
    rt.start_container(&term_id).await.unwrap();
    let mut s = attach_to(&rt, &term_id, flags::STDIN | flags::STDOUT | flags::STDERR).await;
    s.write_all(&attach::frame(
        kind::RESIZE,
        &attach::resize_payload(99, 27),
    ))
    .unwrap();
    s.write_all(&attach::frame(kind::STDIN, b"x\n")).unwrap();
    // The shell exits: the shim sends the rest and closes the session.
    let (text, eof) = read_until(&mut s, &["27 99", "got x", "/dev/pts/"]);
    assert!(eof || closed(&mut s), "{text}");
    let exit = wait_exit(&rt, &term_id, Duration::from_secs(20))
        .await
        .exit
        .unwrap();
    assert_eq!(exit.exit_code, 0);
    let log = std::fs::read_to_string(&term.log_path).unwrap();
    assert!(log.contains(" stdout F got x"), "{log}");
    let st = rt.container_status(&term_id).await.unwrap();
    assert_eq!(st.status, ContainerStatusKind::Exited);
    assert!(matches!(
        rt.attach(&term_id).await,
        Err(RuntimeError::Invalid(_))
    ));

    rt.remove_pod_sandbox(&sb).await.unwrap();
    rt.shutdown().await;
}
