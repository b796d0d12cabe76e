//! Pod Security Admission's policy (upstream `k8s.io/pod-security-admission`) with no I/O:
//! the levels privileged, baseline and restricted chosen per namespace by the labels
//! `pod-security.kubernetes.io/{enforce,audit,warn}[-version]`, the checks of each level,
//! and upstream's wording of the 403 message and of warnings.
//!
//! Every version is checked with the latest checks; the version only appears in messages.

mod baseline;
pub mod lifecycle;
mod restricted;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Unrestricted.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Hardened best practice.
    Restricted,
}

impl Level {
    /// The level of a label value; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A level at a version (`restricted:latest`, `baseline:v1.30`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// `latest` or `v1.N`.
    pub version: String,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// Label prefix of the policy.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// The three modes of a namespace's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePolicy {
    /// Violations are refused (403).
    pub enforce: LevelVersion,
    /// Violations are annotated in the audit log.
    pub audit: LevelVersion,
    /// Violations are returned as warnings.
    pub warn: LevelVersion,
}

fn valid_version(v: &str) -> bool {
    v == "latest"
        || v.strip_prefix("v1.")
            .is_some_and(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_digit()))
}

fn mode(labels: &BTreeMap<String, String>, mode: &str) -> LevelVersion {
    let level = match labels.get(&format!("{LABEL_PREFIX}{mode}")) {
        None => Level::Privileged,
        // Upstream evaluates an invalid level as the most restrictive one.
        Some(v) => Level::parse(v).unwrap_or(Level::Restricted),
    };
    let version = labels
        .get(&format!("{LABEL_PREFIX}{mode}-version"))
        .filter(|v| valid_version(v))
        .cloned()
        .unwrap_or_else(|| "latest".to_string());
    LevelVersion { level, version }
}

impl NamespacePolicy {
    /// The policy of a namespace with `labels` (privileged where a mode has no label, as
    /// upstream's default configuration).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> NamespacePolicy {
        NamespacePolicy {
            enforce: mode(labels, "enforce"),
            audit: mode(labels, "audit"),
            warn: mode(labels, "warn"),
        }
    }
}

/// One failed check: its title (`allowPrivilegeEscalation != false`) and detail
/// (`container "c" must set securityContext.allowPrivilegeEscalation=false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Upstream's `ForbiddenReason`.
    pub reason: String,
    /// Upstream's `ForbiddenDetail`.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{} ({})", self.reason, self.detail)
        }
    }
}

/// The violations of `pod` against `level` (none for privileged), in upstream's order.
pub fn check(pod: &Pod, level: Level) -> Vec<Violation> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let mut found: Vec<(&'static str, Violation)> = Vec::new();
    if level >= Level::Baseline {
        found.extend(baseline::check(spec, &annotations));
    }
    if level >= Level::Restricted {
        // Upstream's restricted checks that replace baseline ones.
        found.retain(|(id, _)| !matches!(*id, "hostPathVolumes" | "seccompProfile_baseline"));
        found.extend(restricted::check(spec));
    }
    // Upstream reports in the order of the check IDs.
    found.sort_by(|a, b| a.0.cmp(b.0));
    found.into_iter().map(|(_, v)| v).collect()
}

/// `"; "`-joined list of why `pod` violates `lv`, or `None` when it does not.
pub fn violations_text(pod: &Pod, lv: &LevelVersion) -> Option<String> {
    let v = check(pod, lv.level);
    (!v.is_empty()).then(|| {
        v.iter()
            .map(Violation::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The 403 message upstream returns: `pods "x" is forbidden: violates PodSecurity
/// "restricted:latest": ...`.
pub fn forbidden_message(pod_name: &str, lv: &LevelVersion, violations: &str) -> String {
    format!("pods \"{pod_name}\" is forbidden: violates PodSecurity \"{lv}\": {violations}")
}

/// The warning upstream returns in warn mode.
pub fn warning(lv: &LevelVersion, violations: &str) -> String {
    format!("would violate PodSecurity \"{lv}\": {violations}")
}

/// What admission decides for a pod in a namespace with `policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The 403 message when enforce refuses the pod.
    pub forbidden: Option<String>,
    /// Warnings (warn mode).
    pub warnings: Vec<String>,
    /// `pod-security.kubernetes.io/audit-violations` annotation value (audit mode).
    pub audit: Option<String>,
}

/// Evaluates `pod` named `name` under `policy`.
pub fn admit(pod: &Pod, name: &str, policy: &NamespacePolicy) -> Decision {
    let mut d = Decision::default();
    if let Some(v) = violations_text(pod, &policy.enforce) {
        d.forbidden = Some(forbidden_message(name, &policy.enforce, &v));
    }
    if let Some(v) = violations_text(pod, &policy.warn) {
        d.warnings.push(warning(&policy.warn, &v));
    }
    if let Some(v) = violations_text(pod, &policy.audit) {
        d.audit = Some(warning(&policy.audit, &v));
    }
    d
}

/// Every container of the spec (init, regular, ephemeral as containers), as upstream's
/// `VisitContainers`.
pub(crate) fn containers(spec: &PodSpec) -> Vec<Container> {
    let mut out: Vec<Container> = spec.init_containers.clone().unwrap_or_default();
    out.extend(spec.containers.iter().cloned());
    for e in spec.ephemeral_containers.iter().flatten() {
        out.push(Container {
            name: e.name.clone(),
            security_context: e.security_context.clone(),
            ports: e.ports.clone(),
            ..Container::default()
        });
    }
    out
}

/// `"a", "b"`.
pub(crate) fn join_quote(items: &[String]) -> String {
    items
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A violation.
pub(crate) fn violation(reason: &str, detail: String) -> Violation {
    Violation {
        reason: reason.to_string(),
        detail,
    }
}

/// `container "a"` / `containers "a", "b"`.
pub(crate) fn pluralize(what: &str, names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    if names.len() == 1 {
        format!("{what} {}", quoted[0])
    } else {
        format!("{what}s {}", quoted.join(", "))
    }
}

#[cfg(test)]
mod tests;
