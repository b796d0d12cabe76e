//! `bramble image import FILE | ls | rm REF`: the operator's view of the node's image store.

use clap::{Args as ClapArgs, Subcommand};
use std::io::Write;
use std::path::PathBuf;

use crate::import::{import_archive, ImportError, ImportOptions};
use crate::mounts::MountedImages;
use crate::store::{ImageRecord, ImageStore, StoreError};

/// Default image store directory on a node.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/bramble/images";

/// Arguments of `bramble image`.
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// Image store directory.
    #[arg(long, env = "BRAMBLE_IMAGE_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `bramble image` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Import an OCI image layout tarball (oci-archive) or a `docker save` tarball.
    Import {
        /// The archive.
        file: PathBuf,
        /// Repository for images the archive names only by tag (or not at all).
        #[arg(long)]
        name: Option<String>,
    },
    /// List images.
    Ls,
    /// Remove an image (its layers go when no other image uses them).
    Rm {
        /// Image reference, e.g. `busybox:1.36` or `registry:5000/app@sha256:...`.
        reference: String,
    },
}

/// Errors of the `image` subcommands.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Import failure.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The mount table could not be read.
    #[error("reading /proc/self/mountinfo: {0}")]
    Mounts(std::io::Error),
    /// Writing output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs `bramble image ...`, writing to stdout.
pub fn run(args: Args) -> Result<(), CliError> {
    run_with_output(args, &mut std::io::stdout().lock())
}

/// Runs `bramble image ...`, writing to `out`. `rm` refuses images whose layers a mounted
/// container rootfs overlay uses (read from the mount table); the kubelet itself removes images
/// through [`ImageStore::remove`] with its own knowledge of containers.
pub fn run_with_output(args: Args, out: &mut dyn Write) -> Result<(), CliError> {
    let store = ImageStore::open(&args.data_dir)?;
    match args.command {
        Command::Import { file, name } => {
            let opts = ImportOptions {
                default_name: name,
                ..Default::default()
            };
            for rec in import_archive(&store, &file, &opts)? {
                writeln!(out, "imported {} ({})", rec.reference, rec.manifest_digest)?;
            }
        }
        Command::Ls => print_table(&store.list()?, out)?,
        Command::Rm { reference } => {
            let mounted = MountedImages::read().map_err(CliError::Mounts)?;
            let rec = store.remove(&reference, |r| mounted.uses(&store, r))?;
            writeln!(out, "Deleted: {}", rec.reference)?;
        }
    }
    Ok(())
}

fn print_table(recs: &[ImageRecord], out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = recs
        .iter()
        .map(|r| {
            let (repo, tag) = match r.reference.strip_prefix(r.repository()) {
                Some(rest) if rest.starts_with(':') => (r.repository(), rest[1..].to_string()),
                _ => (r.repository(), "<none>".to_string()),
            };
            let id = r.config_digest.trim_start_matches("sha256:");
            [
                repo.to_string(),
                tag,
                id[..id.len().min(13)].to_string(),
                human_size(r.size),
            ]
        })
        .collect();
    let header = ["IMAGE", "TAG", "IMAGE ID", "SIZE"];
    let mut w = header.map(str::len);
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    writeln!(
        out,
        "{:<a$}   {:<b$}   {:<c$}   {}",
        header[0],
        header[1],
        header[2],
        header[3],
        a = w[0],
        b = w[1],
        c = w[2]
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<a$}   {:<b$}   {:<c$}   {}",
            r[0],
            r[1],
            r[2],
            r[3],
            a = w[0],
            b = w[1],
            c = w[2]
        )?;
    }
    Ok(())
}

/// Sizes as crictl prints them: decimal units, three significant digits (Go's
/// `units.HumanSizeWithPrecision(size, 3)`): `999B`, `1.5MB`, `2.09MB`, `772kB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as usize) + 1
    };
    let decimals = 3usize.saturating_sub(int_digits);
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_a_subcommand_of_the_root_binary() {
        use clap::Parser;
        #[derive(Parser)]
        struct Root {
            #[command(subcommand)]
            cmd: RootCmd,
        }
        #[derive(clap::Subcommand)]
        enum RootCmd {
            Image(Args),
        }
        let Root {
            cmd: RootCmd::Image(a),
        } = Root::try_parse_from(["bramble", "image", "--data-dir", "/d", "rm", "busybox"])
            .unwrap();
        assert_eq!(a.data_dir, PathBuf::from("/d"));
        assert!(matches!(a.command, Command::Rm { ref reference } if reference == "busybox"));
        let Root {
            cmd: RootCmd::Image(a),
        } = Root::try_parse_from(["bramble", "image", "import", "x.tar", "--name", "app"]).unwrap();
        assert!(
            matches!(a.command, Command::Import { ref name, .. } if name.as_deref() == Some("app"))
        );
        assert!(Root::try_parse_from(["bramble", "image", "ls", "extra"]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(2_094_000), "2.09MB");
        assert_eq!(human_size(772_400), "772kB");
        assert_eq!(human_size(2_000_000_000), "2GB");
    }
}
