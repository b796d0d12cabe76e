//! Flashing to a regular file and to loop devices (root and /dev/loop-control needed), with the
//! refusals: not an image, a mounted target (the loop device and its backing file), too small.

use std::path::{Path, PathBuf};
use std::process::Command;

use bramble_flash::{flash, FlashError};

fn fake_image(dir: &Path, mib: usize) -> PathBuf {
    let mut data: Vec<u8> = (0..mib * 1024 * 1024)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    data[510] = 0x55;
    data[511] = 0xaa;
    let p = dir.join("board.img");
    std::fs::write(&p, data).unwrap();
    p
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A loop device over `file`, detached on drop.
struct Loop(String);

impl Loop {
    fn new(file: &Path) -> Loop {
        Loop(run("losetup", &["-f", "--show", &file.to_string_lossy()]))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn flashes_a_regular_file_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let img = fake_image(dir.path(), 9);
    let target = dir.path().join("card.bin");
    std::fs::write(&target, b"old").unwrap();
    let r = flash(&img, &target, false, true, true).unwrap();
    assert!(r.verified);
    assert_eq!(r.bytes, 9 << 20);
    assert!(
        std::fs::read(&target).unwrap() == std::fs::read(&img).unwrap(),
        "content differs"
    );
    let want = run("sha256sum", &[&img.to_string_lossy()]);
    assert!(want.starts_with(&r.sha256), "{want} vs {}", r.sha256);
}

#[test]
fn refuses_a_file_that_is_not_an_image_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let not_img = dir.path().join("notes.txt");
    std::fs::write(&not_img, vec![b'x'; 4096]).unwrap();
    let target = dir.path().join("card.bin");
    std::fs::write(&target, b"keep me").unwrap();
    let e = flash(&not_img, &target, false, true, true).unwrap_err();
    assert!(matches!(e, FlashError::NotAnImage { .. }), "{e}");
    assert!(e.to_string().contains("not a bramble image"));
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}

#[test]
fn flashes_a_loop_device_and_refuses_it_when_mounted() {
    let dir = tempfile::tempdir().unwrap();
    let img = fake_image(dir.path(), 6);

    // A 16 MiB "card" on a loop device: written and read back through the block device.
    let card = dir.path().join("card.bin");
    std::fs::File::create(&card)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let lo = Loop::new(&card);
    let r = flash(&img, Path::new(&lo.0), false, true, true).unwrap();
    assert!(r.verified);
    let back = std::fs::read(&card).unwrap();
    assert!(
        back[..6 << 20] == std::fs::read(&img).unwrap()[..],
        "loop device content differs"
    );
    drop(lo);

    // A mounted card: refused through the loop device and through its backing file.
    let fat = dir.path().join("mounted.bin");
    std::fs::File::create(&fat)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    run("mkfs.ext4", &["-q", "-F", &fat.to_string_lossy()]);
    let lo = Loop::new(&fat);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run("mount", &[&lo.0, &mnt.to_string_lossy()]);
    let e1 = flash(&img, Path::new(&lo.0), false, true, true).unwrap_err();
    let e2 = flash(&img, &fat, false, true, true).unwrap_err();
    run("umount", &[&mnt.to_string_lossy()]);
    assert!(matches!(e1, FlashError::Mounted { .. }), "{e1}");
    assert!(e1.to_string().contains("is mounted"), "{e1}");
    assert!(matches!(e2, FlashError::Mounted { .. }), "{e2}");
    // Mounting touches the superblock, so compare against the image: none of it may be there.
    let now = std::fs::read(&fat).unwrap();
    let image = std::fs::read(&img).unwrap();
    assert!(
        now[..1 << 20] != image[..1 << 20],
        "a refused flash wrote the image"
    );
    assert!(
        now[..512].iter().all(|b| *b == 0),
        "boot sector area was written"
    );

    // Too small.
    let tiny = dir.path().join("tiny.bin");
    std::fs::File::create(&tiny)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let lo2 = Loop::new(&tiny);
    let e = flash(&img, Path::new(&lo2.0), false, true, true).unwrap_err();
    assert!(matches!(e, FlashError::TooSmall { .. }), "{e}");
}
