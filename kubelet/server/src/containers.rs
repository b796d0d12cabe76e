//! The seam between the streaming server and the kubelet's pod bookkeeping: which runtime
//! container (and log file, and network namespace) a `(namespace, pod, container)` names.

use std::path::PathBuf;

/// A container the server streams from or executes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerTarget {
    /// The container's name in the pod spec (the default one when none was asked for).
    pub name: String,
    /// The runtime's container id (for [`bramble_runtime::ContainerRuntime`] calls).
    pub container_id: String,
    /// Its CRI-format log file.
    pub log_path: PathBuf,
}

/// A pod's sandbox, for port-forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSandbox {
    /// The pod's uid.
    pub pod_uid: String,
    /// The pod network namespace (`/proc/<pause pid>/ns/net`).
    pub netns_path: PathBuf,
}

/// Why a lookup failed; each variant's message is the one upstream's kubelet gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No such pod on this node.
    #[error("pod {pod:?} does not exist")]
    PodNotFound {
        /// Namespace asked for.
        namespace: String,
        /// Pod name asked for.
        pod: String,
    },
    /// The pod has no container of that name (or none running/created yet).
    #[error("container {container:?} not found in pod {pod:?}")]
    ContainerNotFound {
        /// Container name asked for.
        container: String,
        /// Pod name.
        pod: String,
    },
    /// No container was named and the pod has several.
    #[error("a container name must be specified for pod {pod}, choose one of: [{}]", choices.join(" "))]
    ContainerNameRequired {
        /// Pod name.
        pod: String,
        /// Its containers.
        choices: Vec<String>,
    },
    /// `previous=true` and the container has not terminated before.
    #[error("previous terminated container {container:?} in pod {pod:?} not found")]
    PreviousNotFound {
        /// Container name.
        container: String,
        /// Pod name.
        pod: String,
    },
    /// The pod's sandbox is not running (port-forward).
    #[error("pod {pod:?} sandbox is not running")]
    SandboxNotReady {
        /// Pod name.
        pod: String,
    },
}

impl LookupError {
    /// The HTTP status upstream's kubelet answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            LookupError::PodNotFound { .. }
            | LookupError::ContainerNotFound { .. }
            | LookupError::PreviousNotFound { .. } => 404,
            LookupError::ContainerNameRequired { .. } => 400,
            LookupError::SandboxNotReady { .. } => 500,
        }
    }
}

/// A boxed future, as trait objects need.
pub type LookupFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, LookupError>> + Send + 'a>>;

/// What the kubelet knows about the pods it runs, as the streaming server needs it.
///
/// Implemented by the kubelet agent over its pod table and the runtime's container labels.
pub trait PodContainers: Send + Sync {
    /// The current instance of a container; `container` is `None` for the pod's default
    /// container (the only one, or the `kubectl.kubernetes.io/default-container` one).
    fn container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget>;

    /// The previous, terminated instance of a container (`kubectl logs --previous`):
    /// [`LookupError::PreviousNotFound`] when it has not restarted.
    fn previous_container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget>;

    /// The pod's sandbox (its network namespace for port-forward).
    fn sandbox<'a>(&'a self, namespace: &'a str, pod: &'a str) -> LookupFuture<'a, PodSandbox>;
}
