//! `cargo run --release -p bramble-store --example store_bench -- [writers] [creates] [updates] [size] [dir]`
//!
//! Concurrent creates against a fresh store in a temporary directory under `dir` (default:
//! the system temp dir; pass a path on the disk you want to measure).

use bramble_store::bench::{run_create_bench, BenchConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| -> anyhow::Result<usize> {
        Ok(args
            .get(i)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let defaults = BenchConfig::default();
    let config = BenchConfig {
        writers: arg(0, defaults.writers)?,
        creates: arg(1, defaults.creates)?,
        updates: arg(2, defaults.updates)?,
        object_size: arg(3, defaults.object_size)?,
    };
    let parent = args
        .get(4)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(parent)?;
    let report = run_create_bench(dir.path(), &config).await?;
    println!("{report}");
    Ok(())
}
