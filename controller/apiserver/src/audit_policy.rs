//! The audit policy: which requests the audit log records, as upstream's
//! `audit.k8s.io/v1` Policy (`--audit-policy-file`). Rules are checked in order and the first
//! that matches decides the level; a request no rule matches is not logged (upstream).
//!
//! Bramble records the mutating requests only, at level Metadata, so of upstream's levels a
//! policy may use `None` and `Metadata`; `Request` and `RequestResponse` are refused at load
//! (the log would claim bodies it does not hold).
//!
//! Without a policy file, [`AuditPolicy::default`] applies: like upstream's GCE/kube-up
//! policy it drops the high-volume, low-risk requests (Events; here also the Lease renewals
//! of node heartbeats and leader election, one every 10 s per node and every 2 s per
//! elected controller, which on a Pi's SD card were most of the idle writes) and logs
//! everything else at Metadata.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use bramble_auth::Attributes;

/// How much of a request is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Level {
    /// Not logged.
    None,
    /// User, verb, object reference, response code and times; no bodies.
    Metadata,
    /// Upstream's level with the request body: refused at load.
    Request,
    /// Upstream's level with both bodies: refused at load.
    RequestResponse,
}

/// Resources of one API group a rule matches (upstream `GroupResources`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupResources {
    /// The API group; empty is the core group.
    #[serde(default)]
    pub group: String,
    /// `pods`, `pods/status`, `pods/*`, `*/status` or `*`; empty: every resource of the group.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names; empty: any.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// One rule (upstream `PolicyRule`); an empty list matches anything.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRule {
    pub level: Level,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub user_groups: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    /// Namespaces; `""` matches cluster-scoped objects.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Non-resource paths, a trailing `*` matching a prefix.
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    /// Accepted for compatibility; Bramble only has the ResponseComplete stage.
    #[serde(default)]
    pub omit_stages: Vec<String>,
}

/// The `audit.k8s.io/v1` Policy document.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyDoc {
    api_version: String,
    kind: String,
    #[serde(default)]
    rules: Vec<PolicyRule>,
    #[serde(default)]
    #[allow(dead_code)]
    omit_stages: Vec<String>,
}

/// Errors loading a policy file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading audit policy {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit policy {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The rules in force.
#[derive(Debug, Clone)]
pub struct AuditPolicy {
    rules: Vec<PolicyRule>,
}

fn rule(level: Level) -> PolicyRule {
    PolicyRule {
        level,
        users: Vec::new(),
        user_groups: Vec::new(),
        verbs: Vec::new(),
        resources: Vec::new(),
        namespaces: Vec::new(),
        non_resource_urls: Vec::new(),
        omit_stages: Vec::new(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn group(group: &str, resources: &[&str]) -> GroupResources {
    GroupResources {
        group: group.into(),
        resources: strings(resources),
        resource_names: Vec::new(),
    }
}

impl Default for AuditPolicy {
    fn default() -> Self {
        let leases = vec![group("coordination.k8s.io", &["leases"])];
        AuditPolicy {
            rules: vec![
                // Node heartbeats: every kubelet renews its Lease every 10 s.
                PolicyRule {
                    user_groups: strings(&["system:nodes"]),
                    verbs: strings(&["update", "patch"]),
                    namespaces: strings(&["kube-node-lease"]),
                    resources: leases.clone(),
                    ..rule(Level::None)
                },
                // Leader election renewals of the controller components.
                PolicyRule {
                    users: strings(&["system:kube-controller-manager", "system:kube-scheduler"]),
                    verbs: strings(&["update", "patch"]),
                    namespaces: strings(&["kube-system"]),
                    resources: leases,
                    ..rule(Level::None)
                },
                // Upstream's GCE policy: "Don't log events requests because of performance
                // impact."
                PolicyRule {
                    resources: vec![group("", &["events"]), group("events.k8s.io", &["events"])],
                    ..rule(Level::None)
                },
                rule(Level::Metadata),
            ],
        }
    }
}

/// Upstream's wildcard: `*` anything, a trailing `*` a prefix.
fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

fn resource_matches(rule: &GroupResources, attrs: &Attributes) -> bool {
    if rule.group != attrs.api_group {
        return false;
    }
    if !rule.resource_names.is_empty() && !rule.resource_names.contains(&attrs.name) {
        return false;
    }
    if rule.resources.is_empty() {
        return true;
    }
    let full = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    rule.resources.iter().any(|r| {
        r == "*"
            || *r == full
            || r.strip_suffix("/*")
                .is_some_and(|res| res == attrs.resource && !attrs.subresource.is_empty())
            || r.strip_prefix("*/")
                .is_some_and(|sub| sub == attrs.subresource)
    })
}

impl PolicyRule {
    /// Upstream's `ruleMatches`.
    fn matches(&self, attrs: &Attributes) -> bool {
        if !self.users.is_empty() && !self.users.contains(&attrs.user.name) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !attrs
                .user
                .groups
                .iter()
                .any(|g| self.user_groups.contains(g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&attrs.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            if !attrs.resource_request {
                return false;
            }
            if !self.namespaces.is_empty() && !self.namespaces.contains(&attrs.namespace) {
                return false;
            }
            if !self.resources.is_empty()
                && !self.resources.iter().any(|r| resource_matches(r, attrs))
            {
                return false;
            }
        }
        if !self.non_resource_urls.is_empty() {
            if attrs.resource_request {
                return false;
            }
            if !self
                .non_resource_urls
                .iter()
                .any(|p| path_matches(p, &attrs.path))
            {
                return false;
            }
        }
        true
    }
}

impl AuditPolicy {
    /// The level of a request: the first matching rule's, `None` when none matches.
    pub fn level(&self, attrs: &Attributes) -> Level {
        self.rules
            .iter()
            .find(|r| r.matches(attrs))
            .map_or(Level::None, |r| r.level)
    }

    /// Parses a policy document (YAML or JSON); errors name the field.
    pub fn parse(text: &str) -> Result<AuditPolicy, String> {
        let doc: PolicyDoc = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        if !matches!(
            doc.api_version.as_str(),
            "audit.k8s.io/v1" | "audit.k8s.io/v1beta1"
        ) {
            return Err(format!(
                "apiVersion: {:?} is not audit.k8s.io/v1",
                doc.api_version
            ));
        }
        if doc.kind != "Policy" {
            return Err(format!("kind: {:?} is not Policy", doc.kind));
        }
        for (i, r) in doc.rules.iter().enumerate() {
            if matches!(r.level, Level::Request | Level::RequestResponse) {
                return Err(format!(
                    "rules[{i}].level: {:?} is not supported (Bramble records Metadata only); use None or Metadata",
                    r.level
                ));
            }
            if !r.non_resource_urls.is_empty()
                && (!r.resources.is_empty() || !r.namespaces.is_empty())
            {
                return Err(format!(
                    "rules[{i}].nonResourceURLs: may not be combined with resources or namespaces"
                ));
            }
        }
        Ok(AuditPolicy { rules: doc.rules })
    }

    /// Loads `--audit-policy-file`.
    pub fn load(path: &Path) -> Result<AuditPolicy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        AuditPolicy::parse(&text).map_err(|message| PolicyError::Invalid {
            path: path.to_owned(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(user: &str, groups: &[&str], verb: &str, group: &str, resource: &str) -> Attributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes::resource(
            bramble_pki::UserInfo {
                name: user.into(),
                uid: String::new(),
                groups: strings(groups),
            },
            verb,
            group,
            resource,
            sub,
            "kube-node-lease",
            "node1",
        )
    }

    #[test]
    fn default_drops_heartbeats_and_events_only() {
        let p = AuditPolicy::default();
        let node = ["system:nodes", "system:authenticated"];
        let lease = attrs(
            "system:node:node1",
            &node,
            "patch",
            "coordination.k8s.io",
            "leases",
        );
        assert_eq!(p.level(&lease), Level::None);
        // a node creating its Lease, or deleting one, is still logged
        let create = attrs(
            "system:node:node1",
            &node,
            "create",
            "coordination.k8s.io",
            "leases",
        );
        assert_eq!(p.level(&create), Level::Metadata);
        let mut other_ns = lease.clone();
        other_ns.namespace = "default".into();
        assert_eq!(p.level(&other_ns), Level::Metadata);
        let event = attrs("alice", &[], "create", "", "events");
        assert_eq!(p.level(&event), Level::None);
        let status = attrs("system:node:node1", &node, "patch", "", "nodes/status");
        assert_eq!(p.level(&status), Level::Metadata);
        let user_lease = attrs("alice", &[], "update", "coordination.k8s.io", "leases");
        assert_eq!(p.level(&user_lease), Level::Metadata);
    }

    #[test]
    fn file_policy_first_match_wins_and_unmatched_is_none() {
        let p = AuditPolicy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
             - level: None\n  resources:\n  - group: \"\"\n    resources: [\"*/status\"]\n\
             - level: Metadata\n  verbs: [delete]\n  resources:\n  - group: \"\"\n    resources: [\"pods\"]\n",
        )
        .unwrap();
        assert_eq!(
            p.level(&attrs("a", &[], "patch", "", "pods/status")),
            Level::None
        );
        assert_eq!(
            p.level(&attrs("a", &[], "delete", "", "pods")),
            Level::Metadata
        );
        assert_eq!(p.level(&attrs("a", &[], "create", "", "pods")), Level::None);
        assert_eq!(
            p.level(&attrs("a", &[], "delete", "apps", "pods")),
            Level::None
        );
    }

    #[test]
    fn bad_policies_name_the_field() {
        let e = AuditPolicy::parse("apiVersion: v1\nkind: Policy\n").unwrap_err();
        assert!(e.starts_with("apiVersion:"), "{e}");
        let e = AuditPolicy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n- level: RequestResponse\n",
        )
        .unwrap_err();
        assert!(e.starts_with("rules[1].level:"), "{e}");
        let e = AuditPolicy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n",
        )
        .unwrap_err();
        assert!(e.contains("Loud"), "{e}");
    }
}
