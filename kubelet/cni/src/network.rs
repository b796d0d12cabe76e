//! [`CniNetwork`]: ADD/CHECK/DEL of a pod sandbox over a whole configuration list.

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::cache::{CachedAttachment, ResultCache};
use crate::config::{DefaultNetwork, NetworkConfigList};
use crate::error::CniError;
use crate::exec::{default_bin_dirs, CniCommand, InvokeArgs, PluginExec};
use crate::types::{CniResult, PortMapping};

/// The interface name pods get for the configured network.
pub const POD_IFNAME: &str = "eth0";

/// Where configurations, plugins and cached results live.
#[derive(Debug, Clone)]
pub struct CniNetworkConfig {
    /// Configuration directory (default `/etc/cni/net.d`).
    pub conf_dir: PathBuf,
    /// Plugin directories (default `/opt/cni/bin`, `/usr/lib/cni`).
    pub bin_dirs: Vec<PathBuf>,
    /// Directory for the result cache (`<kubelet data dir>/cni`); results go to `results/`.
    pub data_dir: PathBuf,
}

impl CniNetworkConfig {
    /// The default directories with the cache under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        CniNetworkConfig {
            conf_dir: PathBuf::from("/etc/cni/net.d"),
            bin_dirs: default_bin_dirs(),
            data_dir: data_dir.into(),
        }
    }
}

/// The pod sandbox being attached.
#[derive(Debug, Clone, Default)]
pub struct PodRef {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod UID.
    pub uid: String,
    /// Sandbox id (`CNI_CONTAINERID`).
    pub sandbox_id: String,
    /// Path of the sandbox network namespace (`CNI_NETNS`).
    pub netns: String,
}

impl PodRef {
    /// `CNI_ARGS` as the kubelet's CNI code passes them.
    fn cni_args(&self) -> Vec<(String, String)> {
        vec![
            ("IgnoreUnknown".into(), "1".into()),
            ("K8S_POD_NAMESPACE".into(), self.namespace.clone()),
            ("K8S_POD_NAME".into(), self.name.clone()),
            ("K8S_POD_INFRA_CONTAINER_ID".into(), self.sandbox_id.clone()),
            ("K8S_POD_UID".into(), self.uid.clone()),
        ]
    }

    fn invoke_args(&self, ifname: &str) -> InvokeArgs {
        InvokeArgs {
            container_id: self.sandbox_id.clone(),
            netns: self.netns.clone(),
            ifname: ifname.to_string(),
            args: self.cni_args(),
        }
    }
}

/// Pod networking through the CNI plugins of a configuration directory.
#[derive(Debug)]
pub struct CniNetwork {
    config: CniNetworkConfig,
    exec: PluginExec,
    cache: ResultCache,
    default_network: Mutex<Option<DefaultNetwork>>,
}

impl CniNetwork {
    /// A network over `config`'s directories; no default configuration is written until
    /// [`CniNetwork::set_default_network`] gives the node's pod CIDRs.
    pub fn new(config: CniNetworkConfig) -> Self {
        CniNetwork {
            exec: PluginExec::new(config.bin_dirs.clone()),
            cache: ResultCache::new(config.data_dir.join("results")),
            config,
            default_network: Mutex::new(None),
        }
    }

    /// Sets the default network written when the configuration directory has none (the
    /// kubelet calls this once the node's `spec.podCIDRs` is known).
    pub fn set_default_network(&self, network: DefaultNetwork) {
        *self
            .default_network
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(network);
    }

    /// The plugin runner.
    pub fn exec(&self) -> &PluginExec {
        &self.exec
    }

    /// The active configuration list, writing the default one first when the directory
    /// holds none and a default is known.
    pub fn network_config(&self) -> Result<NetworkConfigList, CniError> {
        if let Some(list) = NetworkConfigList::load_dir(&self.config.conf_dir)? {
            return Ok(list);
        }
        let default = self
            .default_network
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(default) = default {
            default.write_if_missing(&self.config.conf_dir)?;
            if let Some(list) = NetworkConfigList::load_dir(&self.config.conf_dir)? {
                return Ok(list);
            }
        }
        Err(CniError::NoConfig(self.config.conf_dir.clone()))
    }

    /// ADD: sets up `lo` and the configured network in the sandbox; returns the final result.
    /// When a plugin fails, the chain is deleted again (so host-local frees the address)
    /// and the plugin's error is returned.
    pub fn add(&self, pod: &PodRef, ports: &[PortMapping]) -> Result<CniResult, CniError> {
        let _span = tracing::info_span!("cni_add", pod = %format!("{}/{}", pod.namespace, pod.name), sandbox = %pod.sandbox_id).entered();
        let list = self.network_config()?;
        let loopback = NetworkConfigList::loopback();
        self.run_add(&loopback, pod, "lo", &[])?;
        let result = match self.run_add(&list, pod, POD_IFNAME, ports) {
            Ok(result) => result,
            Err(e) => {
                tracing::warn!(error = %e, "CNI ADD failed; deleting the partial attachment");
                if let Err(del) = self.run_del(&list.to_json(), None, pod, POD_IFNAME, ports) {
                    tracing::warn!(error = %del, "cleanup after failed ADD");
                }
                return Err(e);
            }
        };
        self.cache.store(&CachedAttachment {
            kind: "cniCacheV1".into(),
            container_id: pod.sandbox_id.clone(),
            config: CachedAttachment::encode_config(&list.to_json()),
            if_name: POD_IFNAME.into(),
            network_name: list.name.clone(),
            cni_args: pod.cni_args(),
            port_mappings: ports.to_vec(),
            result: result.clone(),
        })?;
        Ok(result)
    }

    /// CHECK: asks every plugin whether the sandbox's networking is still as ADD left it.
    pub fn check(&self, pod: &PodRef) -> Result<(), CniError> {
        let list = self.network_config()?;
        if list.disable_check {
            return Ok(());
        }
        let cached = self.cache.load(&list.name, &pod.sandbox_id, POD_IFNAME);
        let (config, prev, ports) = match &cached {
            Some(c) => (
                c.config_json().unwrap_or_else(|| list.to_json()),
                Some(serde_json::to_value(&c.result)?),
                c.port_mappings.clone(),
            ),
            None => (list.to_json(), None, Vec::new()),
        };
        let args = pod.invoke_args(POD_IFNAME);
        for plugin in plugins_of(&config) {
            let conf = plugin_config(&config, plugin, prev.as_ref(), &ports);
            self.exec
                .invoke(plugin_type(plugin), CniCommand::Check, &args, &conf)?;
        }
        Ok(())
    }

    /// DEL: removes the sandbox from every network it was attached to (from the cache, so
    /// this works after a restart and after the configuration changed), else from the
    /// current configuration; then drops the cache entries.
    pub fn del(&self, pod: &PodRef) -> Result<(), CniError> {
        let _span = tracing::info_span!("cni_del", pod = %format!("{}/{}", pod.namespace, pod.name), sandbox = %pod.sandbox_id).entered();
        let cached = self.cache.load_container(&pod.sandbox_id);
        if cached.is_empty() {
            let list = self.network_config()?;
            self.run_del(&list.to_json(), None, pod, POD_IFNAME, &[])?;
        }
        for entry in &cached {
            let config = entry.config_json().ok_or_else(|| CniError::InvalidConfig {
                path: self.cache.dir().to_path_buf(),
                reason: format!("cached config of {} is not JSON", entry.container_id),
            })?;
            let prev = serde_json::to_value(&entry.result)?;
            self.run_del(
                &config,
                Some(&prev),
                pod,
                &entry.if_name,
                &entry.port_mappings,
            )?;
            self.cache
                .remove(&entry.network_name, &entry.container_id, &entry.if_name)?;
        }
        let loopback = NetworkConfigList::loopback().to_json();
        if let Err(e) = self.run_del(&loopback, None, pod, "lo", &[]) {
            tracing::debug!(error = %e, "loopback DEL");
        }
        Ok(())
    }

    /// The cached result of a sandbox's attachment to the configured network.
    pub fn cached_result(&self, sandbox_id: &str) -> Option<CniResult> {
        self.cache
            .load_container(sandbox_id)
            .into_iter()
            .find(|a| a.if_name == POD_IFNAME)
            .map(|a| a.result)
    }

    fn run_add(
        &self,
        list: &NetworkConfigList,
        pod: &PodRef,
        ifname: &str,
        ports: &[PortMapping],
    ) -> Result<CniResult, CniError> {
        let config = list.to_json();
        let args = pod.invoke_args(ifname);
        let mut prev: Option<Value> = None;
        for plugin in plugins_of(&config) {
            let conf = plugin_config(&config, plugin, prev.as_ref(), ports);
            let ty = plugin_type(plugin);
            let out = self.exec.invoke(ty, CniCommand::Add, &args, &conf)?;
            prev = Some(out.ok_or_else(|| CniError::InvalidResult {
                plugin: ty.to_string(),
                command: "add".into(),
                reason: "empty result".into(),
            })?);
        }
        let last = prev.unwrap_or(Value::Null);
        serde_json::from_value(last).map_err(|e| CniError::InvalidResult {
            plugin: list.name.clone(),
            command: "add".into(),
            reason: e.to_string(),
        })
    }

    /// DEL in reverse order; every plugin runs even when an earlier one failed (so IPAM
    /// frees what it can), the first error is returned.
    fn run_del(
        &self,
        config: &Value,
        prev: Option<&Value>,
        pod: &PodRef,
        ifname: &str,
        ports: &[PortMapping],
    ) -> Result<(), CniError> {
        let args = pod.invoke_args(ifname);
        let mut first_error = None;
        for plugin in plugins_of(config).iter().rev() {
            let conf = plugin_config(config, plugin, prev, ports);
            if let Err(e) = self
                .exec
                .invoke(plugin_type(plugin), CniCommand::Del, &args, &conf)
            {
                tracing::warn!(error = %e, "CNI DEL");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn plugins_of(config: &Value) -> Vec<&Value> {
    config["plugins"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn plugin_type(plugin: &Value) -> &str {
    plugin["type"].as_str().unwrap_or_default()
}

/// One plugin's stdin: its own object plus the list's `name` and `cniVersion`, the previous
/// result, and `runtimeConfig` for the capabilities it declares.
fn plugin_config(
    list: &Value,
    plugin: &Value,
    prev: Option<&Value>,
    ports: &[PortMapping],
) -> Value {
    let mut conf = plugin.clone();
    conf["name"] = list["name"].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    if let Some(prev) = prev {
        conf["prevResult"] = prev.clone();
    }
    if plugin["capabilities"]["portMappings"].as_bool() == Some(true) && !ports.is_empty() {
        conf["runtimeConfig"] = json!({ "portMappings": ports });
    }
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_config_injects_name_version_prev_and_capabilities() {
        let list = json!({"name":"n","cniVersion":"1.0.0","plugins":[]});
        let pm = json!({"type":"portmap","capabilities":{"portMappings":true}});
        let ports = vec![PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: String::new(),
        }];
        let prev = json!({"cniVersion":"1.0.0","ips":[]});
        let c = plugin_config(&list, &pm, Some(&prev), &ports);
        assert_eq!(c["name"], "n");
        assert_eq!(c["cniVersion"], "1.0.0");
        assert_eq!(c["prevResult"], prev);
        assert_eq!(c["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert_eq!(c["runtimeConfig"]["portMappings"][0]["containerPort"], 80);
        let bridge = json!({"type":"bridge"});
        let c = plugin_config(&list, &bridge, None, &ports);
        assert!(c.get("runtimeConfig").is_none());
        assert!(c.get("prevResult").is_none());
    }
}
