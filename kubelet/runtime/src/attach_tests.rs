use super::*;
use std::io::Write;
use std::time::{Duration, Instant};

fn round(hub: &mut Hub) {
    let fds = hub.poll_fds();
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|(fd, ev, _)| libc::pollfd {
            fd: *fd,
            events: *ev,
            revents: 0,
        })
        .collect();
    // SAFETY: poll over our own vector.
    unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 20) };
    for (p, (_, _, tag)) in pfds.iter().zip(fds) {
        if p.revents != 0 {
            hub.ready(tag, p.revents);
        }
    }
    hub.sweep();
}

fn pump(hub: &mut Hub, rounds: usize) {
    for _ in 0..rounds {
        round(hub);
    }
}

fn client(dir: &Path, f: u8) -> UnixStream {
    let mut s = connect(dir).unwrap();
    s.write_all(&frame(kind::HELLO, &[f])).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Frames the shim sent so far (until a read times out or EOF); `true` at EOF.
fn received(s: &mut UnixStream) -> (Vec<(u8, Vec<u8>)>, bool) {
    let mut dec = Decoder::default();
    let mut buf = [0u8; 4096];
    let eof = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => dec.feed(&buf[..n]),
            Err(_) => break false,
        }
    };
    let mut out = Vec::new();
    while let Some(f) = dec.next_frame().unwrap() {
        out.push(f);
    }
    (out, eof)
}

fn read_pipe(r: &mut std::fs::File) -> (Vec<u8>, bool) {
    set_nonblocking(r.as_raw_fd());
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return (got, false),
        }
    }
}

fn stdin_hub(dir: &Path, stdin_once: bool) -> (Hub, std::fs::File) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let cfg = StdioConfig {
        stdin: true,
        stdin_once,
        tty: false,
    };
    let hub = Hub::bind(dir, Some(Input::Pipe(w)), cfg).unwrap();
    (hub, std::fs::File::from(r))
}

#[test]
fn frames_round_trip_and_oversized_frames_are_refused() {
    let mut d = Decoder::default();
    let mut bytes = frame(kind::HELLO, &[flags::STDIN | flags::STDOUT]);
    push_frames(&mut bytes, kind::STDIN, &vec![7u8; MAX_PAYLOAD + 3]);
    push_frames(&mut bytes, kind::CLOSE_STDIN, &[]);
    d.feed(&bytes[..3]);
    assert!(d.next_frame().unwrap().is_none());
    d.feed(&bytes[3..]);
    assert_eq!(d.next_frame().unwrap(), Some((kind::HELLO, vec![3])));
    assert_eq!(d.next_frame().unwrap().unwrap().1.len(), MAX_PAYLOAD);
    assert_eq!(d.next_frame().unwrap().unwrap().1.len(), 3);
    assert_eq!(d.next_frame().unwrap(), Some((kind::CLOSE_STDIN, vec![])));
    assert!(d.next_frame().unwrap().is_none());
    d.feed(&[kind::STDIN, 0xff, 0, 0, 0]);
    assert!(matches!(d.next_frame(), Err(AttachError::TooLarge(_))));
    assert_eq!(resize_payload(300, 2), [1, 44, 0, 2]);
}

#[test]
fn output_fans_out_and_input_from_any_client_reaches_the_container() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, mut r) = stdin_hub(dir.path(), false);
    let mut a = client(dir.path(), flags::STDIN | flags::STDOUT | flags::STDERR);
    let mut b = client(dir.path(), flags::STDOUT);
    pump(&mut hub, 5);
    hub.broadcast(kind::STDOUT, b"out");
    hub.broadcast(kind::STDERR, b"err");
    pump(&mut hub, 2);
    let (fa, _) = received(&mut a);
    let (fb, _) = received(&mut b);
    assert_eq!(
        fa,
        vec![
            (kind::STDOUT, b"out".to_vec()),
            (kind::STDERR, b"err".to_vec())
        ]
    );
    assert_eq!(fb, vec![(kind::STDOUT, b"out".to_vec())]);
    a.write_all(&frame(kind::STDIN, b"one\n")).unwrap();
    // b did not attach stdin: its input is dropped.
    b.write_all(&frame(kind::STDIN, b"not me\n")).unwrap();
    pump(&mut hub, 5);
    assert_eq!(read_pipe(&mut r), (b"one\n".to_vec(), false));
    // Without stdinOnce, the end of a's input ends a's session, not the container's stdin.
    a.write_all(&frame(kind::CLOSE_STDIN, &[])).unwrap();
    pump(&mut hub, 5);
    assert!(received(&mut a).1, "session ended");
    let mut c = client(dir.path(), flags::STDIN | flags::STDOUT);
    c.write_all(&frame(kind::STDIN, b"two\n")).unwrap();
    pump(&mut hub, 5);
    assert_eq!(read_pipe(&mut r), (b"two\n".to_vec(), false));
    hub.broadcast(kind::STDOUT, b"bye");
    hub.finish(Instant::now() + Duration::from_secs(2));
    assert_eq!(
        received(&mut c),
        (vec![(kind::STDOUT, b"bye".to_vec())], true)
    );
    assert_eq!(
        received(&mut b),
        (vec![(kind::STDOUT, b"bye".to_vec())], true)
    );
    assert!(!dir.path().join(SOCKET).exists());
}

#[test]
fn stdin_once_closes_the_containers_stdin_when_the_first_session_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, mut r) = stdin_hub(dir.path(), true);
    let mut a = client(dir.path(), flags::STDIN | flags::STDOUT);
    a.write_all(&frame(kind::STDIN, b"last words\n")).unwrap();
    a.write_all(&frame(kind::CLOSE_STDIN, &[])).unwrap();
    pump(&mut hub, 5);
    assert_eq!(read_pipe(&mut r), (b"last words\n".to_vec(), true));
    // The session goes on (output until the container exits).
    hub.broadcast(kind::STDOUT, b"got it");
    pump(&mut hub, 2);
    assert_eq!(
        received(&mut a),
        (vec![(kind::STDOUT, b"got it".to_vec())], false)
    );

    // A disconnect ends input the same way.
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, mut r) = stdin_hub(dir.path(), true);
    let mut a = client(dir.path(), flags::STDIN | flags::STDOUT);
    a.write_all(&frame(kind::STDIN, b"x")).unwrap();
    pump(&mut hub, 3);
    drop(a);
    pump(&mut hub, 3);
    assert_eq!(read_pipe(&mut r), (b"x".to_vec(), true));
}

#[test]
fn a_container_without_stdin_drops_input_and_a_tty_takes_resizes() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Hub::bind(dir.path(), None, StdioConfig::default()).unwrap();
    let mut a = client(dir.path(), flags::STDIN | flags::STDOUT);
    a.write_all(&frame(kind::STDIN, b"ignored")).unwrap();
    a.write_all(&frame(kind::CLOSE_STDIN, &[])).unwrap();
    pump(&mut hub, 5);
    hub.broadcast(kind::STDOUT, b"still here");
    pump(&mut hub, 2);
    assert_eq!(
        received(&mut a),
        (vec![(kind::STDOUT, b"still here".to_vec())], false)
    );

    let pty = nix::pty::openpty(None, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = StdioConfig {
        stdin: true,
        stdin_once: true,
        tty: true,
    };
    let master = Rc::new(pty.master);
    let mut hub = Hub::bind(dir.path(), Some(Input::Tty(master.clone())), cfg).unwrap();
    let mut a = client(dir.path(), flags::STDIN | flags::STDOUT | flags::STDERR);
    a.write_all(&frame(kind::RESIZE, &resize_payload(99, 27)))
        .unwrap();
    a.write_all(&frame(kind::STDIN, b"typed\n")).unwrap();
    pump(&mut hub, 5);
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    assert_eq!((ws.ws_col, ws.ws_row), (99, 27));
    let mut slave = std::fs::File::from(pty.slave);
    let (got, _) = read_pipe(&mut slave);
    assert_eq!(got, b"typed\n");
    // A terminal's stderr is its stdout; stdinOnce does not hang the terminal up.
    hub.broadcast(kind::STDERR, b"e");
    a.write_all(&frame(kind::CLOSE_STDIN, &[])).unwrap();
    pump(&mut hub, 5);
    assert_eq!(
        received(&mut a),
        (vec![(kind::STDOUT, b"e".to_vec())], true)
    );
    assert!(hub.input.is_some());
}
