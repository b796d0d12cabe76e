//! The CRI container log format upstream's runtimes write and `kubectl logs` reads:
//! `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n`, one line per container output
//! line, `P` for a fragment of a line longer than [`MAX_LINE`], `F` for the (last part of a)
//! full line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// Longest line written whole; longer lines are split into `P` fragments (containerd's 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Formats a timestamp as Go's `time.RFC3339Nano` does (UTC, trailing zeros of the fraction
/// dropped).
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    // "2026-11-23T09:01:37.120000000Z" -> "2026-11-23T09:01:37.12Z"
    let Some(dot) = s.rfind('.') else { return s };
    let frac = s[dot + 1..s.len() - 1].trim_end_matches('0');
    if frac.is_empty() {
        format!("{}Z", &s[..dot])
    } else {
        format!("{}.{}Z", &s[..dot], frac)
    }
}

/// One CRI log line.
pub fn format_line(t: DateTime<Utc>, stream: Stream, partial: bool, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 48);
    out.extend_from_slice(rfc3339_nano(t).as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
    out
}

/// Splits a stream of output chunks into CRI lines, one pending buffer per stream.
#[derive(Default)]
pub struct LineSplitter {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl LineSplitter {
    /// Feeds a chunk; returns the complete lines `(partial, content)` it finishes.
    pub fn feed(&mut self, stream: Stream, chunk: &[u8]) -> Vec<(bool, Vec<u8>)> {
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                if nl <= MAX_LINE {
                    out.push((false, buf[..nl].to_vec()));
                    buf.drain(..=nl);
                    continue;
                }
            }
            if buf.len() > MAX_LINE {
                out.push((true, buf[..MAX_LINE].to_vec()));
                buf.drain(..MAX_LINE);
                continue;
            }
            break;
        }
        out
    }

    /// At end of stream: whatever is left, as a full line (containerd does the same).
    pub fn finish(&mut self, stream: Stream) -> Option<Vec<u8>> {
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        (!buf.is_empty()).then(|| std::mem::take(buf))
    }
}

/// Appends CRI lines to a container's log file.
pub struct CriLogWriter {
    path: PathBuf,
    file: File,
    splitter: LineSplitter,
}

impl CriLogWriter {
    /// Opens (creating, appending) the log file.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            file: open_append(path)?,
            splitter: LineSplitter::default(),
        })
    }

    /// Reopens the file at the same path (after the kubelet rotated it).
    pub fn reopen(&mut self) -> std::io::Result<()> {
        self.file = open_append(&self.path)?;
        Ok(())
    }

    /// Writes the lines a chunk completes.
    pub fn write_chunk(&mut self, stream: Stream, chunk: &[u8]) -> std::io::Result<()> {
        let now = Utc::now();
        for (partial, line) in self.splitter.feed(stream, chunk) {
            self.file
                .write_all(&format_line(now, stream, partial, &line))?;
        }
        Ok(())
    }

    /// Flushes a stream's unterminated tail at end of stream.
    pub fn finish(&mut self, stream: Stream) -> std::io::Result<()> {
        if let Some(rest) = self.splitter.finish(stream) {
            self.file
                .write_all(&format_line(Utc::now(), stream, false, &rest))?;
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_trim_like_go() {
        let t = Utc.timestamp_opt(1_700_000_000, 120_000_000).unwrap();
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20Z");
        let t = Utc.timestamp_opt(1_700_000_000, 1).unwrap();
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.000000001Z");
    }

    #[test]
    fn lines_are_tagged_full_or_partial() {
        let t = Utc.timestamp_opt(1_700_000_000, 5).unwrap();
        assert_eq!(
            format_line(t, Stream::Stderr, false, b"boom"),
            b"2023-11-14T22:13:20.000000005Z stderr F boom\n".to_vec()
        );
        let mut s = LineSplitter::default();
        assert_eq!(s.feed(Stream::Stdout, b"hel"), vec![]);
        assert_eq!(
            s.feed(Stream::Stdout, b"lo\nworld\npart"),
            vec![(false, b"hello".to_vec()), (false, b"world".to_vec())]
        );
        assert_eq!(s.feed(Stream::Stderr, b"e\n"), vec![(false, b"e".to_vec())]);
        assert_eq!(s.finish(Stream::Stdout), Some(b"part".to_vec()));
        assert_eq!(s.finish(Stream::Stdout), None);
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut chunk = long.clone();
        chunk.push(b'\n');
        let out = s.feed(Stream::Stdout, &chunk);
        assert_eq!(out.len(), 3);
        assert!(out[0].0 && out[1].0 && !out[2].0);
        assert_eq!(out[2].1.len(), 10);
        assert_eq!(s.feed(Stream::Stdout, b"\n"), vec![(false, vec![])]);
    }
}
