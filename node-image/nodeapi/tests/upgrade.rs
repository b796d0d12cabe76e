//! `bramble node upgrade`'s path without a board: a card image made with the standard tools
//! (sfdisk, mkfs.vfat + mcopy, mksquashfs) is taken apart into a bundle, streamed over real TLS
//! on loopback, and the handler receives exactly the image's boot files and squashfs root, each
//! checked against its SHA-256; a refusal comes back with its status and message.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use bramble_node_api::image::bundle_from_image;
use bramble_node_api::tls::{load_or_create, server_config};
use bramble_node_api::upgrade::copy_verified;
use bramble_node_api::{
    spawn, LogEntry, NodeApiError, NodeClient, NodeHandler, PowerRequest, ServerSettings,
    UpgradeManifest,
};

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<(String, Vec<u8>)>>,
}

impl NodeHandler for Receiver {
    fn status(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn logs(&self, _: u64, _: Option<&str>) -> Vec<LogEntry> {
        Vec::new()
    }
    fn kubeconfig(&self) -> Option<String> {
        None
    }
    fn power(&self, _: PowerRequest) -> Result<(), String> {
        Ok(())
    }
    fn upgrade(
        &self,
        m: UpgradeManifest,
        body: &mut dyn Read,
    ) -> Result<serde_json::Value, (u16, String)> {
        if m.board != "qemu-virt" {
            return Err((400, format!("board: `{}` is not this node's", m.board)));
        }
        let mut got = Vec::new();
        for p in m.files.iter().chain([&m.root]) {
            let mut buf = Vec::new();
            copy_verified(body, &mut buf, p).map_err(|e| (400u16, e))?;
            got.push((p.name.clone(), buf));
        }
        *self.got.lock().unwrap() = got;
        Ok(serde_json::json!({ "slot": "b" }))
    }
}

fn sh(cmd: &str, args: &[&str], stdin: Option<&str>) {
    let mut c = Command::new(cmd);
    c.args(args).stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "{cmd} {args:?}");
}

/// A two-partition card: p1 FAT with the boot files, p2 a squashfs root.
fn make_image(dir: &Path, board: &str) -> std::path::PathBuf {
    let boot = dir.join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    std::fs::write(boot.join("vmlinuz"), vec![7u8; 300_000]).unwrap();
    std::fs::write(boot.join("initrd.img"), b"initramfs bytes").unwrap();
    std::fs::write(
        boot.join("bramble-image.yaml"),
        format!("board: {board}\nmodel: x\nbuilder_version: 0.1.0\n"),
    )
    .unwrap();
    let fat = dir.join("boot.vfat");
    let p = |x: &Path| x.to_str().unwrap().to_string();
    sh("mkfs.vfat", &["-C", &p(&fat), "8192"], None);
    for f in ["vmlinuz", "initrd.img", "bramble-image.yaml"] {
        sh("mcopy", &["-i", &p(&fat), &p(&boot.join(f)), "::/"], None);
    }
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("sbin")).unwrap();
    std::fs::write(root.join("sbin/init"), vec![1u8; 100_000]).unwrap();
    let squash = dir.join("root.squashfs");
    sh(
        "mksquashfs",
        &[&p(&root), &p(&squash), "-noappend", "-all-root", "-quiet"],
        None,
    );
    let image = dir.join("card.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(24 << 20)
        .unwrap();
    sh(
        "sfdisk",
        &["--no-reread", "--no-tell-kernel", "-q", &p(&image)],
        Some("label: dos\nstart=2048, size=16384, type=c\nstart=18432, size=28672, type=83\n"),
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    for (src, off) in [(&fat, 2048u64 * 512), (&squash, 18432 * 512)] {
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(&std::fs::read(src).unwrap()).unwrap();
    }
    image
}

#[test]
fn an_image_streams_to_the_node_as_a_verified_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let image = make_image(dir.path(), "qemu-virt");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let bundle = bundle_from_image(&image, &work).unwrap();
    assert_eq!(bundle.manifest.board, "qemu-virt");
    assert_eq!(bundle.manifest.version, "0.1.0");
    let squash = std::fs::read(dir.path().join("root.squashfs")).unwrap();
    // The root is the squashfs as mksquashfs padded it (4 KiB), not the whole partition.
    assert_eq!(bundle.manifest.root.size, squash.len() as u64);

    let certs = tempfile::tempdir().unwrap();
    let id = load_or_create(certs.path(), &["127.0.0.1".into()]).unwrap();
    let handler = Arc::new(Receiver::default());
    let addr = spawn(
        "127.0.0.1:0".parse().unwrap(),
        ServerSettings {
            tls: server_config(&id).unwrap(),
            token: Some("tok".into()),
        },
        handler.clone(),
    )
    .unwrap();
    let client = NodeClient::new(&addr.to_string(), "tok", Some(&id.fingerprint())).unwrap();
    let mut readers = bundle.readers().unwrap();
    let mut refs: Vec<&mut dyn Read> = readers.iter_mut().map(|r| r.as_mut() as _).collect();
    assert_eq!(
        client.upgrade(&bundle.manifest, &mut refs).unwrap()["slot"],
        "b"
    );
    let got = handler.got.lock().unwrap().clone();
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["vmlinuz", "initrd.img", "bramble-image.yaml", "root"]
    );
    assert_eq!(got[0].1, vec![7u8; 300_000]);
    assert_eq!(got[3].1, squash);

    // A refusal: the client sees the handler's status and message.
    let other = make_image(&dir.path().join("other"), "rpi-4b");
    let work2 = dir.path().join("work2");
    std::fs::create_dir_all(&work2).unwrap();
    let b2 = bundle_from_image(&other, &work2).unwrap();
    let mut readers = b2.readers().unwrap();
    let mut refs: Vec<&mut dyn Read> = readers.iter_mut().map(|r| r.as_mut() as _).collect();
    match client.upgrade(&b2.manifest, &mut refs) {
        Err(NodeApiError::Status {
            status: 400,
            message,
        }) => {
            assert!(message.starts_with("board:"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    // Not an image: a clear error before anything is sent.
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0u8; 4096]).unwrap();
    let e = bundle_from_image(&junk, &work).unwrap_err();
    assert!(e.to_string().contains("no MBR partition table"), "{e}");
}
