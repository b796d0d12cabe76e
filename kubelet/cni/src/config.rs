//! Network configuration lists: loading from the configuration directory and Bramble's
//! default bridge configuration.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::error::CniError;

/// The CNI spec version Bramble speaks.
pub const CNI_VERSION: &str = "1.0.0";

/// A network configuration list (`.conflist`, or a single `.conf` turned into a list).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    /// Network name (`name`).
    pub name: String,
    /// Spec version of the list (`cniVersion`).
    pub cni_version: String,
    /// `disableCheck`: CHECK is skipped when true.
    pub disable_check: bool,
    /// The plugin configurations in order, each an object with at least `type`.
    pub plugins: Vec<Map<String, Value>>,
    /// The file this list was read from (empty for lists built in code).
    pub source: PathBuf,
}

impl NetworkConfigList {
    /// Parses a conflist, or a single plugin configuration (`.conf`) as a list of one.
    pub fn parse(bytes: &[u8], source: &Path) -> Result<Self, CniError> {
        let invalid = |reason: String| CniError::InvalidConfig {
            path: source.to_path_buf(),
            reason,
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let Value::Object(mut top) = value else {
            return Err(invalid("not a JSON object".into()));
        };
        let name = top
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("missing network name".into()))?
            .to_string();
        let cni_version = top
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or(CNI_VERSION)
            .to_string();
        let disable_check = top
            .get("disableCheck")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let plugins = match top.remove("plugins") {
            Some(Value::Array(list)) => list
                .into_iter()
                .map(|p| match p {
                    Value::Object(m) if m.get("type").and_then(Value::as_str).is_some() => Ok(m),
                    _ => Err(invalid(
                        "every plugin needs an object with a \"type\"".into(),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(invalid("\"plugins\" is not an array".into())),
            None if top.get("type").and_then(Value::as_str).is_some() => vec![top],
            None => return Err(invalid("neither \"plugins\" nor \"type\"".into())),
        };
        if plugins.is_empty() {
            return Err(invalid("no plugins in list".into()));
        }
        Ok(NetworkConfigList {
            name,
            cni_version,
            disable_check,
            plugins,
            source: source.to_path_buf(),
        })
    }

    /// Loads the first valid configuration in lexical file-name order among `*.conflist`,
    /// `*.conf` and `*.json` in `dir` (as libcni's ConfFiles and the CRI runtimes do).
    /// `Ok(None)` when the directory is missing or holds no configuration.
    pub fn load_dir(dir: &Path) -> Result<Option<Self>, CniError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CniError::io(dir)(e)),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conflist" | "conf" | "json")
                )
            })
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).map_err(CniError::io(&file))?;
            match Self::parse(&bytes, &file) {
                Ok(list) => return Ok(Some(list)),
                Err(e) => tracing::warn!(error = %e, "skipping CNI configuration"),
            }
        }
        Ok(None)
    }

    /// The JSON text of this list (what the result cache stores).
    pub fn to_json(&self) -> Value {
        json!({
            "cniVersion": self.cni_version,
            "name": self.name,
            "disableCheck": self.disable_check,
            "plugins": self.plugins,
        })
    }

    /// The loopback network the runtime sets up in every sandbox (`lo`), whatever the
    /// configured network is, as containerd does.
    pub fn loopback() -> Self {
        let mut plugin = Map::new();
        plugin.insert("type".into(), Value::from("loopback"));
        NetworkConfigList {
            name: "cni-loopback".into(),
            cni_version: CNI_VERSION.into(),
            disable_check: false,
            plugins: vec![plugin],
            source: PathBuf::new(),
        }
    }
}

/// Parameters of Bramble's default network: a bridge with host-local IPAM over the node's
/// pod CIDR(s) and portmap for hostPorts. The bridge does not masquerade (its `ipMasq` would
/// hide pods from pods on other nodes behind their node IPs): the kubelet masquerades only
/// traffic leaving the cluster's pod CIDR (bramble-routes).
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultNetwork {
    /// The node's pod CIDRs (`spec.podCIDRs`), IPv4 first.
    pub pod_cidrs: Vec<String>,
    /// Bridge device name.
    pub bridge: String,
    /// Network name in the conflist.
    pub name: String,
    /// host-local's state directory; `None` keeps the plugin default (/var/lib/cni/networks).
    pub ipam_data_dir: Option<PathBuf>,
}

/// File name of the default configuration in the configuration directory.
pub const DEFAULT_CONFLIST_NAME: &str = "10-bramble.conflist";

impl DefaultNetwork {
    /// The defaults (bridge `bramble0`, network `bramble`) for these pod CIDRs.
    pub fn new(pod_cidrs: Vec<String>) -> Self {
        DefaultNetwork {
            pod_cidrs,
            bridge: "bramble0".into(),
            name: "bramble".into(),
            ipam_data_dir: None,
        }
    }

    /// The conflist JSON.
    pub fn conflist(&self) -> Result<Value, CniError> {
        let mut ranges = Vec::new();
        let mut routes = Vec::new();
        for cidr in &self.pod_cidrs {
            let net: ipnet::IpNet = cidr
                .parse()
                .map_err(|_| CniError::InvalidCidr(cidr.clone()))?;
            ranges.push(json!([{ "subnet": net.trunc().to_string() }]));
            routes.push(json!({ "dst": if net.addr().is_ipv4() { "0.0.0.0/0" } else { "::/0" } }));
        }
        if ranges.is_empty() {
            return Err(CniError::InvalidCidr(String::new()));
        }
        let mut ipam = json!({ "type": "host-local", "ranges": ranges, "routes": routes });
        if let Some(dir) = &self.ipam_data_dir {
            ipam["dataDir"] = Value::from(dir.display().to_string());
        }
        Ok(json!({
            "cniVersion": CNI_VERSION,
            "name": self.name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": ipam,
                },
                { "type": "portmap", "capabilities": { "portMappings": true } },
            ],
        }))
    }

    /// Writes the default conflist into `dir` unless the directory already holds a network
    /// configuration; returns the path written, or `None` when one existed.
    pub fn write_if_missing(&self, dir: &Path) -> Result<Option<PathBuf>, CniError> {
        if NetworkConfigList::load_dir(dir)?.is_some() {
            return Ok(None);
        }
        std::fs::create_dir_all(dir).map_err(CniError::io(dir))?;
        let path = dir.join(DEFAULT_CONFLIST_NAME);
        let tmp = dir.join(format!(".{DEFAULT_CONFLIST_NAME}.tmp"));
        let text = serde_json::to_vec_pretty(&self.conflist()?)?;
        std::fs::write(&tmp, text).map_err(CniError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(CniError::io(&path))?;
        tracing::info!(path = %path.display(), "wrote default CNI configuration");
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_conf_becomes_list_of_one() {
        let l = NetworkConfigList::parse(
            br#"{"cniVersion":"0.4.0","name":"n","type":"bridge","bridge":"b"}"#,
            Path::new("x.conf"),
        )
        .unwrap();
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(l.plugins[0]["bridge"], "b");
        assert_eq!(l.cni_version, "0.4.0");
    }

    #[test]
    fn rejects_list_without_name_or_types() {
        assert!(
            NetworkConfigList::parse(br#"{"plugins":[{"type":"x"}]}"#, Path::new("a")).is_err()
        );
        assert!(
            NetworkConfigList::parse(br#"{"name":"n","plugins":[{}]}"#, Path::new("a")).is_err()
        );
        assert!(NetworkConfigList::parse(b"[1]", Path::new("a")).is_err());
    }

    #[test]
    fn default_written_once_and_loaded_first_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = DefaultNetwork::new(vec!["10.42.3.0/24".into()]);
        let p = d.write_if_missing(dir.path()).unwrap().unwrap();
        assert!(p.ends_with(DEFAULT_CONFLIST_NAME));
        assert_eq!(d.write_if_missing(dir.path()).unwrap(), None);
        let l = NetworkConfigList::load_dir(dir.path()).unwrap().unwrap();
        assert_eq!(l.name, "bramble");
        assert_eq!(
            l.plugins[0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.3.0/24"
        );
        assert_eq!(l.plugins[1]["type"], "portmap");
        std::fs::write(
            dir.path().join("05-other.conflist"),
            br#"{"name":"other","cniVersion":"1.0.0","plugins":[{"type":"ptp"}]}"#,
        )
        .unwrap();
        let l = NetworkConfigList::load_dir(dir.path()).unwrap().unwrap();
        assert_eq!(l.name, "other");
    }

    #[test]
    fn bad_cidr_is_an_error() {
        assert!(DefaultNetwork::new(vec!["nope".into()]).conflist().is_err());
        assert!(DefaultNetwork::new(vec![]).conflist().is_err());
    }
}
