//! A container's environment (upstream `makeEnvironmentVariables`): `envFrom` sources first
//! (ConfigMaps and Secrets, with `prefix`; keys that are not valid variable names are
//! skipped with an `InvalidEnvironmentVariableNames` event), then `env` entries in order —
//! `value` with `$(VAR)` expanded against what is defined so far, `fieldRef`,
//! `resourceFieldRef` (with `divisor`), `configMapKeyRef` and `secretKeyRef` (with
//! `optional`). A missing object or key is the `CreateContainerConfigError` message
//! upstream gives (`configmap "x" not found`, `couldn't find key k in ConfigMap ns/x`).

use std::collections::HashMap;
use std::net::IpAddr;

use bramble_api::quantity::Quantity;
use bramble_api::validation::names::is_env_var_name;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, ResourceFieldSelector, Secret};
use kube::{Api, Client};

use crate::events::{EventRecorder, EventType};
use crate::expansion::expand;
use crate::pod_spec::pod_ids;

/// Event reason for skipped `envFrom` keys (upstream's).
pub const INVALID_ENV_NAMES: &str = "InvalidEnvironmentVariableNames";

/// Where ConfigMaps and Secrets come from (the API server; a map in unit tests).
pub trait EnvObjects: Send + Sync {
    /// The ConfigMap `ns/name`, `None` when it does not exist.
    fn config_map<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, String>>;
    /// The Secret `ns/name`, `None` when it does not exist.
    fn secret<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>>;
}

impl EnvObjects for Client {
    fn config_map<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, String>> {
        Box::pin(async move {
            Api::<ConfigMap>::namespaced(self.clone(), ns)
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn secret<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>> {
        Box::pin(async move {
            Api::<Secret>::namespaced(self.clone(), ns)
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Node facts env values depend on.
pub struct EnvNode {
    /// `status.hostIP`.
    pub host_ip: IpAddr,
    /// Allocatable millicores (`limits.cpu` when the container sets no limit).
    pub allocatable_milli_cpu: i64,
    /// Allocatable memory bytes (`limits.memory` when the container sets no limit).
    pub allocatable_memory: i64,
}

/// Everything the environment is computed from.
pub struct EnvInput<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// The container.
    pub container: &'a Container,
    /// The pod's IPs.
    pub pod_ips: &'a [IpAddr],
    /// Node facts.
    pub node: &'a EnvNode,
}

/// Objects read once per container start.
#[derive(Default)]
struct Cache {
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl Cache {
    async fn config_map(
        &mut self,
        objs: &dyn EnvObjects,
        ns: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, String> {
        if let Some(c) = self.config_maps.get(name) {
            return Ok(c.clone());
        }
        let c = objs.config_map(ns, name).await?;
        self.config_maps.insert(name.to_string(), c.clone());
        Ok(c)
    }

    async fn secret(
        &mut self,
        objs: &dyn EnvObjects,
        ns: &str,
        name: &str,
    ) -> Result<Option<Secret>, String> {
        if let Some(s) = self.secrets.get(name) {
            return Ok(s.clone());
        }
        let s = objs.secret(ns, name).await?;
        self.secrets.insert(name.to_string(), s.clone());
        Ok(s)
    }
}

fn secret_data(s: &Secret) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    // stringData is write-only, but a Secret read back unnormalised may still carry it.
    for (k, v) in s.string_data.iter().flatten() {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    out
}

/// The ordered environment of a container (`NAME`, value); an `Err` is the message of a
/// `CreateContainerConfigError`.
pub async fn container_env(
    input: &EnvInput<'_>,
    objs: &dyn EnvObjects,
    events: &EventRecorder,
) -> Result<Vec<(String, String)>, String> {
    let (ns, _, _) = pod_ids(input.pod);
    let c = input.container;
    let mut cache = Cache::default();
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        if let Some(slot) = env.iter_mut().find(|(n, _)| *n == k) {
            slot.1 = v;
        } else {
            env.push((k, v));
        }
    };
    for from in c.env_from.as_deref().unwrap_or(&[]) {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (kind, name, data) = if let Some(r) = &from.config_map_ref {
            let optional = r.optional == Some(true);
            match cache.config_map(objs, &ns, &r.name).await? {
                Some(cm) => {
                    let data: HashMap<String, String> =
                        cm.data.clone().unwrap_or_default().into_iter().collect();
                    ("configMap", r.name.clone(), data)
                }
                None if optional => continue,
                None => return Err(format!("configmap {:?} not found", r.name)),
            }
        } else if let Some(r) = &from.secret_ref {
            let optional = r.optional == Some(true);
            match cache.secret(objs, &ns, &r.name).await? {
                Some(s) => ("secret", r.name.clone(), secret_data(&s)),
                None if optional => continue,
                None => return Err(format!("secret {:?} not found", r.name)),
            }
        } else {
            continue;
        };
        let mut keys: Vec<&String> = data.keys().collect();
        keys.sort();
        let mut invalid = Vec::new();
        for k in keys {
            let name_with_prefix = format!("{prefix}{k}");
            if !is_env_var_name(&name_with_prefix).is_empty() {
                invalid.push(name_with_prefix);
                continue;
            }
            set(&mut env, name_with_prefix, data[k].clone());
        }
        if !invalid.is_empty() {
            events.event(
                input.pod,
                None,
                EventType::Warning,
                INVALID_ENV_NAMES,
                format!(
                    "Keys [{}] from the EnvFrom {kind} {ns}/{name} were skipped since they are considered invalid environment variable names.",
                    invalid.join(", ")
                ),
            );
        }
    }
    for e in c.env.as_deref().unwrap_or(&[]) {
        let value = match &e.value_from {
            None => {
                let lookup = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                expand(e.value.as_deref().unwrap_or(""), &lookup)
            }
            Some(from) => {
                if let Some(f) = &from.field_ref {
                    field_ref(input, &f.field_path)?
                } else if let Some(r) = &from.resource_field_ref {
                    resource_field_ref(input, r)?
                } else if let Some(r) = &from.config_map_key_ref {
                    let optional = r.optional == Some(true);
                    let Some(cm) = cache.config_map(objs, &ns, &r.name).await? else {
                        if optional {
                            continue;
                        }
                        return Err(format!("configmap {:?} not found", r.name));
                    };
                    match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            ))
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let optional = r.optional == Some(true);
                    let Some(s) = cache.secret(objs, &ns, &r.name).await? else {
                        if optional {
                            continue;
                        }
                        return Err(format!("secret {:?} not found", r.name));
                    };
                    match secret_data(&s).remove(&r.key) {
                        Some(v) => v,
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            ))
                        }
                    }
                } else {
                    String::new()
                }
            }
        };
        set(&mut env, e.name.clone(), value);
    }
    Ok(env)
}

/// Expands `$(VAR)` in the container's command and args against its environment.
pub fn expand_command(items: Option<&[String]>, env: &[(String, String)]) -> Vec<String> {
    let lookup = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    items
        .unwrap_or(&[])
        .iter()
        .map(|s| expand(s, &lookup))
        .collect()
}

/// A downward-API `fieldRef` value for env (upstream `podFieldSelectorRuntimeValue`).
pub fn field_ref(input: &EnvInput<'_>, path: &str) -> Result<String, String> {
    let (ns, name, uid) = pod_ids(input.pod);
    let spec = input.pod.spec.as_ref();
    let meta_map = |m: Option<&std::collections::BTreeMap<String, String>>, key: &str| {
        m.and_then(|l| l.get(key).cloned()).unwrap_or_default()
    };
    Ok(match path {
        "metadata.name" => name,
        "metadata.namespace" => ns,
        "metadata.uid" => uid,
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => input.node.host_ip.to_string(),
        "status.hostIPs" => input.node.host_ip.to_string(),
        "status.podIP" => input
            .pod_ips
            .first()
            .map(|i| i.to_string())
            .unwrap_or_default(),
        "status.podIPs" => input
            .pod_ips
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
        other => {
            if let Some(key) = other
                .strip_prefix("metadata.labels['")
                .and_then(|k| k.strip_suffix("']"))
            {
                meta_map(input.pod.metadata.labels.as_ref(), key)
            } else if let Some(key) = other
                .strip_prefix("metadata.annotations['")
                .and_then(|k| k.strip_suffix("']"))
            {
                meta_map(input.pod.metadata.annotations.as_ref(), key)
            } else {
                return Err(format!("unsupported fieldPath: {other}"));
            }
        }
    })
}

/// A `resourceFieldRef` value (upstream `ExtractContainerResourceValue`): the quantity
/// divided by `divisor` (default 1), rounded up; a missing limit is the node's allocatable.
pub fn resource_field_ref(
    input: &EnvInput<'_>,
    r: &ResourceFieldSelector,
) -> Result<String, String> {
    let container = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => input
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == n))
            .ok_or_else(|| format!("container {n} not found"))?,
        None => input.container,
    };
    let divisor = match &r.divisor {
        Some(d) => Quantity::parse(&d.0).map_err(|e| format!("invalid divisor {:?}: {e}", d.0))?,
        None => Quantity::from_int(1, bramble_api::quantity::Format::DecimalSI),
    };
    if divisor.is_zero() {
        return Err("divisor must be positive".into());
    }
    let res = container.resources.as_ref();
    let get = |limits: bool, name: &str| -> Result<Option<Quantity>, String> {
        let map = res.and_then(|r| {
            if limits {
                r.limits.as_ref()
            } else {
                r.requests.as_ref()
            }
        });
        match map.and_then(|m| m.get(name)) {
            Some(q) => Quantity::parse(&q.0)
                .map(Some)
                .map_err(|e| format!("invalid quantity {:?}: {e}", q.0)),
            None => Ok(None),
        }
    };
    let ceil_div = |a: i128, b: i128| -> i128 { (a + b - 1).div_euclid(b) };
    let value = match r.resource.as_str() {
        "limits.cpu" | "requests.cpu" => {
            let limits = r.resource == "limits.cpu";
            let milli = match get(limits, "cpu")? {
                Some(q) => q.milli_value(),
                None if limits => input.node.allocatable_milli_cpu,
                None => 0,
            };
            ceil_div(milli as i128, divisor.milli_value().max(1) as i128)
        }
        res_name => {
            let (limits, name) = res_name
                .split_once('.')
                .map(|(a, b)| (a == "limits", b))
                .filter(|(_, b)| {
                    *b == "memory" || *b == "ephemeral-storage" || b.starts_with("hugepages-")
                })
                .ok_or_else(|| format!("unsupported container resource : {res_name}"))?;
            let bytes = match get(limits, name)? {
                Some(q) => q.value(),
                None if limits && name == "memory" => input.node.allocatable_memory,
                None => 0,
            };
            ceil_div(bytes as i128, divisor.value().max(1) as i128)
        }
    };
    Ok(value.to_string())
}

impl<R: bramble_runtime::ContainerRuntime + 'static> crate::pod_worker::PodWorker<R> {
    /// The environment of container `c` of this worker's pod, objects read from the API.
    pub(crate) async fn container_env(
        &self,
        c: &Container,
    ) -> Result<Vec<(String, String)>, String> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        let node = EnvNode {
            host_ip: self.ctx.node.host_ip,
            allocatable_milli_cpu: cpus * 1000,
            allocatable_memory: self.ctx.node.memory_capacity as i64,
        };
        let input = EnvInput {
            pod: &self.pod,
            container: c,
            pod_ips: &self.pod_ips,
            node: &node,
        };
        container_env(&input, &self.ctx.client, &self.ctx.events).await
    }
}

#[cfg(test)]
mod tests;
