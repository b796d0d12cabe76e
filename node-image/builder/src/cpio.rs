//! A `newc` cpio writer for the initramfs (the format the kernel unpacks), so device nodes such
//! as /dev/console can be included without root.

use std::io::{self, Write};

/// One archive member.
#[derive(Debug, Clone)]
pub enum Entry {
    /// Directory with permission bits.
    Dir { path: String, mode: u32 },
    /// Regular file.
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    /// Symbolic link to `target`.
    Symlink { path: String, target: String },
    /// Character device node.
    CharDev {
        path: String,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Writes entries in `newc` format; call [`CpioWriter::finish`] to add the trailer.
pub struct CpioWriter<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    /// Start an archive on `out`.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            ino: 1,
            written: 0,
        }
    }

    fn header(&mut self, name: &str, mode: u32, size: u32, rdev: (u32, u32)) -> io::Result<()> {
        let namesize = name.len() as u32 + 1;
        let fields = [
            self.ino, mode, 0, 0, 1, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.ino += 1;
        let mut h = String::from("070701");
        for f in fields {
            h.push_str(&format!("{f:08x}"));
        }
        self.put(h.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..rem])
    }

    /// Append one entry (paths are relative, without a leading `/`).
    pub fn add(&mut self, entry: &Entry) -> io::Result<()> {
        match entry {
            Entry::Dir { path, mode } => self.header(path, S_IFDIR | mode, 0, (0, 0)),
            Entry::File { path, mode, data } => {
                let size = u32::try_from(data.len())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file over 4 GiB"))?;
                self.header(path, S_IFREG | mode, size, (0, 0))?;
                self.put(data)?;
                self.pad()
            }
            Entry::Symlink { path, target } => {
                self.header(path, S_IFLNK | 0o777, target.len() as u32, (0, 0))?;
                self.put(target.as_bytes())?;
                self.pad()
            }
            Entry::CharDev {
                path,
                mode,
                major,
                minor,
            } => self.header(path, S_IFCHR | mode, 0, (*major, *minor)),
        }
    }

    /// Write the `TRAILER!!!` entry and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header("TRAILER!!!", 0, 0, (0, 0))?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_cpio_lists_what_we_wrote() {
        let mut w = CpioWriter::new(Vec::new());
        w.add(&Entry::Dir {
            path: "dev".into(),
            mode: 0o755,
        })
        .unwrap();
        w.add(&Entry::CharDev {
            path: "dev/console".into(),
            mode: 0o600,
            major: 5,
            minor: 1,
        })
        .unwrap();
        w.add(&Entry::File {
            path: "init".into(),
            mode: 0o755,
            data: b"hello".to_vec(),
        })
        .unwrap();
        w.add(&Entry::Symlink {
            path: "sbin".into(),
            target: "/".into(),
        })
        .unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let mut child = std::process::Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cpio (Debian package cpio) is needed for this test");
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        let listing = String::from_utf8(out.stdout).unwrap();
        assert!(listing.contains("dev/console"), "{listing}");
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("crw-------") && l.contains("5,")),
            "{listing}"
        );
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("init")),
            "{listing}"
        );
        assert!(listing.contains("sbin -> /"), "{listing}");
    }
}
