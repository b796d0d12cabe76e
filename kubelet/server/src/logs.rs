//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's CRI-format log file as
//! plain text, with upstream's options (`follow`, `tailLines`, `sinceSeconds`, `sinceTime`,
//! `timestamps`, `previous`, `limitBytes`).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use bramble_runtime::{ContainerRuntime, ContainerStatusKind};

use crate::query::Params;

/// How often a followed log is polled for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// What the client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming while the container runs.
    pub follow: bool,
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Only lines at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Prefix every line with its RFC3339Nano timestamp.
    pub timestamps: bool,
    /// The previous terminated instance's log.
    pub previous: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    /// Parses the query; errors carry upstream's wording.
    pub fn parse(q: &Params) -> Result<LogOptions, String> {
        let num = |k: &str| -> Result<Option<i64>, String> {
            q.get(k)
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| format!("invalid value {v:?} for {k}"))
                })
                .transpose()
        };
        let mut o = LogOptions {
            follow: q.flag("follow"),
            timestamps: q.flag("timestamps"),
            previous: q.flag("previous"),
            ..Default::default()
        };
        if let Some(t) = num("tailLines")? {
            if t < 0 {
                return Err("tailLines: must be greater than or equal to 0".into());
            }
            o.tail_lines = Some(t as u64);
        }
        if let Some(b) = num("limitBytes")? {
            if b < 1 {
                return Err("limitBytes: must be greater than 0".into());
            }
            o.limit_bytes = Some(b as u64);
        }
        if let Some(s) = num("sinceSeconds")? {
            if s < 1 {
                return Err("sinceSeconds: must be greater than 0".into());
            }
            o.since = Some(Utc::now() - chrono::Duration::seconds(s));
        }
        if let Some(t) = q.get("sinceTime") {
            if o.since.is_some() {
                return Err("at most one of sinceTime or sinceSeconds may be specified".into());
            }
            let t = DateTime::parse_from_rfc3339(t)
                .map_err(|_| format!("invalid value {t:?} for sinceTime"))?;
            o.since = Some(t.with_timezone(&Utc));
        }
        Ok(o)
    }
}

/// One parsed CRI log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// The timestamp as written.
    pub timestamp: &'a str,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// `P`: a fragment, no newline after it.
    pub partial: bool,
    /// The content.
    pub content: &'a [u8],
}

/// Parses `<timestamp> <stream> <F|P> <content>` (without the trailing newline).
pub fn parse_line(line: &[u8]) -> Option<CriLine<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or(&[]);
    Some(CriLine {
        timestamp: ts,
        stream,
        partial: tag == b"P",
        content,
    })
}

/// Turns CRI lines into client output, applying `since`, `timestamps` and `limitBytes`.
#[derive(Debug)]
pub struct Formatter {
    opts: LogOptions,
    written: u64,
    at_line_start: bool,
}

impl Formatter {
    /// A formatter for `opts`.
    pub fn new(opts: LogOptions) -> Self {
        Formatter {
            opts,
            written: 0,
            at_line_start: true,
        }
    }

    /// Whether `limitBytes` has been reached.
    pub fn exhausted(&self) -> bool {
        self.opts.limit_bytes.is_some_and(|l| self.written >= l)
    }

    /// Appends the output for one raw file line to `out`.
    pub fn push(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let Some(line) = parse_line(raw) else { return };
        if let Some(since) = self.opts.since {
            match DateTime::parse_from_rfc3339(line.timestamp) {
                Ok(t) if t.with_timezone(&Utc) < since => return,
                _ => {}
            }
        }
        let start = out.len();
        if self.opts.timestamps && self.at_line_start {
            out.extend_from_slice(line.timestamp.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line.content);
        if !line.partial {
            out.push(b'\n');
        }
        self.at_line_start = !line.partial;
        let added = (out.len() - start) as u64;
        if let Some(limit) = self.opts.limit_bytes {
            let room = limit.saturating_sub(self.written);
            if added > room {
                out.truncate(start + room as usize);
            }
        }
        self.written += (out.len() - start) as u64;
    }
}

/// Where reading starts: the byte offset of the first of the last `n` full lines of `data`.
pub fn tail_offset(data: &[u8], n: u64) -> usize {
    if n == 0 {
        return data.len();
    }
    let mut seen = 0u64;
    // Walk back over line ends; a line counts when it is a full (`F`) CRI line.
    let mut end = data.len();
    while end > 0 {
        let start = data[..end - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(0);
        let is_full = parse_line(&data[start..end - 1]).is_some_and(|l| !l.partial);
        if is_full {
            seen += 1;
            if seen > n {
                return end;
            }
        }
        end = start;
    }
    0
}

/// Reads a log file from an offset, line by line, noticing rotation.
struct LogReader {
    path: PathBuf,
    file: std::fs::File,
    inode: u64,
    pending: Vec<u8>,
}

impl LogReader {
    fn open(path: &Path) -> std::io::Result<LogReader> {
        let file = std::fs::File::open(path)?;
        let inode = file.metadata()?.ino();
        Ok(LogReader {
            path: path.to_owned(),
            file,
            inode,
            pending: Vec::new(),
        })
    }

    /// Complete lines read since the last call (without their newline).
    fn read_lines(&mut self) -> std::io::Result<Vec<Vec<u8>>> {
        let mut buf = Vec::new();
        self.file.read_to_end(&mut buf)?;
        self.pending.extend_from_slice(&buf);
        let mut lines = Vec::new();
        while let Some(nl) = self.pending.iter().position(|b| *b == b'\n') {
            lines.push(self.pending[..nl].to_vec());
            self.pending.drain(..=nl);
        }
        Ok(lines)
    }

    /// After EOF: if the path now names a new file (rotation), switch to it.
    fn reopen_if_rotated(&mut self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(m) if m.ino() != self.inode => match std::fs::File::open(&self.path) {
                Ok(f) => {
                    self.file = f;
                    self.inode = m.ino();
                    self.pending.clear();
                    true
                }
                Err(_) => false,
            },
            _ => false,
        }
    }
}

/// Opens the log at `path` positioned for `opts` (tail), returning the reader and the
/// output of what it already holds.
fn open_positioned(path: &Path, opts: &LogOptions) -> std::io::Result<(LogReader, Vec<Vec<u8>>)> {
    let mut reader = LogReader::open(path)?;
    if let Some(n) = opts.tail_lines {
        let mut data = Vec::new();
        reader.file.read_to_end(&mut data)?;
        let off = tail_offset(&data, n);
        reader.file.seek(SeekFrom::Start(off as u64))?;
    }
    let lines = reader.read_lines()?;
    Ok((reader, lines))
}

/// Streams the log: the chunks are sent to `tx` until the end (or, with `follow`, until the
/// container stops running and the file is drained, or the receiver goes away).
pub async fn stream<R: ContainerRuntime + 'static>(
    path: PathBuf,
    opts: LogOptions,
    follow_container: Option<(Arc<R>, String)>,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> std::io::Result<()> {
    let (mut reader, first) = {
        let path = path.clone();
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || open_positioned(&path, &opts))
            .await
            .map_err(std::io::Error::other)??
    };
    let mut fmt = Formatter::new(opts.clone());
    let send = |fmt: &mut Formatter, lines: Vec<Vec<u8>>| {
        let mut out = Vec::new();
        for l in lines {
            if fmt.exhausted() {
                break;
            }
            fmt.push(&l, &mut out);
        }
        out
    };
    let out = send(&mut fmt, first);
    if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
        return Ok(());
    }
    let Some((runtime, id)) = follow_container.filter(|_| opts.follow) else {
        return Ok(());
    };
    let mut last_check = tokio::time::Instant::now();
    let mut stopped = false;
    loop {
        if fmt.exhausted() || tx.is_closed() {
            return Ok(());
        }
        let lines = reader.read_lines()?;
        if lines.is_empty() {
            if reader.reopen_if_rotated() {
                continue;
            }
            if stopped {
                return Ok(());
            }
            if last_check.elapsed() >= Duration::from_millis(500) {
                last_check = tokio::time::Instant::now();
                stopped = match runtime.container_status(&id).await {
                    Ok(st) => !matches!(
                        st.status,
                        ContainerStatusKind::Running | ContainerStatusKind::Created
                    ),
                    Err(_) => true,
                };
                // One more read after the container stopped drains what it wrote last.
                continue;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
            continue;
        }
        let out = send(&mut fmt, lines);
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-11-23T10:00:00Z stdout F one\n\
2026-11-23T10:00:01.5Z stderr F two\n\
2026-11-23T10:00:02Z stdout P thr\n\
2026-11-23T10:00:02Z stdout F ee\n\
2026-11-23T10:00:03Z stdout F four\n";

    fn render(opts: LogOptions, data: &[u8]) -> String {
        let mut f = Formatter::new(opts);
        let mut out = Vec::new();
        for l in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            f.push(l, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_partial_and_timestamps() {
        assert_eq!(
            render(LogOptions::default(), LOG),
            "one\ntwo\nthree\nfour\n"
        );
        let ts = render(
            LogOptions {
                timestamps: true,
                ..Default::default()
            },
            LOG,
        );
        assert_eq!(
            ts,
            "2026-11-23T10:00:00Z one\n2026-11-23T10:00:01.5Z two\n\
2026-11-23T10:00:02Z three\n2026-11-23T10:00:03Z four\n"
        );
    }

    #[test]
    fn since_and_limit_bytes() {
        let since = DateTime::parse_from_rfc3339("2026-11-23T10:00:01Z")
            .unwrap()
            .with_timezone(&Utc);
        let o = LogOptions {
            since: Some(since),
            ..Default::default()
        };
        assert_eq!(render(o, LOG), "two\nthree\nfour\n");
        let o = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(render(o, LOG), "one\ntw");
    }

    #[test]
    fn tail_counts_full_lines() {
        assert_eq!(
            &LOG[tail_offset(LOG, 1)..],
            b"2026-11-23T10:00:03Z stdout F four\n"
        );
        let two = &LOG[tail_offset(LOG, 2)..];
        assert!(
            two.starts_with(b"2026-11-23T10:00:02Z stdout P thr"),
            "{two:?}"
        );
        assert_eq!(tail_offset(LOG, 10), 0);
        assert_eq!(tail_offset(LOG, 0), LOG.len());
    }

    #[test]
    fn options_from_query() {
        let q = Params::parse(Some("follow=true&tailLines=3&timestamps=1&limitBytes=10"));
        let o = LogOptions::parse(&q).unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!((o.tail_lines, o.limit_bytes), (Some(3), Some(10)));
        let q = Params::parse(Some("sinceTime=2026-11-23T10:00:01Z"));
        assert!(LogOptions::parse(&q).unwrap().since.is_some());
        assert!(LogOptions::parse(&Params::parse(Some("tailLines=-1"))).is_err());
        assert!(LogOptions::parse(&Params::parse(Some("sinceSeconds=x"))).is_err());
    }
}
