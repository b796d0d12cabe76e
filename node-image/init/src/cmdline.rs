//! Parsing the kernel command line (`/proc/cmdline`).

/// Parameters init reads from the kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCmdline {
    /// `bramble.root=`: the read-only root (`PARTUUID=xxxxxxxx-02` or a /dev path).
    pub root: Option<String>,
    /// `bramble.data=`: the data partition.
    pub data: Option<String>,
    /// `bramble.config=`: override the node config path (for tests and bring-up).
    pub config: Option<String>,
    /// `bramble.slot=`: the A/B root slot this boot came from (`a` when absent).
    pub slot: Option<String>,
    /// `bramble.debug`: verbose init logging.
    pub debug: bool,
}

impl KernelCmdline {
    /// Parse a command line (space separated, `"..."` quoting as the kernel does).
    pub fn parse(text: &str) -> KernelCmdline {
        let mut out = KernelCmdline::default();
        for word in split_words(text) {
            let (k, v) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (word.as_str(), None),
            };
            match k {
                "bramble.root" => out.root = v,
                "bramble.data" => out.data = v,
                "bramble.config" => out.config = v,
                "bramble.slot" => out.slot = v,
                "bramble.debug" => out.debug = true,
                _ => {}
            }
        }
        out
    }
}

fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// A `PARTUUID=` reference for MBR disks: disk signature and partition number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartUuid {
    /// MBR disk signature.
    pub disk_id: u32,
    /// Partition number (1-based).
    pub partition: u32,
}

impl PartUuid {
    /// Parse `PARTUUID=1234abcd-02`.
    pub fn parse(s: &str) -> Option<PartUuid> {
        let v = s.strip_prefix("PARTUUID=")?;
        let (id, part) = v.split_once('-')?;
        Some(PartUuid {
            disk_id: u32::from_str_radix(id, 16).ok()?,
            partition: u32::from_str_radix(part, 16).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bramble_params_and_quotes() {
        let c = KernelCmdline::parse(
            "console=ttyAMA0 cgroup_no_v1=all bramble.root=PARTUUID=deadbeef-02 \
             bramble.data=PARTUUID=deadbeef-03 foo=\"a b\" bramble.debug\n",
        );
        assert_eq!(c.root.as_deref(), Some("PARTUUID=deadbeef-02"));
        assert_eq!(c.data.as_deref(), Some("PARTUUID=deadbeef-03"));
        assert!(c.debug);
        assert_eq!(
            PartUuid::parse("PARTUUID=deadbeef-0a"),
            Some(PartUuid {
                disk_id: 0xdeadbeef,
                partition: 10
            })
        );
        assert_eq!(PartUuid::parse("/dev/vda2"), None);
    }
}
