//! The kubelet configuration file (`bramble kubelet --config FILE`): a YAML subset of
//! upstream's `KubeletConfiguration` (`kubelet.config.k8s.io/v1beta1`) with the same field
//! names. Unknown fields are refused; every value is validated with an error naming its
//! field (`evictionHard[memory.available]: invalid quantity "12Zi"`). Flags given on the
//! command line override the file, as upstream.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bramble_api::quantity::Quantity;
use k8s_openapi::api::core::v1::Taint;
use serde::Deserialize;

use crate::config::KubeletConfig;
use crate::eviction::thresholds::{self, parse_go_duration, ThresholdError};

/// `apiVersion` a file must carry.
pub const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
/// `kind` a file must carry.
pub const KIND: &str = "KubeletConfiguration";
/// Resources `kubeReserved` and `systemReserved` may name.
const RESERVABLE: [&str; 4] = ["cpu", "memory", "ephemeral-storage", "pid"];

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("reading kubelet config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not YAML of the expected shape (unknown field, wrong type).
    #[error("kubelet config file {path}: {message}")]
    Decode { path: PathBuf, message: String },
    /// A field's value is invalid.
    #[error("kubelet config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The file's fields (each optional: an absent field keeps the default).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeletConfigFile {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub static_pod_path: Option<PathBuf>,
    pub file_check_frequency: Option<String>,
    pub max_pods: Option<u32>,
    pub pod_pids_limit: Option<i64>,
    pub kube_reserved: Option<BTreeMap<String, String>>,
    pub system_reserved: Option<BTreeMap<String, String>>,
    pub eviction_hard: Option<BTreeMap<String, String>>,
    pub eviction_soft: Option<BTreeMap<String, String>>,
    pub eviction_soft_grace_period: Option<BTreeMap<String, String>>,
    pub eviction_pressure_transition_period: Option<String>,
    pub eviction_max_pod_grace_period: Option<i64>,
    #[serde(rename = "imageGCHighThresholdPercent")]
    pub image_gc_high_threshold_percent: Option<i64>,
    #[serde(rename = "imageGCLowThresholdPercent")]
    pub image_gc_low_threshold_percent: Option<i64>,
    pub cgroup_root: Option<PathBuf>,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Option<Vec<String>>,
    pub cluster_domain: Option<String>,
    pub register_with_taints: Option<Vec<Taint>>,
    pub port: Option<u16>,
    pub node_status_update_frequency: Option<String>,
    pub node_status_report_frequency: Option<String>,
    pub node_lease_duration_seconds: Option<i32>,
}

/// Reads and decodes `path` (not yet validated: see [`KubeletConfigFile::apply`]).
pub fn load(path: &Path) -> Result<KubeletConfigFile, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|message| ConfigFileError::Decode {
        path: path.to_owned(),
        message,
    })
}

/// Decodes YAML (or JSON) text; an empty document is an empty configuration.
pub fn parse(text: &str) -> Result<KubeletConfigFile, String> {
    if text.trim().is_empty() {
        return Ok(KubeletConfigFile::default());
    }
    serde_norway::from_str(text).map_err(|e| e.to_string())
}

fn parse_reserved(
    field: &str,
    map: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Quantity>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        if !RESERVABLE.contains(&k.as_str()) {
            return Err(format!(
                "{field}[{k}]: unsupported resource (supported: {})",
                RESERVABLE.join(", ")
            ));
        }
        let q = Quantity::parse(v).map_err(|_| format!("{field}[{k}]: invalid quantity {v:?}"))?;
        if q.sign() < 0 {
            return Err(format!("{field}[{k}]: must be non-negative, got {v:?}"));
        }
        out.insert(k.clone(), q);
    }
    Ok(out)
}

fn duration(field: &str, v: &str) -> Result<std::time::Duration, String> {
    parse_go_duration(v).ok_or_else(|| format!("{field}: invalid duration {v:?}"))
}

fn percent(field: &str, v: i64) -> Result<u8, String> {
    u8::try_from(v)
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| format!("{field} ({v}) must be between 0 and 100, inclusive"))
}

impl KubeletConfigFile {
    /// Validates the file and writes its fields into `cfg` (which holds defaults; flags
    /// given on the command line are applied after this). Errors name the field.
    pub fn apply(&self, cfg: &mut KubeletConfig) -> Result<(), String> {
        if let Some(v) = self.api_version.as_deref().filter(|v| *v != API_VERSION) {
            return Err(format!(
                "apiVersion: unsupported {v:?} (want {API_VERSION:?})"
            ));
        }
        if let Some(k) = self.kind.as_deref().filter(|k| *k != KIND) {
            return Err(format!("kind: unsupported {k:?} (want {KIND:?})"));
        }
        if let Some(n) = self.max_pods {
            cfg.max_pods = n;
        }
        if let Some(p) = &self.static_pod_path {
            cfg.static_pod_path = Some(p.clone());
        }
        if let Some(v) = &self.file_check_frequency {
            let d = duration("fileCheckFrequency", v)?;
            if d.is_zero() {
                return Err(format!(
                    "fileCheckFrequency: must be greater than 0, got {v:?}"
                ));
            }
            cfg.file_check_frequency = d;
        }
        if let Some(l) = self.pod_pids_limit {
            if l != -1 && l <= 0 {
                return Err(format!(
                    "podPidsLimit: must be -1 (unlimited) or positive, got {l}"
                ));
            }
            cfg.pod_pids_limit = (l > 0).then_some(l);
        }
        if let Some(m) = &self.kube_reserved {
            cfg.kube_reserved = parse_reserved("kubeReserved", m)?;
        }
        if let Some(m) = &self.system_reserved {
            cfg.system_reserved = parse_reserved("systemReserved", m)?;
        }
        let empty = BTreeMap::new();
        let soft = self.eviction_soft.as_ref().unwrap_or(&empty);
        let grace = self.eviction_soft_grace_period.as_ref().unwrap_or(&empty);
        if self.eviction_hard.is_some() || !soft.is_empty() || !grace.is_empty() {
            let mut parsed = match &self.eviction_hard {
                Some(hard) => thresholds::parse_thresholds(hard, &empty, &empty),
                None => Ok(thresholds::default_hard()),
            }
            .map_err(|e: ThresholdError| e.to_string())?;
            parsed.extend(
                thresholds::parse_thresholds(&empty, soft, grace).map_err(|e| e.to_string())?,
            );
            cfg.eviction.thresholds = parsed;
        }
        if let Some(v) = &self.eviction_pressure_transition_period {
            cfg.eviction.pressure_transition_period =
                duration("evictionPressureTransitionPeriod", v)?;
        }
        if let Some(v) = self.eviction_max_pod_grace_period {
            if v < 0 {
                return Err(format!(
                    "evictionMaxPodGracePeriod: must be non-negative, got {v}"
                ));
            }
            cfg.eviction.max_pod_grace_period_seconds = v;
        }
        if let Some(v) = self.image_gc_high_threshold_percent {
            cfg.eviction.image_gc_high_percent = percent("imageGCHighThresholdPercent", v)?;
        }
        if let Some(v) = self.image_gc_low_threshold_percent {
            cfg.eviction.image_gc_low_percent = percent("imageGCLowThresholdPercent", v)?;
        }
        let (high, low) = (
            cfg.eviction.image_gc_high_percent,
            cfg.eviction.image_gc_low_percent,
        );
        if low >= high && high != 100 {
            return Err(format!(
                "imageGCLowThresholdPercent ({low}) must be less than imageGCHighThresholdPercent ({high})"
            ));
        }
        if let Some(r) = &self.cgroup_root {
            let rel = r.strip_prefix("/").unwrap_or(r);
            cfg.cgroup_parent = rel.to_path_buf();
        }
        if let Some(ips) = &self.cluster_dns {
            cfg.cluster_dns.servers = ips
                .iter()
                .enumerate()
                .map(|(i, ip)| {
                    ip.parse::<IpAddr>()
                        .map_err(|_| format!("clusterDNS[{i}]: invalid IP address {ip:?}"))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(d) = &self.cluster_domain {
            cfg.cluster_dns.domain = d.trim_end_matches('.').to_string();
        }
        if let Some(taints) = &self.register_with_taints {
            for (i, t) in taints.iter().enumerate() {
                if t.key.is_empty() {
                    return Err(format!("registerWithTaints[{i}].key: Required value"));
                }
                if !matches!(
                    t.effect.as_str(),
                    "NoSchedule" | "PreferNoSchedule" | "NoExecute"
                ) {
                    return Err(format!(
                        "registerWithTaints[{i}].effect: Unsupported value: {:?}: supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                        t.effect
                    ));
                }
            }
            cfg.register_with_taints = taints.clone();
        }
        if let Some(p) = self.port {
            if p == 0 {
                return Err("port: must be between 1 and 65535, inclusive".into());
            }
            cfg.kubelet_port = p;
        }
        if let Some(v) = &self.node_status_update_frequency {
            cfg.node_status_update_frequency = duration("nodeStatusUpdateFrequency", v)?;
        }
        if let Some(v) = &self.node_status_report_frequency {
            cfg.node_status_report_frequency = duration("nodeStatusReportFrequency", v)?;
        }
        if let Some(s) = self.node_lease_duration_seconds {
            if s <= 0 {
                return Err(format!(
                    "nodeLeaseDurationSeconds: must be greater than 0, got {s}"
                ));
            }
            cfg.lease_duration_seconds = s;
        }
        Ok(())
    }
}

/// Loads `path` and applies it to `cfg`; errors carry the path and name the field.
pub fn load_into(path: &Path, cfg: &mut KubeletConfig) -> Result<(), ConfigFileError> {
    load(path)?
        .apply(cfg)
        .map_err(|message| ConfigFileError::Invalid {
            path: path.to_owned(),
            message,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eviction::{Signal, ThresholdValue};
    use std::time::Duration;

    fn applied(yaml: &str) -> Result<KubeletConfig, String> {
        let mut cfg = KubeletConfig::new("n");
        parse(yaml)?.apply(&mut cfg)?;
        Ok(cfg)
    }

    fn refused(yaml: &str) -> String {
        applied(yaml).err().expect("the configuration is refused")
    }

    #[test]
    fn upstream_fields_apply() {
        let cfg = applied(
            r#"
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
maxPods: 42
podPidsLimit: 1024
kubeReserved: {cpu: 100m, memory: 256Mi}
systemReserved:
  memory: 128Mi
evictionHard:
  memory.available: 200Mi
  nodefs.available: 5%
evictionSoft: {memory.available: 400Mi}
evictionSoftGracePeriod: {memory.available: 30s}
evictionPressureTransitionPeriod: 1m
imageGCHighThresholdPercent: 90
imageGCLowThresholdPercent: 70
cgroupRoot: /bramble
clusterDNS: [10.43.0.10]
clusterDomain: cluster.local
registerWithTaints:
- {key: dedicated, value: edge, effect: NoSchedule}
nodeStatusUpdateFrequency: 5s
"#,
        )
        .unwrap();
        assert_eq!(cfg.max_pods, 42);
        assert_eq!(cfg.pod_pids_limit, Some(1024));
        assert_eq!(cfg.kube_reserved["cpu"].milli_value(), 100);
        assert_eq!(cfg.system_reserved["memory"].value(), 128 << 20);
        let t = &cfg.eviction.thresholds;
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].signal, Signal::MemoryAvailable);
        assert_eq!(t[0].value, ThresholdValue::Quantity(200 << 20));
        assert_eq!(t[2].grace_period, Duration::from_secs(30));
        assert_eq!(
            cfg.eviction.pressure_transition_period,
            Duration::from_secs(60)
        );
        assert_eq!(cfg.eviction.image_gc_low_percent, 70);
        assert_eq!(cfg.cgroup_parent, PathBuf::from("bramble"));
        assert_eq!(
            cfg.cluster_dns.servers,
            vec!["10.43.0.10".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(cfg.cluster_dns.domain, "cluster.local");
        assert_eq!(cfg.register_with_taints[0].key, "dedicated");
        assert_eq!(cfg.node_status_update_frequency, Duration::from_secs(5));
    }

    #[test]
    fn static_pod_fields() {
        let cfg =
            applied("staticPodPath: /etc/bramble/manifests\nfileCheckFrequency: 2s\n").unwrap();
        assert_eq!(
            cfg.static_pods_dir(),
            (PathBuf::from("/etc/bramble/manifests"), false)
        );
        assert_eq!(cfg.file_check_frequency, Duration::from_secs(2));
        let defaults = applied("").unwrap();
        assert_eq!(
            defaults.static_pods_dir().0,
            defaults.data_dir.join("manifests")
        );
        assert_eq!(defaults.file_check_frequency, Duration::from_secs(20));
        assert_eq!(
            refused("fileCheckFrequency: soon"),
            "fileCheckFrequency: invalid duration \"soon\""
        );
        assert_eq!(
            refused("fileCheckFrequency: 0s"),
            "fileCheckFrequency: must be greater than 0, got \"0s\""
        );
    }

    #[test]
    fn soft_thresholds_alone_keep_default_hard_ones() {
        let cfg = applied(
            "evictionSoft: {memory.available: 1Gi}\nevictionSoftGracePeriod: {memory.available: 1m}\n",
        )
        .unwrap();
        assert_eq!(cfg.eviction.thresholds.len(), 5);
    }

    #[test]
    fn errors_name_the_field() {
        let e = refused("evictionHard: {memory.available: 12Zi}");
        assert_eq!(
            e,
            "evictionHard[memory.available]: invalid quantity \"12Zi\""
        );
        let e = refused("kubeReserved: {memory: lots}");
        assert_eq!(e, "kubeReserved[memory]: invalid quantity \"lots\"");
        let e = refused("bogusField: 1");
        assert!(e.contains("unknown field `bogusField`"), "{e}");
        let e = refused("maxPods: many");
        assert!(e.contains("maxPods"), "{e}");
        let e = refused("imageGCHighThresholdPercent: 50\nimageGCLowThresholdPercent: 60");
        assert!(e.starts_with("imageGCLowThresholdPercent (60)"), "{e}");
        let e = refused("clusterDNS: [not-an-ip]");
        assert!(e.starts_with("clusterDNS[0]"), "{e}");
        let e = refused("kind: Pod");
        assert!(e.starts_with("kind:"), "{e}");
        let e = refused("registerWithTaints: [{key: a, effect: Sometimes}]");
        assert!(e.starts_with("registerWithTaints[0].effect"), "{e}");
    }
}
