//! The Pod as the shared cache holds it: only the fields the in-process readers (scheduler,
//! workload controllers, netctl's endpoints) use, deserialized straight from the watch.
//!
//! k8s-openapi's `Pod` is a fixed-size tree of mostly-`None` options: its `PodSpec`,
//! `PodStatus` and every `Container` carry every field of the API inline (probes,
//! lifecycle handlers, security contexts, volume sources...): 2,176 bytes per `Pod` and
//! 2,120 per `Container` (x86_64) before any string is stored, and with 10,000 pods the Pod
//! cache was most of the controller's heap. Here a `Pod` is 984 bytes and a `Container` 184.
//! The types mirror the names and types of the k8s-openapi fields they keep, so a reader's
//! `pod.spec.as_ref()?.node_name` reads the same; the strings most pods hold equal copies of
//! (container name and image, scheduler name, phase, and the conditions' strings) are a
//! shared [`Text`] instead of a `String` (it derefs to `&str` and compares with both).
//!
//! Kept, by reader: the scheduler reads the containers' and init containers' `resources`,
//! `restartPolicy` (sidecars), `ports` (host ports) and `image`, `overhead`, `nodeName`,
//! `nodeSelector`, `affinity`, `tolerations`, `topologySpreadConstraints`, `priority`,
//! `priorityClassName`, `preemptionPolicy`, `schedulerName`, `status.nominatedNodeName`
//! and the conditions; the workload controllers read the phase, conditions, container and
//! init container statuses (`ready`, `restartCount`, `state` for a Job's podFailurePolicy),
//! `startTime` and the containers' `restartPolicy` (HPA); netctl reads `podIP`, `hostname`,
//! `subdomain`, `nodeName` and the container ports; everyone reads `metadata` (labels,
//! owner references, finalizers, deletion timestamp), kept whole.
//!
//! What is dropped, and why nothing needs it:
//! - `spec`: `volumes` and the containers' `volumeMounts`/`volumeDevices` (only the kubelet,
//!   which reads its pods from the API, uses them; the largest part of a typed pod: every
//!   pod carries the projected `kube-api-access-*` volume), containers' `command`, `args`,
//!   `env`, `envFrom`, `workingDir`, probes, `lifecycle`, `securityContext`,
//!   `imagePullPolicy`, `stdin`/`tty`, `terminationMessage*`, `resizePolicy`,
//!   `resources.claims`; the pod's
//!   `restartPolicy`, `terminationGracePeriodSeconds`, `activeDeadlineSeconds`,
//!   `securityContext`, `dnsPolicy`/`dnsConfig`, `hostAliases`, `imagePullSecrets`,
//!   `serviceAccountName`, `automountServiceAccountToken`, `readinessGates`,
//!   `runtimeClassName`, `os`, `resourceClaims`, `schedulingGates`, host namespaces,
//!   `enableServiceLinks`, `ephemeralContainers`: the kubelet's and admission's business;
//!   no in-process controller reads them, and nothing writes a cached Pod back (writes are
//!   patches, deletes by name, and creations of pods built from templates).
//! - `status`: `reason`, `message`, `qosClass`, `hostIP(s)`, `podIPs` (netctl publishes the
//!   primary `podIP`), `resize`, `resourceClaimStatuses`, `ephemeralContainerStatuses`, and
//!   of each container status `image`, `imageID`, `containerID`, `started`, `lastState`,
//!   `resources`, `allocatedResources`, `volumeMounts`, `user`: shown by `kubectl` and used
//!   by the kubelet, which read the API, not these caches.
//!
//! A reader that needs a dropped field adds it to these types (it then deserializes from the
//! watch like the rest) and to the conversion test; the compiler finds every field read,
//! except what is read through the serialized spec (the scheduler's requests are computed
//! from it: `resources`, `restartPolicy` of init containers, `overhead`).
//! [`Pod::from_api`] converts a full API Pod (for tests and code that holds one).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ContainerPort, ContainerState, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::NamespaceResourceScope;
use serde::{Deserialize, Serialize};

use crate::intern::Tolerations;
use crate::text::Text;

/// A cached Pod (see the module docs for what is kept).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodStatus>,
}

/// The kept part of `spec`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<Vec<Container>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Boxed: 144 bytes inline, and few pods have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Box<Affinity>>,
    /// Shared with every cached pod holding an equal list ([`crate::intern`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::intern::serde_tolerations"
    )]
    pub tolerations: Option<Tolerations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead: Option<BTreeMap<String, Quantity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
}

/// The kept part of a container (app or init).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<ContainerPort>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// `Always` marks a restartable ("sidecar") init container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
}

fn shrink_opt<T>(v: &mut Option<Vec<T>>) {
    if let Some(v) = v.as_mut() {
        v.shrink_to_fit();
    }
}

/// A container's `resources` (`claims` dropped: dynamic resource allocation is not
/// scheduled here).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceList>,
}

/// Resource name -> quantity, as a short list: a pod names one to three resources, and the
/// `BTreeMap` the API type uses allocates a node of eleven entries (about 540 bytes) for
/// them. Reads and writes as the same JSON object; names are unique (the last of duplicate
/// keys wins, as in a map).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceList(Vec<(String, Quantity)>);

impl ResourceList {
    /// The quantity of `name`.
    pub fn get(&self, name: &str) -> Option<&Quantity> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, q)| q)
    }

    /// Every resource, in the order listed.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Quantity)> {
        self.0.iter().map(|(n, q)| (n, q))
    }

    /// How many resources are listed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, Quantity)> for ResourceList {
    fn from_iter<I: IntoIterator<Item = (String, Quantity)>>(iter: I) -> Self {
        let mut list: Vec<(String, Quantity)> = Vec::new();
        for (name, q) in iter {
            match list.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = q,
                None => list.push((name, q)),
            }
        }
        list.shrink_to_fit();
        ResourceList(list)
    }
}

impl Serialize for ResourceList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for ResourceList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ResourceList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of resource names to quantities")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<ResourceList, A::Error> {
                let mut entries = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some(e) = m.next_entry::<String, Quantity>()? {
                    entries.push(e);
                }
                Ok(entries.into_iter().collect())
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The kept part of `status`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<PodCondition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_statuses: Option<Vec<ContainerStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_container_statuses: Option<Vec<ContainerStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nominated_node_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
}

/// The kept part of a pod condition (`lastProbeTime` and `observedGeneration` dropped), its
/// strings shared with the equal ones other cached pods hold ([`crate::text`]): a pending pod's
/// `PodScheduled=False/Unschedulable` condition was about 400 bytes, the same in every pod.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(default, rename = "type")]
    pub type_: Text,
    #[serde(default)]
    pub status: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// The kept part of a container status.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restart_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ContainerState>,
}

impl k8s_openapi::Resource for Pod {
    const API_VERSION: &'static str = "v1";
    const GROUP: &'static str = "";
    const KIND: &'static str = "Pod";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "pods";
    type Scope = NamespaceResourceScope;
}

impl k8s_openapi::Metadata for Pod {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl Pod {
    /// Releases the spare capacity of every list: serde grows a `Vec` it reads by doubling
    /// from four (`serde_json` gives no length), so a pod's one container, one condition or
    /// two tolerations held room for four (about 1.3 KiB per pending pod).
    pub fn shrink(&mut self) {
        let meta = &mut self.metadata;
        shrink_opt(&mut meta.owner_references);
        shrink_opt(&mut meta.finalizers);
        if let Some(spec) = self.spec.as_mut() {
            spec.containers.shrink_to_fit();
            shrink_opt(&mut spec.init_containers);
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                shrink_opt(&mut c.ports);
            }
            shrink_opt(&mut spec.topology_spread_constraints);
        }
        if let Some(status) = self.status.as_mut() {
            shrink_opt(&mut status.conditions);
            shrink_opt(&mut status.container_statuses);
            shrink_opt(&mut status.init_container_statuses);
        }
    }

    /// The cached form of a full API Pod: what the cache would hold had `pod` come through
    /// the watch (before [`crate::compact`]).
    pub fn from_api(pod: &k8s_openapi::api::core::v1::Pod) -> Result<Pod, serde_json::Error> {
        serde_json::to_value(pod).and_then(serde_json::from_value)
    }
}
