//! A hand-built OCI layout archive (gzip-compressed, three layers: gzip, gzip with whiteouts,
//! zstd) is imported, and its layer directories are mounted as a real overlayfs with
//! `lowerdir=` exactly as `layer_dirs` returns them: deleted files and opaque directories must
//! behave as the image says. Also drives the `bramble image` CLI on the same archive.

mod support;

use anyhow::{ensure, Result};
use bramble_images::cli::{run_with_output, Args, Command as ImageCommand};
use bramble_images::import::{import_archive, ImportOptions};
use bramble_images::ImageStore;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn zstd_layer(items: &[Item], dir: &Path) -> Result<Layer> {
    let tar = layer_tar(items);
    let src = dir.join("layer.tar");
    std::fs::write(&src, &tar)?;
    let st = Command::new("zstd").args(["-q", "-f"]).arg(&src).status()?;
    ensure!(st.success(), "zstd failed");
    let blob = std::fs::read(dir.join("layer.tar.zst"))?;
    Ok(Layer {
        digest: sha256(&blob),
        diff_id: sha256(&tar),
        blob,
    })
}

/// Writes an OCI image layout tarball, gzip-compressed, naming the image by tag only.
fn oci_layout_archive(img: &TestImage, layer_types: &[&str], tag: &str, out: &Path) -> Result<()> {
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest)?;
    for (i, t) in layer_types.iter().enumerate() {
        manifest["layers"][i]["mediaType"] = (*t).into();
    }
    let manifest = serde_json::to_vec(&manifest)?;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    }))?;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
        (blob_name(&sha256(&manifest)), manifest),
        (blob_name(&img.config_digest), img.config.clone()),
    ];
    for l in &img.layers {
        files.push((blob_name(&l.digest), l.blob.clone()));
    }
    let items: Vec<Item> = files
        .iter()
        .map(|(n, d)| Item::File(n.as_str(), d.clone(), 0o644))
        .collect();
    std::fs::write(out, gzip(&layer_tar(&items)))?;
    Ok(())
}

fn blob_name(d: &str) -> String {
    format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))
}

#[test]
fn imported_layers_mount_as_overlay_lowerdirs_with_whiteouts_applied() -> Result<()> {
    let work = tempfile::tempdir()?;
    let base = Layer::new(&[
        Item::Dir("bin"),
        Item::File("bin/busybox", busybox(), 0o755),
        Item::Dir("etc"),
        Item::File("etc/passwd", b"root:x:0:0::/:/bin/sh\n".to_vec(), 0o644),
        Item::File("etc/group", b"root:x:0:\n".to_vec(), 0o644),
        Item::Dir("var"),
        Item::Dir("var/cache"),
        Item::File("var/cache/a", b"a".to_vec(), 0o644),
        Item::File("var/cache/b", b"b".to_vec(), 0o644),
    ]);
    let delete = Layer::new(&[
        Item::Dir("etc"),
        Item::File("etc/.wh.passwd", vec![], 0o644),
        Item::Dir("var/cache"),
        Item::File("var/cache/.wh..wh..opq", vec![], 0o644),
        Item::File("var/cache/c", b"c".to_vec(), 0o644),
    ]);
    let top = zstd_layer(
        &[
            Item::Dir("etc"),
            Item::File("etc/motd", b"zstd layer\n".to_vec(), 0o644),
        ],
        work.path(),
    )?;
    let img = TestImage::new("amd64", vec![base, delete, top], &["/bin/busybox"], &["sh"]);
    let archive = work.path().join("app.oci.tar.gz");
    oci_layout_archive(
        &img,
        &[
            OCI_LAYER_GZIP,
            OCI_LAYER_GZIP,
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ],
        "v3",
        &archive,
    )?;

    let data = tempfile::tempdir()?;
    let store = ImageStore::open(data.path())?;
    let recs = import_archive(
        &store,
        &archive,
        &ImportOptions {
            default_name: Some("registry.lan/team/app".into()),
            ..Default::default()
        },
    )?;
    assert_eq!(recs[0].reference, "registry.lan/team/app:v3");
    assert_eq!(recs[0].config_digest, img.config_digest);
    let dirs = store.layer_dirs("registry.lan/team/app:v3")?;
    assert_eq!(dirs.len(), 3);
    assert_eq!(
        dirs[0],
        store.layer_path(&img.layers[2].digest)?,
        "top layer first"
    );
    assert_eq!(std::fs::read_dir(data.path().join("tmp"))?.count(), 0);

    let target = work.path().join("rootfs");
    std::fs::create_dir(&target)?;
    let lower = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("lowerdir={lower}"))
        .arg(&target)
        .status()?;
    ensure!(st.success(), "mount overlay failed");
    let _m = Mount(target.clone());

    assert!(!target.join("etc/passwd").exists(), "whiteout hides passwd");
    assert_eq!(std::fs::read(target.join("etc/group"))?, b"root:x:0:\n");
    assert_eq!(std::fs::read(target.join("etc/motd"))?, b"zstd layer\n");
    let mut cache: Vec<String> = std::fs::read_dir(target.join("var/cache"))?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cache.sort();
    assert_eq!(cache, ["c"], "opaque dir hides lower entries");
    let out = Command::new(target.join("bin/busybox"))
        .args(["cat", "/proc/self/comm"])
        .output()?;
    assert!(out.status.success());

    // `bramble image rm` sees the mounted rootfs in the mount table and refuses.
    let rm = |out: &mut Vec<u8>| {
        run_with_output(
            Args {
                data_dir: data.path().to_path_buf(),
                command: ImageCommand::Rm {
                    reference: "registry.lan/team/app:v3".into(),
                },
            },
            out,
        )
    };
    let err = rm(&mut Vec::new()).unwrap_err();
    assert!(
        err.to_string().contains("is in use by a container"),
        "{err}"
    );
    drop(_m);
    let mut out = Vec::new();
    rm(&mut out)?;
    assert_eq!(
        String::from_utf8(out)?,
        "Deleted: registry.lan/team/app:v3\n"
    );
    assert_eq!(
        std::fs::read_dir(data.path().join("layers/sha256"))?.count(),
        0
    );
    Ok(())
}

#[test]
fn cli_imports_lists_and_removes() -> Result<()> {
    let work = tempfile::tempdir()?;
    let img = busybox_image("amd64");
    let archive = work.path().join("bb.tar.gz");
    oci_layout_archive(&img, &[OCI_LAYER_GZIP], "1.36", &archive)?;
    let data = work.path().join("store");
    let run = |command| -> Result<String> {
        let mut out = Vec::new();
        run_with_output(
            Args {
                data_dir: data.clone(),
                command,
            },
            &mut out,
        )?;
        Ok(String::from_utf8(out)?)
    };
    let out = run(ImageCommand::Import {
        file: archive.clone(),
        name: Some("busybox".into()),
    })?;
    assert!(
        out.starts_with("imported docker.io/library/busybox:1.36 (sha256:"),
        "{out}"
    );
    let ls = run(ImageCommand::Ls)?;
    let lines: Vec<&str> = ls.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{ls}");
    assert!(lines[1].starts_with("docker.io/library/busybox"), "{ls}");
    assert!(lines[1].contains("1.36"), "{ls}");
    let short_id = &img.config_digest["sha256:".len()..][..13];
    assert!(lines[1].contains(short_id), "{ls}");
    let rm = run(ImageCommand::Rm {
        reference: "busybox:1.36".into(),
    })?;
    assert_eq!(rm, "Deleted: docker.io/library/busybox:1.36\n");
    assert_eq!(run(ImageCommand::Ls)?.lines().count(), 1);
    assert_eq!(std::fs::read_dir(data.join("layers/sha256"))?.count(), 0);
    let err = run(ImageCommand::Rm {
        reference: "busybox:1.36".into(),
    })
    .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    Ok(())
}
