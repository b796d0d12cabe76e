//! The runtime's view of pods: its containers grouped by pod uid (sandboxes by their
//! config, app and init containers by the kubelet's labels), newest first.

use std::collections::HashMap;

use bramble_runtime::{ContainerKind, ContainerState, ContainerStatusKind};

use crate::container_config::{
    LABEL_ATTEMPT, LABEL_CONTAINER_NAME, LABEL_CONTAINER_TYPE, LABEL_POD_UID,
};

/// Everything the runtime holds for one pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimePod {
    /// Pause containers, newest first.
    pub sandboxes: Vec<ContainerState>,
    /// App and init containers, newest first.
    pub containers: Vec<ContainerState>,
}

/// A container's kubelet labels.
pub fn label<'a>(s: &'a ContainerState, key: &str) -> Option<&'a str> {
    match &s.meta.kind {
        ContainerKind::App { config, .. } => config.labels.get(key).map(String::as_str),
        ContainerKind::Sandbox { .. } => None,
    }
}

/// The spec name of an app/init container.
pub fn container_name(s: &ContainerState) -> Option<&str> {
    label(s, LABEL_CONTAINER_NAME)
}

/// The attempt number a container was created with.
pub fn attempt(s: &ContainerState) -> u32 {
    label(s, LABEL_ATTEMPT)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}

/// Whether the container is an init container.
pub fn is_init(s: &ContainerState) -> bool {
    label(s, LABEL_CONTAINER_TYPE) == Some("init")
}

/// Whether the container's process is (still) there.
pub fn is_running(s: &ContainerState) -> bool {
    matches!(
        s.status,
        ContainerStatusKind::Running | ContainerStatusKind::Created
    )
}

fn pod_uid_of(s: &ContainerState) -> Option<&str> {
    match &s.meta.kind {
        ContainerKind::Sandbox { config } => Some(config.pod_uid.as_str()),
        ContainerKind::App { config, .. } => config.labels.get(LABEL_POD_UID).map(String::as_str),
    }
}

/// Groups a runtime listing by pod uid.
pub fn group(states: Vec<ContainerState>) -> HashMap<String, RuntimePod> {
    let mut out: HashMap<String, RuntimePod> = HashMap::new();
    for s in states {
        let Some(uid) = pod_uid_of(&s).map(str::to_string) else {
            continue;
        };
        let pod = out.entry(uid).or_default();
        match s.meta.kind {
            ContainerKind::Sandbox { .. } => pod.sandboxes.push(s),
            ContainerKind::App { .. } => pod.containers.push(s),
        }
    }
    for p in out.values_mut() {
        p.sandboxes
            .sort_by(|a, b| b.meta.created_at.cmp(&a.meta.created_at));
        p.containers.sort_by(|a, b| {
            attempt(b)
                .cmp(&attempt(a))
                .then(b.meta.created_at.cmp(&a.meta.created_at))
        });
    }
    out
}

impl RuntimePod {
    /// The newest sandbox.
    pub fn sandbox(&self) -> Option<&ContainerState> {
        self.sandboxes.first()
    }

    /// Containers named `name`, newest first.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ContainerState> + 'a {
        self.containers
            .iter()
            .filter(move |c| container_name(c) == Some(name))
    }
}
