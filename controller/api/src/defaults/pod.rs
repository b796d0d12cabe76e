//! Pod, PodSpec and container defaults (`SetDefaults_Pod`, `SetDefaults_PodSpec`,
//! `SetDefaults_Container`, probes, ports, volumes), shared by every pod template.

use serde_json::{json, Value};

use super::{as_map, child, each, get_obj, set_if_empty, set_if_nil};

/// Defaults a whole Pod: the spec defaults plus the Pod-only ones (service links, requests
/// copied from limits).
pub fn default_pod(pod: &mut Value) {
    let spec = child(pod, "spec");
    default_pod_spec(spec);
    set_if_nil(spec, "enableServiceLinks", Value::Bool(true));
    for key in ["containers", "initContainers"] {
        each(spec, key, requests_from_limits);
    }
}

/// Defaults a PodTemplateSpec (`{metadata, spec}`) as embedded in workloads.
pub fn default_pod_template(template: &mut Value) {
    default_pod_spec(child(template, "spec"));
}

/// `SetDefaults_PodSpec` and everything nested in a PodSpec.
pub fn default_pod_spec(spec: &mut Value) {
    set_if_empty(spec, "dnsPolicy", "ClusterFirst");
    set_if_empty(spec, "restartPolicy", "Always");
    set_if_nil(spec, "securityContext", json!({}));
    set_if_nil(spec, "terminationGracePeriodSeconds", json!(30));
    set_if_empty(spec, "schedulerName", "default-scheduler");
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for key in ["containers", "initContainers"] {
        each(spec, key, |c| {
            default_container(c);
            if host_network {
                each(c, "ports", |p| {
                    let hp = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                    if hp == 0 {
                        let cp = p.get("containerPort").cloned().unwrap_or(Value::Null);
                        as_map(p).insert("hostPort".into(), cp);
                    }
                });
            }
        });
    }
    each(spec, "ephemeralContainers", default_container);
    each(spec, "volumes", default_volume);
}

/// `SetDefaults_Container` plus its ports, env, probes and lifecycle hooks.
fn default_container(c: &mut Value) {
    let has_policy = c
        .get("imagePullPolicy")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has_policy {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = if image_tag(image).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        as_map(c).insert("imagePullPolicy".into(), json!(policy));
    }
    set_if_empty(c, "terminationMessagePath", "/dev/termination-log");
    // Upstream's ResourceRequirements is a struct, so stored containers always carry it.
    set_if_nil(c, "resources", json!({}));
    set_if_empty(c, "terminationMessagePolicy", "File");
    each(c, "ports", |p| set_if_empty(p, "protocol", "TCP"));
    each(c, "env", |e| {
        if let Some(fr) = get_obj(e, "valueFrom").and_then(|vf| get_obj(vf, "fieldRef")) {
            set_if_empty(fr, "apiVersion", "v1");
        }
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = get_obj(c, probe) {
            set_if_nil(p, "timeoutSeconds", json!(1));
            set_if_nil(p, "periodSeconds", json!(10));
            set_if_nil(p, "successThreshold", json!(1));
            set_if_nil(p, "failureThreshold", json!(3));
            default_handler(p);
        }
    }
    if let Some(lc) = get_obj(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = get_obj(lc, hook) {
                default_handler(h);
            }
        }
    }
}

/// `SetDefaults_HTTPGetAction`.
fn default_handler(h: &mut Value) {
    if let Some(g) = get_obj(h, "httpGet") {
        set_if_empty(g, "path", "/");
        set_if_empty(g, "scheme", "HTTP");
    }
}

/// The tag `parsers.ParseImageName` finds: `latest` when neither tag nor digest is given,
/// `None` for digest-only references.
pub fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => Some(tag.to_string()),
        _ if digest => None,
        _ => Some("latest".into()),
    }
}

/// `SetDefaults_Pod`: requests default to limits for resources with only a limit.
fn requests_from_limits(c: &mut Value) {
    let Some(limits) = c
        .get("resources")
        .and_then(|r| r.get("limits"))
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let resources = child(c, "resources");
    let requests = child(resources, "requests");
    let req = as_map(requests);
    for (k, v) in limits {
        req.entry(k).or_insert(v);
    }
}

/// `SetDefaults_Volume` and the defaults of each volume source.
fn default_volume(v: &mut Value) {
    const SOURCES: &[&str] = &[
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    ];
    if !SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
    {
        as_map(v).insert("emptyDir".into(), json!({}));
    }
    for (src, mode) in [
        ("secret", "defaultMode"),
        ("configMap", "defaultMode"),
        ("downwardAPI", "defaultMode"),
        ("projected", "defaultMode"),
    ] {
        if let Some(s) = get_obj(v, src) {
            set_if_nil(s, mode, json!(420));
        }
    }
    if let Some(h) = get_obj(v, "hostPath") {
        set_if_nil(h, "type", json!(""));
    }
    if let Some(d) = get_obj(v, "downwardAPI") {
        each(d, "items", default_downward_file);
    }
    if let Some(p) = get_obj(v, "projected") {
        each(p, "sources", |s| {
            if let Some(t) = get_obj(s, "serviceAccountToken") {
                set_if_nil(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = get_obj(s, "downwardAPI") {
                each(d, "items", default_downward_file);
            }
        });
    }
    if let Some(iscsi) = get_obj(v, "iscsi") {
        set_if_empty(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = get_obj(v, "rbd") {
        set_if_empty(rbd, "pool", "rbd");
        set_if_empty(rbd, "user", "admin");
        set_if_empty(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(az) = get_obj(v, "azureDisk") {
        set_if_nil(az, "cachingMode", json!("ReadWrite"));
        set_if_nil(az, "fsType", json!("ext4"));
        set_if_nil(az, "readOnly", json!(false));
        set_if_nil(az, "kind", json!("Shared"));
    }
    if let Some(eph) = get_obj(v, "ephemeral") {
        if let Some(t) = get_obj(eph, "volumeClaimTemplate") {
            set_if_nil(child(t, "spec"), "volumeMode", json!("Filesystem"));
        }
    }
}

fn default_downward_file(f: &mut Value) {
    if let Some(fr) = get_obj(f, "fieldRef") {
        set_if_empty(fr, "apiVersion", "v1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx").as_deref(), Some("latest"));
        assert_eq!(image_tag("nginx:latest").as_deref(), Some("latest"));
        assert_eq!(image_tag("nginx:1.27").as_deref(), Some("1.27"));
        assert_eq!(image_tag("localhost:5000/app").as_deref(), Some("latest"));
        assert_eq!(image_tag("localhost:5000/app:v2").as_deref(), Some("v2"));
        assert_eq!(image_tag("nginx@sha256:abc"), None);
    }
}
