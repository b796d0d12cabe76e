//! The streaming server's view of this kubelet ([`bramble_kubelet_server::PodContainers`]):
//! the pods the pod source saw, and their containers in the runtime; plus starting the
//! server on `--kubelet-port` with a self-signed serving certificate and client
//! certificates checked against the cluster CA.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use bramble_kubelet_server::{
    ClientAuthorizer, ContainerTarget, LookupError, LookupFuture, PodContainers, PodSandbox,
};
use bramble_runtime::{ContainerRuntime, ContainerStatusKind};
use k8s_openapi::api::core::v1::Pod;
use tracing::{info, warn};

use crate::pod_spec::{containers, init_containers, pod_ids};
use crate::runtime_pod::{group, RuntimePod};

/// Annotation naming a pod's default container (kubectl's).
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// The pods bound to this node, by namespace and name.
#[derive(Default)]
pub struct PodTable {
    pods: RwLock<HashMap<(String, String), Arc<Pod>>>,
}

impl PodTable {
    /// Records a pod.
    pub fn upsert(&self, pod: &Arc<Pod>) {
        let (ns, name, _) = pod_ids(pod);
        self.pods
            .write()
            .expect("pod table")
            .insert((ns, name), pod.clone());
    }

    /// Forgets a pod.
    pub fn remove(&self, pod: &Pod) {
        let (ns, name, _) = pod_ids(pod);
        self.pods.write().expect("pod table").remove(&(ns, name));
    }

    /// Every pod.
    pub fn all(&self) -> Vec<Arc<Pod>> {
        self.pods
            .read()
            .expect("pod table")
            .values()
            .cloned()
            .collect()
    }

    /// A pod by namespace and name.
    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods
            .read()
            .expect("pod table")
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }
}

/// [`PodContainers`] over the pod table and the runtime.
pub struct StreamingPods<R> {
    table: Arc<PodTable>,
    runtime: Arc<R>,
}

impl<R> StreamingPods<R> {
    /// Lookups over `table` and `runtime`.
    pub fn new(table: Arc<PodTable>, runtime: Arc<R>) -> Self {
        StreamingPods { table, runtime }
    }
}

fn not_found(ns: &str, pod: &str) -> LookupError {
    LookupError::PodNotFound {
        namespace: ns.to_string(),
        pod: pod.to_string(),
    }
}

/// The container name a request means (upstream's default-container rules).
fn resolve_name(pod: &Pod, asked: Option<&str>) -> Result<String, LookupError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let all: Vec<String> = init_containers(pod)
        .iter()
        .chain(containers(pod))
        .map(|c| c.name.clone())
        .collect();
    let chosen = match asked {
        Some(c) => c.to_string(),
        None => {
            let annotated = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CONTAINER_ANNOTATION).cloned());
            match (annotated, containers(pod)) {
                (Some(a), _) => a,
                (None, [only]) => only.name.clone(),
                (None, _) => {
                    return Err(LookupError::ContainerNameRequired {
                        pod: name,
                        choices: containers(pod).iter().map(|c| c.name.clone()).collect(),
                    })
                }
            }
        }
    };
    if !all.contains(&chosen) {
        return Err(LookupError::ContainerNotFound {
            container: chosen,
            pod: name,
        });
    }
    Ok(chosen)
}

impl<R: ContainerRuntime + 'static> StreamingPods<R> {
    async fn runtime_pod(
        &self,
        ns: &str,
        pod: &str,
    ) -> Result<(Arc<Pod>, RuntimePod), LookupError> {
        let p = self.table.get(ns, pod).ok_or_else(|| not_found(ns, pod))?;
        let (_, _, uid) = pod_ids(&p);
        let all = self.runtime.list_containers().await.map_err(|e| {
            warn!(error = %e, "listing containers for streaming");
            not_found(ns, pod)
        })?;
        Ok((p, group(all).remove(&uid).unwrap_or_default()))
    }

    async fn nth(
        &self,
        ns: &str,
        pod: &str,
        container: Option<&str>,
        n: usize,
    ) -> Result<ContainerTarget, LookupError> {
        let (p, rp) = self.runtime_pod(ns, pod).await?;
        let name = resolve_name(&p, container)?;
        let found = rp
            .named(&name)
            .nth(n)
            .map(|c| (c.meta.id.clone(), c.meta.log_path.clone()));
        match found {
            Some((container_id, log_path)) => Ok(ContainerTarget {
                name,
                container_id,
                log_path,
            }),
            None if n == 0 => Err(LookupError::ContainerNotFound {
                container: name,
                pod: pod.to_string(),
            }),
            None => Err(LookupError::PreviousNotFound {
                container: name,
                pod: pod.to_string(),
            }),
        }
    }
}

impl<R: ContainerRuntime + 'static> PodContainers for StreamingPods<R> {
    fn container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget> {
        Box::pin(self.nth(namespace, pod, container, 0))
    }

    fn previous_container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget> {
        Box::pin(self.nth(namespace, pod, container, 1))
    }

    fn sandbox<'a>(&'a self, namespace: &'a str, pod: &'a str) -> LookupFuture<'a, PodSandbox> {
        Box::pin(async move {
            let (p, rp) = self.runtime_pod(namespace, pod).await?;
            let (_, _, uid) = pod_ids(&p);
            match rp
                .sandbox()
                .filter(|s| s.status == ContainerStatusKind::Running)
            {
                Some(sb) => match sb.pid {
                    Some(pid) => Ok(PodSandbox {
                        pod_uid: uid,
                        netns_path: format!("/proc/{pid}/ns/net").into(),
                    }),
                    None => Err(LookupError::SandboxNotReady {
                        pod: pod.to_string(),
                    }),
                },
                None => Err(LookupError::SandboxNotReady {
                    pod: pod.to_string(),
                }),
            }
        })
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves the streaming API on `0.0.0.0:port` until `shutdown`; logs and returns when it
/// cannot start (the node works without it). It starts with a self-signed certificate and
/// presents one signed by the cluster CA (a `kubernetes.io/kubelet-serving` CSR sent with
/// `client`) as soon as it is issued, renewing it before it expires; with `cert_dir` the
/// signed certificate is stored there and reused after a restart while it is valid.
#[allow(clippy::too_many_arguments)]
pub async fn serve<R: ContainerRuntime + 'static>(
    client: kube::Client,
    node_name: String,
    node_ip: IpAddr,
    port: u16,
    client_ca_pem: String,
    pods: Arc<dyn PodContainers>,
    runtime: Arc<R>,
    stats: Option<Arc<dyn bramble_kubelet_server::stats::StatsProvider>>,
    cert_dir: Option<std::path::PathBuf>,
    shutdown: impl Future<Output = ()>,
) {
    let serving = match bramble_kubelet_server::self_signed_serving_cert(&node_name, &[node_ip])
        .and_then(|(cert, key)| bramble_kubelet_server::ServingCert::new(&cert, &key))
    {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "kubelet streaming server: TLS setup failed, not serving");
            return;
        }
    };
    let installed = serving.clone();
    let authorizer = ClientAuthorizer::with_reviewer(std::sync::Arc::new(
        crate::access_review::SubjectAccessReviewer::new(client.clone(), node_name.clone()),
    ));
    let renewal = tokio::spawn(bramble_auth::certs::keep_serving_certificate(
        client,
        node_name.clone(),
        vec![node_name.clone()],
        vec![node_ip],
        cert_dir.map(bramble_auth::serving_files::ServingCertFiles::new),
        move |cert, key| match installed.set(cert, key) {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "serving certificate from the CSR does not load");
                false
            }
        },
    ));
    let _abort = AbortOnDrop(renewal);
    let tls = match bramble_kubelet_server::server_config_with(&client_ca_pem, serving) {
        Ok(t) => t,
        Err(e) => {
            warn!(error = %e, "kubelet streaming server: TLS setup failed, not serving");
            return;
        }
    };
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
        Ok(l) => l,
        Err(e) => {
            warn!(port, error = %e, "kubelet streaming server: cannot listen, not serving");
            return;
        }
    };
    info!(port, "kubelet streaming server listening");
    bramble_kubelet_server::serve_with_stats(
        listener, tls, pods, runtime, authorizer, stats, shutdown,
    )
    .await;
}
