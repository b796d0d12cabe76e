//! Unit tests of the local ephemeral storage checks: a scripted [`DiskUsage`] for exact
//! sizes, and the real [`Du`] walk over temporary directories.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::*;

/// Sizes per path; anything else is empty.
#[derive(Default)]
struct Sizes(HashMap<PathBuf, u64>);

impl DiskUsage for Sizes {
    fn bytes(&self, path: &Path) -> u64 {
        self.0.get(path).copied().unwrap_or(0)
    }
}

const MI: u64 = 1 << 20;

fn pod(spec: Value) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": spec}))
        .unwrap(),
    )
}

fn container(name: &str, limit: Option<&str>) -> Value {
    match limit {
        Some(l) => json!({"name": name, "image": "i",
            "resources": {"limits": {"ephemeral-storage": l}}}),
        None => json!({"name": name, "image": "i"}),
    }
}

fn layout() -> StorageLayout {
    StorageLayout::new(Path::new("/data"), Path::new("/rt"))
}

/// `pod` with runtime containers `names` (id `id-<name>`).
fn storage(pod: Arc<Pod>, names: &[&str]) -> PodStorage {
    let newest: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.to_string(), format!("id-{n}")))
        .collect();
    layout().pod_storage(pod, &newest, false)
}

fn layer(name: &str) -> PathBuf {
    PathBuf::from(format!("/rt/containers/id-{name}/upper"))
}

fn logs(name: &str) -> PathBuf {
    PathBuf::from(format!("/data/pods/ns_p_u1/{name}"))
}

fn volume(plugin: &str, name: &str) -> PathBuf {
    PathBuf::from(format!("/data/pods/u1/volumes/{plugin}/{name}"))
}

#[test]
fn paths_of_the_kubelet_layout() {
    let s = storage(pod(json!({"containers": [container("c", None)]})), &["c"]);
    assert_eq!(
        s.containers,
        vec![ContainerStorage {
            name: "c".into(),
            writable_layer: layer("c"),
            logs: logs("c"),
        }]
    );
    assert_eq!(s.volumes_dir, PathBuf::from("/data/pods/u1/volumes"));
    assert_eq!(s.log_dir, PathBuf::from("/data/pods/ns_p_u1"));
}

#[test]
fn a_container_over_its_limit_counts_its_writable_layer_and_logs() {
    // big's own limit keeps the pod's limit (1Gi + 2Mi) out of the way.
    let p = pod(
        json!({"containers": [container("big", Some("1Gi")), container("small", Some("2Mi"))]}),
    );
    let mut s = storage(p, &["big", "small"]);
    let mut sizes = Sizes::default();
    sizes.0.insert(layer("big"), 100 * MI);
    sizes.0.insert(layer("small"), MI);
    sizes.0.insert(logs("small"), MI);
    // 2Mi exactly is within the limit (upstream compares with "less than").
    assert_eq!(exceeded(&s, &sizes), None);
    sizes.0.insert(logs("small"), MI + 1);
    let want = "Container small exceeded its local ephemeral storage limit \"2Mi\". ";
    assert_eq!(exceeded(&s, &sizes).as_deref(), Some(want));
    // On a dedicated image file system the writable layer is left out.
    s.dedicated_layer_fs = true;
    assert_eq!(exceeded(&s, &sizes), None);
    sizes.0.insert(logs("small"), 3 * MI);
    assert_eq!(exceeded(&s, &sizes).as_deref(), Some(want));
}

#[test]
fn the_limit_is_printed_in_canonical_form() {
    let p = pod(json!({"containers": [container("c", Some("2048Ki"))]}));
    let s = storage(p, &["c"]);
    let mut sizes = Sizes::default();
    sizes.0.insert(layer("c"), 3 * MI);
    assert_eq!(
        exceeded(&s, &sizes).as_deref(),
        Some("Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ")
    );
}

#[test]
fn the_pod_limit_sums_containers_and_counts_volumes() {
    let p = pod(json!({
        "containers": [container("a", Some("1Mi")), container("b", Some("1Mi"))],
        "volumes": [{"name": "scratch", "emptyDir": {}},
                    {"name": "ram", "emptyDir": {"medium": "Memory"}},
                    {"name": "conf", "configMap": {"name": "cm"}},
                    {"name": "cred", "secret": {"secretName": "s"}}]}));
    let s = storage(p, &["a", "b"]);
    let mut sizes = Sizes::default();
    sizes.0.insert(layer("a"), MI / 2);
    sizes
        .0
        .insert(volume("kubernetes.io~empty-dir", "scratch"), MI);
    sizes
        .0
        .insert(volume("kubernetes.io~empty-dir", "ram"), 50 * MI);
    sizes
        .0
        .insert(volume("kubernetes.io~secret", "cred"), 50 * MI);
    sizes
        .0
        .insert(volume("kubernetes.io~configmap", "conf"), MI / 2);
    // 0.5 + 1 + 0.5 = 2Mi: not over; memory and secret volumes do not count.
    assert_eq!(exceeded(&s, &sizes), None);
    sizes.0.insert(logs("b"), 1);
    assert_eq!(
        exceeded(&s, &sizes).as_deref(),
        Some("Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ")
    );
}

#[test]
fn one_container_limit_is_a_pod_limit_as_upstream_pod_limits() {
    // Upstream's PodLimits has ephemeral-storage as soon as one container sets it, so the
    // whole pod's usage is held to it.
    let p =
        pod(json!({"containers": [container("limited", Some("4Mi")), container("free", None)]}));
    let s = storage(p, &["limited", "free"]);
    let mut sizes = Sizes::default();
    sizes.0.insert(layer("free"), 5 * MI);
    assert_eq!(
        exceeded(&s, &sizes).as_deref(),
        Some("Pod ephemeral local storage usage exceeds the total limit of containers 4Mi. ")
    );
    // Without any limit nothing is checked.
    let p = pod(json!({"containers": [container("free", None)]}));
    assert_eq!(exceeded(&storage(p, &["free"]), &sizes), None);
}

#[test]
fn init_containers_floor_the_pod_limit_and_are_counted() {
    let mut init = container("setup", Some("8Mi"));
    init["restartPolicy"] = json!("Never");
    let p = pod(json!({"containers": [container("c", Some("1Mi"))], "initContainers": [init]}));
    let s = storage(p, &["c", "setup"]);
    let mut sizes = Sizes::default();
    sizes.0.insert(layer("setup"), 7 * MI);
    assert_eq!(exceeded(&s, &sizes), None, "the pod limit is max(1Mi, 8Mi)");
    sizes.0.insert(logs("setup"), 2 * MI);
    assert_eq!(
        exceeded(&s, &sizes).as_deref(),
        Some("Pod ephemeral local storage usage exceeds the total limit of containers 8Mi. ")
    );
}

#[test]
fn checks_run_in_upstream_order() {
    let p = pod(json!({
        "containers": [container("c", Some("1Mi"))],
        "volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "64Ki"}}]}));
    let s = storage(p, &["c"]);
    let mut sizes = Sizes::default();
    sizes.0.insert(layer("c"), 2 * MI);
    // Container and pod over: the pod is named first.
    assert_eq!(
        exceeded(&s, &sizes).as_deref(),
        Some("Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. ")
    );
    // And the emptyDir before either.
    sizes
        .0
        .insert(volume("kubernetes.io~empty-dir", "cache"), 65 << 10);
    assert_eq!(
        exceeded(&s, &sizes).as_deref(),
        Some("Usage of EmptyDir volume \"cache\" exceeds the limit \"64Ki\". ")
    );
}

#[test]
fn du_walks_real_directories() {
    let dir = tempfile::tempdir().unwrap();
    let l = StorageLayout::new(&dir.path().join("data"), &dir.path().join("rt"));
    let p = pod(json!({"containers": [container("c", Some("256Ki"))],
        "volumes": [
            {"name": "small", "emptyDir": {"sizeLimit": "64Ki"}},
            {"name": "free", "emptyDir": {}},
            {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "1Ki"}}]}));
    let s = l.pod_storage(p, &[("c".into(), "cid".into())], false);
    std::fs::create_dir_all(l.runtime.containers_dir()).unwrap();
    assert!(!l.dedicated_layer_fs());
    let write = |path: PathBuf, kib: usize| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![1u8; kib << 10]).unwrap();
    };
    let vols = s.volumes_dir.join("kubernetes.io~empty-dir");
    write(vols.join("ram/big"), 512);
    write(vols.join("small/a"), 16);
    write(s.containers[0].writable_layer.join("etc/file"), 64);
    write(s.containers[0].logs.join("0.log"), 16);
    assert_eq!(exceeded(&s, &Du), None);
    write(vols.join("small/sub/b"), 128);
    assert_eq!(
        exceeded(&s, &Du).as_deref(),
        Some("Usage of EmptyDir volume \"small\" exceeds the limit \"64Ki\". ")
    );
    std::fs::remove_dir_all(vols.join("small/sub")).unwrap();
    write(s.containers[0].writable_layer.join("tmp/fill"), 256);
    assert_eq!(
        exceeded(&s, &Du).as_deref(),
        Some("Pod ephemeral local storage usage exceeds the total limit of containers 256Ki. ")
    );
    assert!(usage(dir.path()) >= (512 + 16 + 64 + 16 + 256) << 10);
    assert_eq!(usage(&s.containers[0].logs.join("0.log")), 16 << 10);
}

#[test]
fn a_container_over_its_limit_within_the_pod_limit() {
    // Two containers: the pod total (3Mi) is under 2Mi + 2Mi, one container is over 2Mi.
    let p = pod(json!({"containers": [container("a", Some("2Mi")), container("b", Some("2Mi"))]}));
    let s = storage(p, &["a", "b"]);
    let mut sizes = Sizes::default();
    sizes.0.insert(layer("a"), 3 * MI);
    assert_eq!(
        exceeded(&s, &sizes).as_deref(),
        Some("Container a exceeded its local ephemeral storage limit \"2Mi\". ")
    );
}

#[test]
fn critical_pods_are_not_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let l = StorageLayout::new(&dir.path().join("data"), &dir.path().join("rt"));
    let over = |name: &str, annotations: Value| {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": name, "annotations": annotations},
            "spec": {"containers": [container("c", Some("4Ki"))]}}))
        .unwrap();
        let id = format!("id-{name}");
        let file = l.runtime.writable_layer(&id).join("fill");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, vec![1u8; 64 << 10]).unwrap();
        (Arc::new(p), vec![("c".to_string(), id)])
    };
    let found = l.over_limits(vec![
        over("static", json!({"kubernetes.io/config.source": "file"})),
        over("mirror", json!({"kubernetes.io/config.mirror": "x"})),
        over("plain", json!({})),
    ]);
    let names: Vec<_> = found
        .iter()
        .map(|(p, m)| (p.metadata.name.clone().unwrap(), m.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![(
            "plain".to_string(),
            "Pod ephemeral local storage usage exceeds the total limit of containers 4Ki. "
        )]
    );
}
