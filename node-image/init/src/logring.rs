//! The log ring buffer: recent lines of init and of each service, bounded in bytes, with a
//! sequence number per line so a reader (the node API) can follow.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Monotonic sequence number (1, 2, ...).
    pub seq: u64,
    /// Wall-clock time the line was recorded.
    pub time: SystemTime,
    /// Source: `init`, `controller`, `kubelet`.
    pub source: String,
    /// The text, without newline.
    pub text: String,
}

#[derive(Debug)]
struct Inner {
    lines: VecDeque<LogLine>,
    bytes: usize,
    next_seq: u64,
}

/// A shared, byte-bounded ring of log lines.
#[derive(Debug, Clone)]
pub struct LogRing {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
}

impl LogRing {
    /// A ring holding at most `capacity` bytes of text.
    pub fn new(capacity: usize) -> LogRing {
        LogRing {
            inner: Arc::new(Mutex::new(Inner {
                lines: VecDeque::new(),
                bytes: 0,
                next_seq: 1,
            })),
            capacity,
        }
    }

    /// Record a line; drops the oldest lines when over capacity. Returns its sequence number.
    pub fn push(&self, source: &str, text: &str) -> u64 {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let seq = g.next_seq;
        g.next_seq += 1;
        let line = LogLine {
            seq,
            time: SystemTime::now(),
            source: source.to_string(),
            text: text.trim_end_matches(['\n', '\r']).to_string(),
        };
        g.bytes += line.text.len() + line.source.len();
        g.lines.push_back(line);
        while g.bytes > self.capacity && g.lines.len() > 1 {
            if let Some(old) = g.lines.pop_front() {
                g.bytes -= old.text.len() + old.source.len();
            }
        }
        seq
    }

    /// Lines with `seq > after`, optionally only from `source`.
    pub fn since(&self, after: u64, source: Option<&str>) -> Vec<LogLine> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.lines
            .iter()
            .filter(|l| l.seq > after && source.is_none_or(|s| s == l.source))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_newest_lines_within_capacity() {
        let r = LogRing::new(40);
        for i in 0..10 {
            r.push("kubelet", &format!("line {i}\n"));
        }
        let all = r.since(0, None);
        assert_eq!(all.last().unwrap().text, "line 9");
        assert_eq!(all.last().unwrap().seq, 10);
        assert!(all.len() < 10 && all.len() >= 2, "{}", all.len());
        assert!(all.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        r.push("init", "hello");
        assert_eq!(r.since(10, None).len(), 1);
        assert_eq!(r.since(0, Some("init")).len(), 1);
    }
}
