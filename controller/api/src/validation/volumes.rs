//! Pod volumes (`spec.volumes`) as upstream's `ValidateVolumes` checks them: unique DNS-1123
//! names, exactly one source each, and the sources Bramble runs checked in depth.

use std::collections::BTreeMap;

use serde_json::Value;

use super::field::{
    duplicate, forbidden, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::names::{is_config_map_key, is_dns1123_label, is_dns1123_subdomain};
use super::obj::{self, named};
use super::qty::{Qty, QtyExt};

const FILE_MODE_ERR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Every volume source field upstream knows, in upstream's check order.
const SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

/// Validates `spec.volumes`; returns the valid volumes by name (their source JSON) and errors.
pub fn volumes<'a>(list: &'a [Value], path: &Path) -> (BTreeMap<String, &'a Value>, ErrorList) {
    let mut errs = ErrorList::new();
    let mut by_name = BTreeMap::new();
    for (i, vol) in list.iter().enumerate() {
        let p = path.index(i);
        let name = obj::s(vol, "name");
        let mut el = source(vol, &p);
        if name.is_empty() {
            el.push(required(&p.child("name"), ""));
        } else {
            for m in is_dns1123_label(name) {
                el.push(invalid_str(&p.child("name"), name, &m));
            }
        }
        if by_name.contains_key(name) {
            el.push(duplicate(&p.child("name"), BadValue::Str(name.into())));
        }
        if el.is_empty() {
            by_name.insert(name.to_string(), vol);
        } else {
            errs.extend(el);
        }
    }
    (by_name, errs)
}

fn source(vol: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut count = 0;
    for src in SOURCES {
        let Some(v) = obj::get(vol, src) else {
            continue;
        };
        // Upstream misspells this one path.
        let child = if *src == "downwardAPI" {
            "downwarAPI"
        } else {
            src
        };
        if count > 0 {
            errs.push(forbidden(
                &p.child(child),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        let sp = p.child(src);
        errs.extend(match *src {
            "emptyDir" => empty_dir(v, &sp),
            "hostPath" => host_path(v, &sp),
            "secret" => secret_source(v, &sp),
            "configMap" => config_map_source(v, &sp),
            "persistentVolumeClaim" => {
                if obj::s(v, "claimName").is_empty() {
                    vec![required(&sp.child("claimName"), "")]
                } else {
                    vec![]
                }
            }
            "nfs" => nfs(v, &sp),
            "downwardAPI" => downward_api(v, &sp),
            "projected" => projected(v, &sp),
            "csi" => {
                let d = obj::s(v, "driver");
                let mut e = ErrorList::new();
                if d.is_empty() {
                    e.push(required(&sp.child("driver"), ""));
                }
                for m in is_dns1123_subdomain(&d.to_lowercase()) {
                    e.push(invalid_str(&sp.child("driver"), d, &m));
                }
                e
            }
            "ephemeral" => {
                if obj::get(v, "volumeClaimTemplate").is_none() {
                    vec![required(&sp.child("volumeClaimTemplate"), "")]
                } else {
                    vec![]
                }
            }
            "image" => {
                if obj::s(v, "reference").is_empty() {
                    vec![required(&sp.child("reference"), "")]
                } else {
                    vec![]
                }
            }
            _ => vec![],
        });
    }
    if count == 0 {
        errs.push(required(p, "must specify a volume type"));
    }
    errs
}

fn empty_dir(v: &Value, p: &Path) -> ErrorList {
    if let Some(limit) = obj::opt_s(v, "sizeLimit") {
        if Qty::parse(limit).map(|q| q.is_negative()).unwrap_or(true) {
            return vec![forbidden(
                &p.child("sizeLimit"),
                "SizeLimit field must be a valid resource quantity",
            )];
        }
    }
    if let Some(medium) = obj::opt_s(v, "medium") {
        if !["", "Memory", "HugePages"].contains(&medium) && !medium.starts_with("HugePages-") {
            return vec![not_supported(
                &p.child("medium"),
                named(medium),
                &["", "Memory", "HugePages"],
            )];
        }
    }
    vec![]
}

fn host_path(v: &Value, p: &Path) -> ErrorList {
    let path = obj::s(v, "path");
    if path.is_empty() {
        return vec![required(&p.child("path"), "")];
    }
    let mut errs = no_backsteps(path, &p.child("path"));
    if let Some(t) = obj::opt_s(v, "type") {
        let ok = [
            "",
            "DirectoryOrCreate",
            "Directory",
            "FileOrCreate",
            "File",
            "Socket",
            "CharDevice",
            "BlockDevice",
        ];
        if !ok.contains(&t) {
            errs.push(not_supported(
                &p.child("type"),
                named(t),
                &[
                    "",
                    "BlockDevice",
                    "CharDevice",
                    "Directory",
                    "DirectoryOrCreate",
                    "File",
                    "FileOrCreate",
                    "Socket",
                ],
            ));
        }
    }
    errs
}

fn nfs(v: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if obj::s(v, "server").is_empty() {
        errs.push(required(&p.child("server"), ""));
    }
    let path = obj::s(v, "path");
    if path.is_empty() {
        errs.push(required(&p.child("path"), ""));
    }
    if !path.starts_with('/') {
        errs.push(invalid_str(
            &p.child("path"),
            path,
            "must be an absolute path",
        ));
    }
    errs
}

fn mode(v: &Value, key: &str, p: &Path) -> ErrorList {
    match obj::opt_i(v, key) {
        Some(m) if !(0..=0o777).contains(&m) => {
            vec![invalid(&p.child(key), BadValue::Int(m), FILE_MODE_ERR)]
        }
        _ => vec![],
    }
}

fn key_to_path(kp: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if obj::s(kp, "key").is_empty() {
        errs.push(required(&p.child("key"), ""));
    }
    let path = obj::s(kp, "path");
    if path.is_empty() {
        errs.push(required(&p.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(path, &p.child("path")));
    errs.extend(mode(kp, "mode", p));
    errs
}

fn secret_source(v: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if obj::s(v, "secretName").is_empty() {
        errs.push(required(&p.child("secretName"), ""));
    }
    errs.extend(mode(v, "defaultMode", p));
    for (i, kp) in obj::arr(v, "items").iter().enumerate() {
        errs.extend(key_to_path(kp, &p.child("items").index(i)));
    }
    errs
}

fn config_map_source(v: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if obj::s(v, "name").is_empty() {
        errs.push(required(&p.child("name"), ""));
    }
    errs.extend(mode(v, "defaultMode", p));
    for (i, kp) in obj::arr(v, "items").iter().enumerate() {
        errs.extend(key_to_path(kp, &p.child("items").index(i)));
    }
    errs
}

const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

fn downward_file(f: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = obj::s(f, "path");
    if path.is_empty() {
        errs.push(required(&p.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(path, &p.child("path")));
    if let Some(fr) = obj::get(f, "fieldRef") {
        errs.extend(object_field_selector(
            fr,
            VOLUME_FIELD_PATHS,
            &p.child("fieldRef"),
        ));
        if obj::get(f, "resourceFieldRef").is_some() {
            errs.push(invalid_str(
                p,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(rf) = obj::get(f, "resourceFieldRef") {
        if obj::s(rf, "containerName").is_empty() {
            errs.push(required(
                &p.child("resourceFieldRef").child("containerName"),
                "",
            ));
        }
    } else {
        errs.push(required(
            p,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    errs.extend(mode(f, "mode", p));
    errs
}

/// `validateObjectFieldSelector` for downward API references.
pub fn object_field_selector(fs: &Value, allowed: &[&str], p: &Path) -> ErrorList {
    if obj::s(fs, "apiVersion").is_empty() {
        return vec![required(&p.child("apiVersion"), "")];
    }
    let fp = obj::s(fs, "fieldPath");
    if fp.is_empty() {
        return vec![required(&p.child("fieldPath"), "")];
    }
    if let Some((base, sub)) = split_subscript(fp) {
        return match base {
            "metadata.annotations" => super::meta::label_name(&sub.to_lowercase(), p),
            "metadata.labels" => super::meta::label_name(sub, p),
            _ => vec![invalid_str(p, base, "does not support subscript")],
        };
    }
    if !allowed.contains(&fp) {
        return vec![not_supported(
            &p.child("fieldPath"),
            BadValue::Str(fp.into()),
            allowed,
        )];
    }
    vec![]
}

/// `metadata.labels['key']` -> (`metadata.labels`, `key`).
fn split_subscript(fp: &str) -> Option<(&str, &str)> {
    let open = fp.find("['")?;
    if !fp.ends_with("']") {
        return None;
    }
    if open + 2 > fp.len() - 2 {
        return None;
    }
    Some((&fp[..open], &fp[open + 2..fp.len() - 2]))
}

fn downward_api(v: &Value, p: &Path) -> ErrorList {
    let mut errs = mode(v, "defaultMode", p);
    for f in obj::arr(v, "items") {
        errs.extend(downward_file(f, p));
    }
    errs
}

fn projected(v: &Value, p: &Path) -> ErrorList {
    let mut errs = mode(v, "defaultMode", p);
    let mut paths: Vec<String> = Vec::new();
    for (i, src) in obj::arr(v, "sources").iter().enumerate() {
        let sp = p.child("sources").index(i);
        let mut n = 0;
        for kind in ["secret", "configMap"] {
            if let Some(s) = obj::get(src, kind) {
                n += 1;
                let kp = sp.child(kind);
                if obj::s(s, "name").is_empty() {
                    errs.push(required(&kp.child("name"), ""));
                }
                for (j, item) in obj::arr(s, "items").iter().enumerate() {
                    errs.extend(key_to_path(item, &kp.child("items").index(j)));
                    let ip = obj::s(item, "path");
                    if !ip.is_empty() {
                        if paths.iter().any(|x| x == ip) {
                            errs.push(invalid_str(
                                p,
                                obj::s(s, "name"),
                                "conflicting duplicate paths",
                            ));
                        } else {
                            paths.push(ip.to_string());
                        }
                    }
                }
            }
        }
        if let Some(d) = obj::get(src, "downwardAPI") {
            n += 1;
            for f in obj::arr(d, "items") {
                errs.extend(downward_file(f, &sp.child("downwardAPI")));
            }
        }
        if let Some(t) = obj::get(src, "serviceAccountToken") {
            n += 1;
            let exp = obj::opt_i(t, "expirationSeconds").unwrap_or(3600);
            let ep = sp.child("serviceAccountToken").child("expirationSeconds");
            if exp < 600 {
                errs.push(invalid(
                    &ep,
                    BadValue::Int(exp),
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(invalid(
                    &ep,
                    BadValue::Int(exp),
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            let tp = obj::s(t, "path");
            if tp.is_empty() {
                errs.push(required(&p.child("path"), ""));
            } else {
                errs.extend(local_non_reserved_path(tp, &p.child("path")));
            }
        }
        if obj::get(src, "clusterTrustBundle").is_some() {
            n += 1;
        }
        if n > 1 {
            errs.push(forbidden(
                &sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

/// `validatePathNoBacksteps`.
pub fn no_backsteps(path: &str, p: &str) -> ErrorList {
    if path.split('/').any(|x| x == "..") {
        vec![invalid_str(p, path, "must not contain '..'")]
    } else {
        vec![]
    }
}

/// `validateLocalDescendingPath`.
pub fn local_descending_path(path: &str, p: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    if path.starts_with('/') {
        errs.push(invalid_str(p, path, "must be a relative path"));
    }
    errs.extend(no_backsteps(path, p));
    errs
}

/// `ValidateLocalNonReservedPath`.
pub fn local_non_reserved_path(path: &str, p: &str) -> ErrorList {
    let mut errs = local_descending_path(path, p);
    if path.starts_with("..") && !path.starts_with("../") {
        errs.push(invalid_str(p, path, "must not start with '..'"));
    }
    errs
}

/// `IsConfigMapKey` wrapped as errors (used by key selectors).
pub fn config_key(key: &str, p: &str) -> ErrorList {
    if key.is_empty() {
        return vec![required(p, "")];
    }
    is_config_map_key(key)
        .into_iter()
        .map(|m| invalid_str(p, key, &m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(list: Value) -> Vec<String> {
        let arr = list.as_array().unwrap().clone();
        let (_, errs) = volumes(&arr, &Path::new("spec").child("volumes"));
        errs.iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect()
    }

    #[test]
    fn one_source_and_unique_names() {
        assert_eq!(
            check(json!([{"name": "a"}])),
            vec!["spec.volumes[0]: Required value: must specify a volume type"]
        );
        assert_eq!(
            check(json!([{"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}}])),
            vec!["spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"]
        );
        assert_eq!(
            check(json!([{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}])),
            vec!["spec.volumes[1].name: Duplicate value: \"a\""]
        );
    }

    #[test]
    fn source_details() {
        assert_eq!(
            check(json!([{"name": "s", "secret": {"defaultMode": 1000}}])),
            vec![
                "spec.volumes[0].secret.secretName: Required value",
                "spec.volumes[0].secret.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
            ]
        );
        assert_eq!(
            check(json!([{"name": "h", "hostPath": {"path": "/a/../b"}}])),
            vec![
                "spec.volumes[0].hostPath.path: Invalid value: \"/a/../b\": must not contain '..'"
            ]
        );
        assert!(check(json!([{"name": "c", "configMap": {"name": "cm", "items": [{"key": "k", "path": "p"}]}}])).is_empty());
    }
}
