//! The file source (upstream `config/file.go`): reads every `*.yaml`, `*.yml` and `*.json`
//! file of the static pod directory (dotfiles ignored) each period, and reports pods that
//! appeared, changed (the old pod deleted, the new one added: a new hash is a new uid) or
//! went away. A file that cannot be read or decoded is skipped with a warning, as upstream:
//! the pod it held before stops.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::core::v1::Pod;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::manifest;
use super::mirror::MirrorPods;
use crate::pod_spec::pod_ids;
use crate::pod_workers::PodEvent;
use crate::streaming::PodTable;

/// Extensions of manifest files.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// What one file held the last time it was read.
struct FileState {
    digest: [u8; 32],
    /// `None`: the file was refused.
    pod: Option<Arc<Pod>>,
}

/// The static pods of one directory.
pub struct FileSource {
    dir: PathBuf,
    node: String,
    files: HashMap<PathBuf, FileState>,
    /// The pods reported, by uid.
    current: HashMap<String, Arc<Pod>>,
    missing_warned: bool,
}

fn is_manifest(path: &Path) -> bool {
    let dot = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !dot && path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
        && std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

impl FileSource {
    /// A source over `dir` for `node`.
    pub fn new(dir: PathBuf, node: String) -> Self {
        FileSource {
            dir,
            node,
            files: HashMap::new(),
            current: HashMap::new(),
            missing_warned: false,
        }
    }

    /// The static pods as of the last [`scan`](Self::scan).
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        self.current.values().cloned().collect()
    }

    /// Reads one file, reusing what it held if its bytes (or its decoded pod) did not change.
    fn read(&self, path: &Path, seen: &str) -> Option<FileState> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "reading static pod manifest");
                return None;
            }
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let old = self.files.get(path);
        if let Some(old) = old.filter(|o| o.digest == digest) {
            return Some(FileState {
                digest,
                pod: old.pod.clone(),
            });
        }
        let pod = match manifest::load(path, &bytes, &self.node, seen) {
            Ok(p) => {
                let same = old
                    .and_then(|o| o.pod.as_ref())
                    .filter(|o| o.metadata.uid == p.metadata.uid);
                Some(same.cloned().unwrap_or_else(|| Arc::new(p)))
            }
            Err(e) => {
                warn!(error = %e, "skipping static pod manifest");
                None
            }
        };
        Some(FileState { digest, pod })
    }

    /// Reads the directory and returns what changed since the last scan: deletions first,
    /// then additions. A directory that cannot be listed changes nothing.
    pub fn scan(&mut self) -> Vec<PodEvent> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                if !self.missing_warned {
                    warn!(path = %self.dir.display(), error = %e, "reading the static pod directory");
                    self.missing_warned = true;
                }
                return Vec::new();
            }
        };
        self.missing_warned = false;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_manifest(p))
            .collect();
        paths.sort();
        let seen = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let mut files = HashMap::new();
        let mut current: HashMap<String, Arc<Pod>> = HashMap::new();
        let mut names = HashSet::new();
        for path in paths {
            let Some(state) = self.read(&path, &seen) else {
                continue;
            };
            if let Some(pod) = &state.pod {
                let (ns, name, uid) = pod_ids(pod);
                if !names.insert((ns.clone(), name.clone())) {
                    let unchanged = self
                        .files
                        .get(&path)
                        .is_some_and(|o| o.digest == state.digest);
                    if !unchanged {
                        warn!(path = %path.display(), %ns, %name, "static pod with the same name in another file, skipped");
                    }
                } else {
                    current.insert(uid, pod.clone());
                }
            }
            files.insert(path, state);
        }
        let mut events = Vec::new();
        for (uid, old) in &self.current {
            if !current.contains_key(uid) {
                info!(pod = %crate::pod_spec::format_pod(old), "static pod removed");
                events.push(PodEvent::Deleted(old.clone()));
            }
        }
        for (uid, new) in &current {
            if !self.current.contains_key(uid) {
                info!(pod = %crate::pod_spec::format_pod(new), "static pod added");
                events.push(PodEvent::Upsert(new.clone()));
            }
        }
        self.files = files;
        self.current = current;
        events
    }
}

/// Scans `src` every `period` and sends the changes to `pods` (and the pod table and the
/// mirror manager) until `stop`; `first` fires once the first scan has been sent.
pub async fn run(
    mut src: FileSource,
    period: Duration,
    pods: mpsc::Sender<PodEvent>,
    table: Arc<PodTable>,
    mirrors: Arc<MirrorPods>,
    first: oneshot::Sender<()>,
    mut stop: watch::Receiver<bool>,
) {
    let mut first = Some(first);
    loop {
        let events = src.scan();
        if !events.is_empty() || first.is_some() {
            mirrors.set_static(src.pods());
        }
        for ev in events {
            match &ev {
                PodEvent::Upsert(p) => table.upsert(p),
                PodEvent::Deleted(p) => table.remove(p),
                PodEvent::Synced(_) => {}
            }
            if pods.send(ev).await.is_err() {
                return;
            }
        }
        if let Some(f) = first.take() {
            debug!(pods = src.current.len(), "static pods read");
            let _ = f.send(());
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, image: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: {image}\n")
    }

    fn summary(events: &[PodEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                PodEvent::Upsert(p) => format!("+{}", p.metadata.name.as_deref().unwrap()),
                PodEvent::Deleted(p) => format!("-{}", p.metadata.name.as_deref().unwrap()),
                PodEvent::Synced(_) => "synced".into(),
            })
            .collect()
    }

    #[test]
    fn changes_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut src = FileSource::new(d.to_path_buf(), "n1".into());
        assert!(src.scan().is_empty());

        std::fs::write(d.join("a.yaml"), manifest("a", "img")).unwrap();
        std::fs::write(d.join("b.json"), r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#).unwrap();
        // Ignored: dotfiles, other extensions, directories.
        std::fs::write(d.join(".hidden.yaml"), manifest("h", "img")).unwrap();
        std::fs::write(d.join("notes.txt"), manifest("t", "img")).unwrap();
        std::fs::create_dir(d.join("dir.yaml")).unwrap();
        let mut ev = summary(&src.scan());
        ev.sort();
        assert_eq!(ev, ["+a-n1", "+b-n1"]);
        let uid_a = src
            .pods()
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some("a-n1"))
            .unwrap()
            .metadata
            .uid
            .clone();
        assert!(src.scan().is_empty(), "nothing changed");

        // Same pod, different formatting: no change, same object.
        std::fs::write(
            d.join("a.yaml"),
            format!("# a comment\n{}", manifest("a", "img")),
        )
        .unwrap();
        assert!(src.scan().is_empty());

        // A real change replaces the pod: old deleted, new (new uid) added.
        std::fs::write(d.join("a.yaml"), manifest("a", "img2")).unwrap();
        let ev = src.scan();
        assert_eq!(summary(&ev), ["-a-n1", "+a-n1"]);
        let PodEvent::Upsert(new) = &ev[1] else {
            unreachable!()
        };
        assert_ne!(new.metadata.uid, uid_a);

        // A broken file stops its pod, and does not stop the scan.
        std::fs::write(d.join("a.yaml"), "kind: Pod\napiVersion: v1\nspec: [").unwrap();
        assert_eq!(summary(&src.scan()), ["-a-n1"]);
        assert!(src.scan().is_empty());
        std::fs::write(d.join("a.yaml"), manifest("a", "img2")).unwrap();
        assert_eq!(summary(&src.scan()), ["+a-n1"]);

        // Two files with the same pod name: the first (by path) wins.
        std::fs::write(d.join("c.yaml"), manifest("a", "other")).unwrap();
        assert!(src.scan().is_empty());

        // Removing a file stops its pod.
        std::fs::remove_file(d.join("b.json")).unwrap();
        assert_eq!(summary(&src.scan()), ["-b-n1"]);
        assert_eq!(src.pods().len(), 1);
    }

    #[test]
    fn a_missing_directory_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("m");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("a.yml"), manifest("a", "img")).unwrap();
        let mut src = FileSource::new(d.clone(), "n1".into());
        assert_eq!(summary(&src.scan()), ["+a-n1"]);
        std::fs::rename(&d, dir.path().join("elsewhere")).unwrap();
        assert!(src.scan().is_empty());
        assert_eq!(src.pods().len(), 1);
    }
}
