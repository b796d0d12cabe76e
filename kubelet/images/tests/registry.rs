//! Pulls from a real Debian `docker-registry` started on loopback by each test.

mod support;

use anyhow::Result;
use bramble_images::{ImageStore, Keyring, Platform, PullError, Puller, RegistryConfig};
use std::os::unix::fs::MetadataExt;
use support::*;

fn puller(store: &ImageStore) -> Puller {
    Puller::new(store.clone(), RegistryConfig::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_verifies_and_unpacks_a_busybox_image() -> Result<()> {
    let reg = Registry::start()?;
    let img = busybox_image("amd64");
    let repo = format!("{}/test/busybox", reg.host());
    push_image(&client(), &repo, &img, ":1.0").await?;

    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let image = format!("{repo}:1.0");
    assert!(!store.is_present(&image)?);
    let rec = puller(&store).pull(&image, &Keyring::default()).await?;

    assert_eq!(rec.reference, image);
    assert_eq!(rec.manifest_digest, img.manifest_digest);
    assert_eq!(rec.repo_digest, img.manifest_digest);
    assert_eq!(rec.config_digest, img.config_digest);
    assert_eq!(rec.layer_digests, vec![img.layers[0].digest.clone()]);
    assert_eq!(rec.size, img.total_size());
    assert_eq!(rec.platform, "linux/amd64");
    assert!(store.is_present(&image)?);

    // Manifest and config are stored by digest with the exact bytes pushed.
    assert_eq!(
        std::fs::read(store.blob_path(&img.manifest_digest)?)?,
        img.manifest
    );
    assert_eq!(
        std::fs::read(store.blob_path(&img.config_digest)?)?,
        img.config
    );
    // The compressed layer is not kept once unpacked; tmp/ is empty.
    assert!(!store.has_blob(&img.layers[0].digest));
    assert_eq!(std::fs::read_dir(dir.path().join("tmp"))?.count(), 0);

    let dirs = store.layer_dirs(&image)?;
    assert_eq!(dirs, vec![store.layer_path(&img.layers[0].digest)?]);
    assert_eq!(std::fs::read(dirs[0].join("bin/busybox"))?, busybox());
    assert_eq!(
        std::fs::read_link(dirs[0].join("bin/sh"))?,
        std::path::Path::new("busybox")
    );
    // The unpacked binary runs.
    let out = std::process::Command::new(dirs[0].join("bin/busybox"))
        .args(["echo", "from-layer"])
        .output()?;
    assert_eq!(String::from_utf8(out.stdout)?, "from-layer\n");

    let cfg = store.image_config(&image)?;
    assert_eq!(cfg.entrypoint, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(cfg.env, Some(vec!["PATH=/bin".to_string()]));
    assert_eq!(
        cfg.container_argv(&[], &["-c".into(), "true".into()]),
        ["/bin/sh", "-c", "true"]
    );

    // Found by digest too, and a re-pull reuses the unpacked layer (same inode).
    let by_digest = format!("{repo}@{}", img.manifest_digest);
    assert_eq!(store.find(&by_digest)?.unwrap().reference, image);
    let ino = std::fs::metadata(&dirs[0])?.ino();
    let again = puller(&store).pull(&by_digest, &Keyring::default()).await?;
    assert_eq!(again.reference, by_digest);
    assert_eq!(std::fs::metadata(&dirs[0])?.ino(), ino);
    assert_eq!(store.list()?.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_index_resolves_to_the_node_platform() -> Result<()> {
    let reg = Registry::start()?;
    let amd = busybox_image("amd64");
    let arm = busybox_image("arm64");
    let repo = format!("{}/multi/app", reg.host());
    let index_digest = push_index(&client(), &repo, &[&amd, &arm], "v1").await?;
    let image = format!("{repo}:v1");

    // This binary's platform (amd64 here).
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let p = puller(&store);
    assert_eq!(p.platform(), &Platform::current());
    let rec = p.pull(&image, &Keyring::default()).await?;
    let (want, want_digest) = if Platform::current().architecture == "arm64" {
        ("arm64", &arm.manifest_digest)
    } else {
        ("amd64", &amd.manifest_digest)
    };
    assert_eq!(rec.repo_digest, index_digest);
    assert_eq!(&rec.manifest_digest, want_digest);
    assert!(store.has_blob(&index_digest));
    let layer = &store.layer_dirs(&image)?[0];
    assert_eq!(std::fs::read_to_string(layer.join("etc/arch"))?, want);

    // A board: linux/arm64/v8.
    let dir2 = tempfile::tempdir()?;
    let store2 = ImageStore::open(dir2.path())?;
    let rec2 = puller(&store2)
        .with_platform(Platform::parse("linux/arm64/v8").unwrap())
        .pull(&image, &Keyring::default())
        .await?;
    assert_eq!(rec2.manifest_digest, arm.manifest_digest);
    assert_eq!(rec2.platform, "linux/arm64/v8");
    let layer = &store2.layer_dirs(&image)?[0];
    assert_eq!(std::fs::read_to_string(layer.join("etc/arch"))?, "arm64");

    // No manifest for the platform: a clear error, nothing recorded.
    let dir3 = tempfile::tempdir()?;
    let store3 = ImageStore::open(dir3.path())?;
    let err3 = puller(&store3)
        .with_platform(Platform::parse("linux/s390x").unwrap())
        .pull(&image, &Keyring::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err3, PullError::NoMatchingPlatform { .. }),
        "{err3}"
    );
    assert!(
        err3.to_string()
            .contains("no match for platform linux/s390x"),
        "{err3}"
    );
    assert!(store3.list()?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_blob_is_refused() -> Result<()> {
    let reg = Registry::start()?;
    let img = busybox_image("amd64");
    let repo = format!("{}/tamper/me", reg.host());
    push_image(&client(), &repo, &img, ":1").await?;
    // Corrupt the layer in the registry's storage: same length, different bytes.
    let path = reg.blob_data_path(&img.layers[0].digest);
    let mut data = std::fs::read(&path)?;
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&path, &data)?;

    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let err = puller(&store)
        .pull(&format!("{repo}:1"), &Keyring::default())
        .await
        .unwrap_err();
    eprintln!("{}: {}", err.reason(), err);
    assert!(matches!(err, PullError::Verification { .. }), "{err:?}");
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(err.to_string().contains(&img.layers[0].digest), "{err}");
    assert!(store.list()?.is_empty());
    assert!(!store.has_layer(&img.layers[0].digest));
    assert!(!store.has_blob(&img.layers[0].digest));
    assert_eq!(std::fs::read_dir(dir.path().join("tmp"))?.count(), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_manifest_is_refused_when_pulled_by_digest() -> Result<()> {
    let reg = Registry::start()?;
    let img = busybox_image("amd64");
    let repo = format!("{}/tamper/manifest", reg.host());
    push_image(&client(), &repo, &img, ":1").await?;
    let path = reg.blob_data_path(&img.manifest_digest);
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    m["annotations"] = serde_json::json!({"evil": "yes"});
    std::fs::write(&path, serde_json::to_vec(&m)?)?;

    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let err = puller(&store)
        .pull(
            &format!("{repo}@{}", img.manifest_digest),
            &Keyring::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(store.list()?.is_empty(), "nothing recorded after {err}");
    assert!(!store.has_blob(&img.manifest_digest));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_images_and_unreachable_registries_give_err_image_pull() -> Result<()> {
    let reg = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let image = format!("{}/no/such:1.0", reg.host());
    let err = puller(&store)
        .pull(&image, &Keyring::default())
        .await
        .unwrap_err();
    eprintln!("{}: {}", err.reason(), err);
    assert!(matches!(err, PullError::NotFound { .. }), "{err:?}");
    assert_eq!(err.reason(), "ErrImagePull");
    assert_eq!(
        err.to_string(),
        format!("failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found")
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let err = puller(&store)
        .pull(&format!("127.0.0.1:{closed}/x:1"), &Keyring::default())
        .await
        .unwrap_err();
    eprintln!("{}: {}", err.reason(), err);
    assert!(matches!(err, PullError::Registry { .. }), "{err:?}");
    assert_eq!(err.reason(), "ErrImagePull");

    let err = puller(&store)
        .pull("UPPER/Case", &Keyring::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidImageName");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_archives_import_and_share_layers() -> Result<()> {
    let reg = Registry::start()?;
    let img = busybox_image("amd64");
    let repo = format!("{}/arch/busybox", reg.host());
    push_image(&client(), &repo, &img, ":2").await?;
    let work = tempfile::tempdir()?;
    let oci = work.path().join("bb-oci.tar");
    let docker = work.path().join("bb-docker.tar");
    for (dst, name) in [
        (format!("oci-archive:{}:{repo}:2", oci.display()), "oci"),
        (
            format!("docker-archive:{}:{repo}:2", docker.display()),
            "docker",
        ),
    ] {
        let st = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--insecure-policy",
            ])
            .arg(format!("docker://{repo}:2"))
            .arg(&dst)
            .status()?;
        assert!(st.success(), "skopeo copy to {name} failed");
    }

    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let recs = store.import(&oci)?;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].reference, format!("{repo}:2"));
    assert_eq!(recs[0].config_digest, img.config_digest);
    let dirs = store.layer_dirs(&format!("{repo}:2"))?;
    assert_eq!(std::fs::read(dirs[0].join("bin/busybox"))?, busybox());

    // docker save format: uncompressed layers, manifest synthesised; same config (image ID).
    let dir2 = tempfile::tempdir()?;
    let store2 = ImageStore::open(dir2.path())?;
    let recs2 = store2.import(&docker)?;
    assert_eq!(recs2.len(), 1);
    assert_eq!(recs2[0].config_digest, img.config_digest);
    assert_eq!(recs2[0].reference, format!("{repo}:2"));
    let d2 = store2.layer_dirs(&recs2[0].reference)?;
    assert_eq!(std::fs::read(d2[0].join("bin/busybox"))?, busybox());
    assert_eq!(std::fs::read_to_string(d2[0].join("etc/arch"))?, "amd64");

    // Pulling the same image into the first store reuses the imported layer.
    let pulled = puller(&store)
        .pull(&format!("{repo}:2"), &Keyring::default())
        .await?;
    assert_eq!(pulled.layer_digests, recs[0].layer_digests);
    assert_eq!(
        std::fs::read_dir(dir.path().join("layers/sha256"))?.count(),
        1
    );
    Ok(())
}

fn docker_config_json(registry: &str, user: &str, password: &str) -> Vec<u8> {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    serde_json::to_vec(&serde_json::json!({"auths": {registry: {"auth": auth}}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_secrets_authenticate_against_an_htpasswd_registry() -> Result<()> {
    let reg = Registry::start_with_auth("puller", "s3cret")?;
    let img = busybox_image("amd64");
    let repo = format!("{}/private/app", reg.host());
    let pusher = client_with_auth(&reg.host(), "puller", "s3cret").await;
    push_image(&pusher, &repo, &img, ":1").await?;
    let image = format!("{repo}:1");
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;

    // No secret: refused.
    let err = puller(&store)
        .pull(&image, &Keyring::default())
        .await
        .unwrap_err();
    eprintln!("{}: {}", err.reason(), err);
    assert!(matches!(err, PullError::Unauthorized { .. }), "{err:?}");
    assert_eq!(err.reason(), "ErrImagePull");

    // Wrong password: refused.
    let wrong =
        Keyring::from_docker_config_json(&docker_config_json(&reg.host(), "puller", "nope"))?;
    let err = puller(&store).pull(&image, &wrong).await.unwrap_err();
    eprintln!("{}: {}", err.reason(), err);
    assert!(matches!(err, PullError::Unauthorized { .. }), "{err:?}");
    assert!(store.list()?.is_empty());

    // Two secrets, the first wrong: the kubelet tries each; the right one wins.
    let mut both = wrong.clone();
    both.add_docker_config_json(&docker_config_json(&reg.host(), "puller", "s3cret"))?;
    let rec = puller(&store).pull(&image, &both).await?;
    assert_eq!(rec.manifest_digest, img.manifest_digest);
    assert!(store.layer_dirs(&image)?[0].join("bin/busybox").is_file());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_manager_follows_policy_backoff_and_reports_upstream_events() -> Result<()> {
    use bramble_images::manager::EventType;
    use bramble_images::{ImageManager, PullPolicy};
    let reg = Registry::start()?;
    let img = busybox_image("amd64");
    let repo = format!("{}/mgr/app", reg.host());
    push_image(&client(), &repo, &img, ":1").await?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let m = ImageManager::new(store.clone(), puller(&store), None);
    let image = format!("{repo}:1");
    let kr = Keyring::default();

    // Never + missing.
    let f = m
        .ensure_image_exists("uid1", &image, Some(PullPolicy::Never), &kr)
        .await
        .unwrap_err();
    assert_eq!(f.reason, "ErrImageNeverPull");
    assert_eq!(
        f.message,
        format!("Container image \"{image}\" is not present with pull policy of Never")
    );
    assert_eq!(f.events[0].reason, "ErrImageNeverPull");
    assert_eq!(f.events[0].event_type, EventType::Warning);

    // Default policy for a non-latest tag is IfNotPresent: pull, then reuse.
    let ok = m.ensure_image_exists("uid1", &image, None, &kr).await?;
    assert_eq!(ok.record.manifest_digest, img.manifest_digest);
    let reasons: Vec<_> = ok.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["Pulling", "Pulled"]);
    assert_eq!(ok.events[0].message, format!("Pulling image \"{image}\""));
    let pulled = &ok.events[1].message;
    assert!(
        pulled.starts_with(&format!("Successfully pulled image \"{image}\" in "))
            && pulled.ends_with(&format!("Image size: {} bytes.", img.total_size())),
        "{pulled}"
    );
    let again = m.ensure_image_exists("uid2", &image, None, &kr).await?;
    assert_eq!(again.events.len(), 1);
    assert_eq!(
        again.events[0].message,
        format!("Container image \"{image}\" already present on machine")
    );

    // A missing image: ErrImagePull, then ImagePullBackOff while the 10 s back-off runs;
    // another pod is not affected by this pod's back-off.
    let missing = format!("{}/mgr/missing:1", reg.host());
    let f = m
        .ensure_image_exists("uid3", &missing, None, &kr)
        .await
        .unwrap_err();
    assert_eq!(f.reason, "ErrImagePull");
    assert!(f.message.ends_with(": not found"), "{}", f.message);
    assert_eq!(f.events.last().unwrap().reason, "Failed");
    let f = m
        .ensure_image_exists("uid3", &missing, None, &kr)
        .await
        .unwrap_err();
    assert_eq!(f.reason, "ImagePullBackOff");
    assert_eq!(f.message, format!("Back-off pulling image \"{missing}\""));
    assert_eq!(f.events[0].reason, "BackOff");
    let f = m
        .ensure_image_exists("uid4", &missing, None, &kr)
        .await
        .unwrap_err();
    assert_eq!(f.reason, "ErrImagePull");

    // Invalid names.
    let f = m
        .ensure_image_exists("uid5", "Bad/Name", None, &kr)
        .await
        .unwrap_err();
    assert_eq!(f.reason, "InvalidImageName");
    assert_eq!(f.events[0].reason, "InspectFailed");
    assert!(f
        .message
        .starts_with("Failed to apply default image tag \"Bad/Name\": "));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pulls_of_one_image_share_the_work() -> Result<()> {
    let reg = Registry::start()?;
    let img = busybox_image("amd64");
    let repo = format!("{}/conc/app", reg.host());
    push_image(&client(), &repo, &img, ":1").await?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let image = format!("{repo}:1");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let p = puller(&store);
            let image = image.clone();
            tokio::spawn(async move { p.pull(&image, &Keyring::default()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await??.manifest_digest, img.manifest_digest);
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("layers/sha256"))?.count(),
        1
    );
    assert_eq!(std::fs::read_dir(dir.path().join("tmp"))?.count(), 0);
    assert!(store.layer_dirs(&image)?[0].join("bin/busybox").is_file());
    Ok(())
}
