//! Pod Security Admission beyond pod creation, as upstream's plugin: which pod updates are
//! evaluated, the pod template of workload kinds (warn and audit only), and the warnings
//! for existing pods when a namespace's enforce level is tightened.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;

use super::{check, Level, LevelVersion, NamespacePolicy};

/// Upstream's `namespaceMaxPodsToCheck`.
pub const MAX_PODS_TO_CHECK: usize = 3000;

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Whether a pod update can change what the policy sees (upstream `isSignificantPodUpdate`:
/// the only policy-relevant mutable fields of a pod are images, seccomp annotations and
/// ephemeral containers).
pub fn is_significant_pod_update(pod: &Pod, old: &Pod) -> bool {
    let ann = |p: &Pod, k: &str| -> Option<String> {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k).cloned())
    };
    if ann(pod, SECCOMP_POD_ANNOTATION) != ann(old, SECCOMP_POD_ANNOTATION) {
        return true;
    }
    let (Some(spec), Some(old_spec)) = (pod.spec.as_ref(), old.spec.as_ref()) else {
        return pod.spec.is_some() != old.spec.is_some();
    };
    let container_changed = |c: &Container, o: &Container| {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION}{}", c.name);
        c.image != o.image || ann(pod, &key) != ann(old, &key)
    };
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let old_init = old_spec.init_containers.as_deref().unwrap_or_default();
    if spec.containers.len() != old_spec.containers.len() || init.len() != old_init.len() {
        return true;
    }
    if spec
        .containers
        .iter()
        .zip(&old_spec.containers)
        .chain(init.iter().zip(old_init))
        .any(|(c, o)| container_changed(c, o))
    {
        return true;
    }
    let old_ephemeral = old_spec.ephemeral_containers.as_deref().unwrap_or_default();
    spec.ephemeral_containers.iter().flatten().any(|e| {
        match old_ephemeral.iter().find(|o| o.name == e.name) {
            None => true,
            Some(o) => {
                let key = format!("{SECCOMP_CONTAINER_ANNOTATION}{}", e.name);
                e.image != o.image || ann(pod, &key) != ann(old, &key)
            }
        }
    })
}

/// The pod template of a workload object (`spec.template`, a CronJob's
/// `spec.jobTemplate.spec.template`, a PodTemplate's `template`) as a Pod, when the kind
/// has one and the object carries it.
pub fn template_pod(group: &str, resource: &str, obj: &Value) -> Option<Pod> {
    let template = match (group, resource) {
        ("", "podtemplates") => obj.get("template"),
        ("", "replicationcontrollers")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => obj.pointer("/spec/template"),
        ("batch", "cronjobs") => obj.pointer("/spec/jobTemplate/spec/template"),
        _ => None,
    }?;
    serde_json::from_value(template.clone()).ok()
}

/// Whether changing a namespace's policy from `old` to `new` calls for checking its pods
/// (upstream: not when enforce is unchanged, privileged, or relaxed at the same version).
pub fn enforce_tightened(old: &NamespacePolicy, new: &NamespacePolicy) -> bool {
    if new.enforce == old.enforce || new.enforce.level == Level::Privileged {
        return false;
    }
    !(new.enforce.version == old.enforce.version && new.enforce.level <= old.enforce.level)
}

/// Upstream's warnings for the existing `pods` of `namespace` against a new enforce level:
/// one line saying they violate it, then one per distinct set of violated checks, naming the
/// lexically first pod and how many others share it.
pub fn existing_pod_warnings(namespace: &str, enforce: &LevelVersion, pods: &[Pod]) -> Vec<String> {
    let checked = &pods[..pods.len().min(MAX_PODS_TO_CHECK)];
    // reasons -> (first pod name, count), in order of first appearance
    let mut groups: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for pod in checked {
        let violations = check(pod, enforce.level);
        if violations.is_empty() {
            continue;
        }
        let reasons = violations
            .iter()
            .map(|v| v.reason.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let name = pod.metadata.name.clone().unwrap_or_default();
        let entry = groups.entry(reasons).or_insert_with(|| (name.clone(), 0));
        if name < entry.0 {
            entry.0 = name;
        }
        entry.1 += 1;
    }
    let mut warnings = Vec::new();
    if checked.len() < pods.len() {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {} of {} existing pods",
            checked.len(),
            pods.len()
        ));
    }
    if groups.is_empty() {
        return warnings;
    }
    warnings.push(format!(
        "existing pods in namespace {namespace:?} violate the new PodSecurity enforce level \"{enforce}\""
    ));
    let mut per_pod: Vec<String> = groups
        .into_iter()
        .map(|(reasons, (name, count))| match count {
            1 => format!("{name}: {reasons}"),
            2 => format!("{name} (and 1 other pod): {reasons}"),
            n => format!("{name} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    per_pod.sort();
    warnings.extend(per_pod);
    warnings
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, spec: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> NamespacePolicy {
        NamespacePolicy::from_labels(
            &pairs
                .iter()
                .map(|(k, v)| (format!("{}{k}", super::super::LABEL_PREFIX), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn only_image_seccomp_and_ephemeral_changes_are_significant() {
        let old = pod("p", json!({"containers": [{"name": "c", "image": "a"}]}));
        let mut labelled = old.clone();
        labelled.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        assert!(!is_significant_pod_update(&labelled, &old));
        let image = pod("p", json!({"containers": [{"name": "c", "image": "b"}]}));
        assert!(is_significant_pod_update(&image, &old));
        let mut seccomp = old.clone();
        seccomp.metadata.annotations = Some(
            [(
                "container.seccomp.security.alpha.kubernetes.io/c".to_string(),
                "unconfined".to_string(),
            )]
            .into(),
        );
        assert!(is_significant_pod_update(&seccomp, &old));
        let debug = pod(
            "p",
            json!({"containers": [{"name": "c", "image": "a"}],
                "ephemeralContainers": [{"name": "debugger", "image": "busybox"}]}),
        );
        assert!(is_significant_pod_update(&debug, &old));
        assert!(!is_significant_pod_update(&debug, &debug));
    }

    #[test]
    fn templates_of_workload_kinds() {
        let dep =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}});
        assert!(template_pod("apps", "deployments", &dep).is_some());
        let cj = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}}}});
        assert!(template_pod("batch", "cronjobs", &cj).is_some());
        assert!(template_pod("", "configmaps", &dep).is_none());
    }

    #[test]
    fn tightening_is_what_upstream_checks() {
        let privileged = labels(&[]);
        let baseline = labels(&[("enforce", "baseline")]);
        let restricted = labels(&[("enforce", "restricted")]);
        assert!(enforce_tightened(&privileged, &baseline));
        assert!(enforce_tightened(&baseline, &restricted));
        assert!(!enforce_tightened(&restricted, &baseline));
        assert!(!enforce_tightened(&baseline, &baseline));
        assert!(!enforce_tightened(&baseline, &privileged));
        // a version change is checked even when the level is the same or lower
        let pinned = labels(&[("enforce", "baseline"), ("enforce-version", "v1.30")]);
        assert!(enforce_tightened(&restricted, &pinned));
    }

    #[test]
    fn existing_pods_are_grouped_by_violated_checks() {
        let privileged = |name: &str| {
            pod(
                name,
                json!({"containers": [{"name": "c", "image": "a",
                    "securityContext": {"privileged": true}}]}),
            )
        };
        let host = pod(
            "h",
            json!({"hostNetwork": true, "containers": [{"name": "c", "image": "a"}]}),
        );
        let fine = pod("ok", json!({"containers": [{"name": "c", "image": "a"}]}));
        let lv = labels(&[("enforce", "baseline")]).enforce;
        let w = existing_pod_warnings(
            "team",
            &lv,
            &[
                privileged("p2"),
                fine,
                privileged("p1"),
                host,
                privileged("p3"),
            ],
        );
        assert_eq!(
            w,
            vec![
                "existing pods in namespace \"team\" violate the new PodSecurity enforce level \"baseline:latest\"".to_string(),
                "h: host namespaces".to_string(),
                "p1 (and 2 other pods): privileged".to_string(),
            ]
        );
        assert!(existing_pod_warnings("team", &lv, &[]).is_empty());
    }
}
