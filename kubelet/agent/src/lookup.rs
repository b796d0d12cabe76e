//! Finding a pod's containers for the streaming server (`kubectl logs/exec/attach`): from
//! (namespace, pod, container name) to the runtime container id and its log files.

use std::path::PathBuf;
use std::sync::Arc;

use bramble_runtime::{ContainerKind, ContainerRuntime};
use futures::future::BoxFuture;

use crate::container_config::{LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE};
use crate::error::KubeletError;
use crate::runtime_pod::{attempt, is_running};

/// Where one container of a pod is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLocation {
    /// Runtime id of the newest container with that name.
    pub container_id: String,
    /// Its CRI-format log file.
    pub log_path: PathBuf,
    /// The log of the container before it (`kubectl logs --previous`), if kept.
    pub previous_log_path: Option<PathBuf>,
    /// Whether the newest container runs.
    pub running: bool,
    /// Runtime id of the previous container, if kept.
    pub previous_container_id: Option<String>,
}

/// Looks containers up by their pod and name.
pub trait ContainerLookup: Send + Sync {
    /// The container `container` of pod `namespace/pod`, `None` when it has none yet.
    fn find<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
    ) -> BoxFuture<'a, Result<Option<ContainerLocation>, KubeletError>>;
}

/// [`ContainerLookup`] over the runtime's listing and the kubelet's container labels.
pub struct RuntimeLookup<R> {
    runtime: Arc<R>,
}

impl<R> RuntimeLookup<R> {
    /// A lookup over `runtime`.
    pub fn new(runtime: Arc<R>) -> Self {
        RuntimeLookup { runtime }
    }
}

impl<R: ContainerRuntime + 'static> ContainerLookup for RuntimeLookup<R> {
    fn find<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
    ) -> BoxFuture<'a, Result<Option<ContainerLocation>, KubeletError>> {
        Box::pin(async move {
            let mut matching: Vec<_> = self
                .runtime
                .list_containers()
                .await?
                .into_iter()
                .filter(|s| match &s.meta.kind {
                    ContainerKind::App { config, .. } => {
                        config.labels.get(LABEL_POD_NAMESPACE).map(String::as_str)
                            == Some(namespace)
                            && config.labels.get(LABEL_POD_NAME).map(String::as_str) == Some(pod)
                            && config.labels.get(LABEL_CONTAINER_NAME).map(String::as_str)
                                == Some(container)
                    }
                    ContainerKind::Sandbox { .. } => false,
                })
                .collect();
            matching.sort_by(|a, b| {
                attempt(b)
                    .cmp(&attempt(a))
                    .then(b.meta.created_at.cmp(&a.meta.created_at))
            });
            let mut it = matching.into_iter();
            let Some(newest) = it.next() else {
                return Ok(None);
            };
            let previous = it.next();
            Ok(Some(ContainerLocation {
                running: is_running(&newest),
                container_id: newest.meta.id.clone(),
                log_path: newest.meta.log_path.clone(),
                previous_log_path: previous.as_ref().map(|p| p.meta.log_path.clone()),
                previous_container_id: previous.map(|p| p.meta.id),
            }))
        })
    }
}
