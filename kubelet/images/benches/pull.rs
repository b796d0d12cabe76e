//! Time to pull and unpack a ~50 MiB image from a local Debian `docker-registry`.
//!
//! Run: `cargo bench -p bramble-images --bench pull` (release profile). Prints one line per
//! run: a cold pull into an empty store (manifest, config, 5 x 10 MiB random-content gzip layers
//! fetched, sha256-verified while streaming to disk, unpacked), then a warm re-pull (manifest
//! only, layers already present).

#[path = "../tests/support/mod.rs"]
mod support;

use bramble_images::{ImageStore, Keyring, Puller, RegistryConfig};
use std::time::Instant;
use support::*;

const LAYERS: usize = 5;
const LAYER_MIB: usize = 10;
const RUNS: usize = 3;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let reg = Registry::start()?;
    let layers: Vec<Layer> = (0..LAYERS)
        .map(|i| {
            let data: Vec<u8> = (0..LAYER_MIB << 20).map(|_| rand::random::<u8>()).collect();
            Layer::new(&[Item::File(&format!("data/blob{i}.bin"), data, 0o644)])
        })
        .collect();
    let img = TestImage::new("amd64", layers, &["/bin/sh"], &[]);
    let size = img.total_size();
    let repo = format!("{}/bench/big", reg.host());
    push_image(&client(), &repo, &img, ":50m").await?;
    let image = format!("{repo}:50m");
    println!(
        "image: {} layers, {:.1} MiB compressed; registry docker-registry on {}",
        LAYERS,
        size as f64 / (1 << 20) as f64,
        reg.host()
    );
    println!("| run | cold pull+unpack (s) | MiB/s | warm re-pull (ms) |");
    println!("|-----|----------------------|-------|-------------------|");
    let mut colds = Vec::new();
    for run in 1..=RUNS {
        // Store on the same filesystem as the tests' temp dirs (ext4 here).
        let dir = tempfile::tempdir()?;
        let store = ImageStore::open(dir.path())?;
        let puller = Puller::new(store.clone(), RegistryConfig::default());
        let t = Instant::now();
        let rec = puller.pull(&image, &Keyring::default()).await?;
        let cold = t.elapsed().as_secs_f64();
        assert_eq!(rec.manifest_digest, img.manifest_digest);
        let t = Instant::now();
        puller.pull(&image, &Keyring::default()).await?;
        let warm = t.elapsed().as_secs_f64() * 1000.0;
        println!(
            "| {run} | {cold:.3} | {:.1} | {warm:.1} |",
            size as f64 / (1 << 20) as f64 / cold
        );
        colds.push(cold);
    }
    colds.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("median cold pull+unpack: {:.3} s", colds[colds.len() / 2]);
    Ok(())
}
