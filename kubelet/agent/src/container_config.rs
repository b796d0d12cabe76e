//! From a pod's container spec and its image to the runtime's [`ContainerConfig`]: argv
//! (`command`/`args` over the image's Entrypoint/Cmd, with `$(VAR)` expansion), environment
//! (image env, then the container's as [`crate::env`] resolved it), working directory, cgroup resources and
//! `oom_score_adj` by QoS, log path, and the labels the kubelet finds containers by.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bramble_cgroups::qos::{container_cgroup_resources, oom_score_adj};
use bramble_cgroups::QosClass;
use bramble_runtime::{ContainerConfig, ContainerResources, StdioConfig};
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::env::expand_command;
use crate::pod_spec::{container_resources, pod_ids};

/// Label: the pod's uid.
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// Label: the pod's name.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// Label: the pod's namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Label: the container's name in the pod spec.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Label: the attempt number (restart count when it was created).
pub const LABEL_ATTEMPT: &str = "io.kubernetes.container.restartCount";
/// Label: `init` or `app`.
pub const LABEL_CONTAINER_TYPE: &str = "bramble.dev/container-type";
/// Label: `status.containerStatuses[].imageID` of the image it runs.
pub const LABEL_IMAGE_ID: &str = "bramble.dev/image-id";
/// Label: the image as written in the spec.
pub const LABEL_IMAGE: &str = "bramble.dev/image";

/// Where a container's log of one attempt goes:
/// `<data>/pods/<ns>_<name>_<uid>/<container>/<attempt>.log` (upstream's `/var/log/pods`).
pub fn log_path(data_dir: &Path, pod: &Pod, container: &str, attempt: u32) -> PathBuf {
    let (ns, name, uid) = pod_ids(pod);
    pod_log_dir(data_dir, &ns, &name, &uid)
        .join(container)
        .join(format!("{attempt}.log"))
}

/// The directory of one pod's logs.
pub fn pod_log_dir(data_dir: &Path, ns: &str, name: &str, uid: &str) -> PathBuf {
    data_dir.join("pods").join(format!("{ns}_{name}_{uid}"))
}

/// Node facts a container's config depends on.
#[derive(Debug, Clone)]
pub struct NodeContext {
    /// The node's InternalIP (`status.hostIP`).
    pub host_ip: IpAddr,
    /// Node memory capacity, bytes (Burstable `oom_score_adj` scaling).
    pub memory_capacity: u64,
    /// The kubelet data dir (logs).
    pub data_dir: PathBuf,
    /// Cluster DNS servers and domain (pods' resolv.conf).
    pub cluster_dns: crate::pod_dns::ClusterDns,
}

/// Everything [`build`] reads.
pub struct BuildInput<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// The container spec.
    pub container: &'a Container,
    /// `true` for init containers.
    pub init: bool,
    /// The image's execution defaults.
    pub image: &'a bramble_images::ContainerConfig,
    /// `repo@digest` of the image.
    pub image_id: &'a str,
    /// Image layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// Attempt number (0 for the first container of this name).
    pub attempt: u32,
    /// The pod's QoS class.
    pub qos: QosClass,
    /// The container's environment, resolved by [`crate::env::container_env`].
    pub env: &'a [(String, String)],
    /// Node facts.
    pub node: &'a NodeContext,
}

/// Builds the runtime config. An `Err` is the message of a `CreateContainerConfigError`.
pub fn build(input: &BuildInput<'_>) -> Result<ContainerConfig, String> {
    let c = input.container;
    let command = expand_command(c.command.as_deref(), input.env);
    let args = expand_command(c.args.as_deref(), input.env);
    let argv = input.image.container_argv(&command, &args);
    if argv.is_empty() {
        return Err("no command specified".into());
    }
    // Image env first, container env replaces same-named entries.
    let mut env: Vec<String> = Vec::new();
    let mut set = |k: &str, v: &str| {
        let prefix = format!("{k}=");
        if let Some(slot) = env.iter_mut().find(|e| e.starts_with(&prefix)) {
            *slot = format!("{k}={v}");
        } else {
            env.push(format!("{k}={v}"));
        }
    };
    for kv in input.image.env.as_deref().unwrap_or(&[]) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(k, v);
    }
    if let Some(host) = input.pod.metadata.name.as_deref() {
        set("HOSTNAME", host);
    }
    for (k, v) in input.env {
        set(k, v);
    }
    let res = container_resources(c)?;
    let cg = container_cgroup_resources(&res, input.qos);
    let resources = ContainerResources {
        cpu_shares: cg.cpu_shares,
        cpu_quota: cg.cpu_quota,
        cpu_period: cg.cpu_period,
        memory_limit: cg.memory_limit,
        pids_limit: None,
        oom_score_adj: Some(oom_score_adj(
            input.qos,
            res.memory_request,
            input.node.memory_capacity,
        )),
    };
    let (ns, name, uid) = pod_ids(input.pod);
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_POD_UID.to_string(), uid);
    labels.insert(LABEL_POD_NAME.to_string(), name);
    labels.insert(LABEL_POD_NAMESPACE.to_string(), ns);
    labels.insert(LABEL_CONTAINER_NAME.to_string(), c.name.clone());
    labels.insert(LABEL_ATTEMPT.to_string(), input.attempt.to_string());
    labels.insert(
        LABEL_CONTAINER_TYPE.to_string(),
        if input.init { "init" } else { "app" }.to_string(),
    );
    labels.insert(LABEL_IMAGE_ID.to_string(), input.image_id.to_string());
    labels.insert(LABEL_IMAGE.to_string(), c.image.clone().unwrap_or_default());
    Ok(ContainerConfig {
        name: c.name.clone(),
        image_layers: input.layers.clone(),
        command: argv,
        env,
        working_dir: c
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| input.image.working_dir.clone())
            .unwrap_or_default(),
        resources,
        log_path: log_path(&input.node.data_dir, input.pod, &c.name, input.attempt),
        labels,
        stdio: StdioConfig {
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            tty: c.tty.unwrap_or(false),
        },
        // Mounts and security settings are added by the volume manager and securityContext.
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argv_env_and_resources() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "c", "image": "reg/busybox",
                "args": ["-c", "echo $(GREETING) $(NOPE) $$(GREETING)"],
                "env": [
                    {"name": "WHO", "value": "world"},
                    {"name": "GREETING", "value": "hello $(WHO)"},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "PATH", "value": "/bin:/sbin"}
                ],
                "resources": {"limits": {"cpu": "500m", "memory": "32Mi"}, "requests": {"memory": "16Mi"}}
            }]}
        }))
        .unwrap();
        let image = bramble_images::ContainerConfig {
            entrypoint: Some(vec!["/bin/sh".into()]),
            cmd: Some(vec!["-c".into(), "echo image".into()]),
            env: Some(vec!["PATH=/bin".into(), "IMG=1".into()]),
            working_dir: Some("/srv".into()),
            user: None,
        };
        let node = NodeContext {
            host_ip: "10.0.0.5".parse().unwrap(),
            memory_capacity: 1 << 30,
            data_dir: "/d".into(),
            cluster_dns: Default::default(),
        };
        let container = &pod.spec.as_ref().unwrap().containers[0];
        // As crate::env resolves the spec's env above.
        let env: Vec<(String, String)> = [
            ("WHO", "world"),
            ("GREETING", "hello world"),
            ("NODE", "n1"),
            ("PATH", "/bin:/sbin"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cfg = build(&BuildInput {
            pod: &pod,
            container,
            init: false,
            image: &image,
            image_id: "reg/busybox@sha256:abc",
            layers: vec!["/l/1".into()],
            attempt: 2,
            qos: QosClass::Burstable,
            env: &env,
            node: &node,
        })
        .unwrap();
        assert_eq!(
            cfg.command,
            ["/bin/sh", "-c", "echo hello world $(NOPE) $(GREETING)"]
        );
        assert!(cfg.env.contains(&"PATH=/bin:/sbin".to_string()));
        assert!(cfg.env.contains(&"IMG=1".to_string()));
        assert!(cfg.env.contains(&"NODE=n1".to_string()));
        assert!(cfg.env.contains(&"HOSTNAME=web".to_string()));
        assert_eq!(cfg.working_dir, "/srv");
        assert_eq!(cfg.resources.cpu_quota, Some(50_000));
        assert_eq!(cfg.resources.memory_limit, Some(32 << 20));
        assert_eq!(cfg.resources.oom_score_adj, Some(985));
        assert_eq!(cfg.log_path, PathBuf::from("/d/pods/ns_web_u1/c/2.log"));
        assert_eq!(cfg.labels[LABEL_ATTEMPT], "2");
        assert_eq!(cfg.stdio, StdioConfig::default());
        let mut interactive = container.clone();
        interactive.stdin = Some(true);
        interactive.stdin_once = Some(true);
        interactive.tty = Some(true);
        let cfg = build(&BuildInput {
            pod: &pod,
            container: &interactive,
            init: false,
            image: &image,
            image_id: "reg/busybox@sha256:abc",
            layers: vec![],
            attempt: 0,
            qos: QosClass::Burstable,
            env: &env,
            node: &node,
        })
        .unwrap();
        assert_eq!(
            cfg.stdio,
            StdioConfig {
                stdin: true,
                stdin_once: true,
                tty: true
            }
        );
    }
}
