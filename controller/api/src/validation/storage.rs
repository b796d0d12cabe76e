//! PersistentVolumes and PersistentVolumeClaims as upstream's `ValidatePersistentVolume(Claim)`
//! and their update rules check them.

use serde_json::Value;

use super::compute::quantity;
use super::field::{forbidden, invalid, invalid_str, not_supported, required, ErrorList, Path};
use super::meta::{label_selector, FIELD_IMMUTABLE};
use super::names::is_dns1123_subdomain;
use super::obj::{self, bad, named};
use super::qty::Qty;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn access_modes(spec: &Value, p: &Path, required_detail: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let modes = obj::strings(spec, "accessModes");
    if modes.is_empty() {
        errs.push(required(&p.child("accessModes"), required_detail));
    }
    let (mut rwop, mut other) = (false, false);
    for m in &modes {
        if !ACCESS_MODES.contains(m) {
            errs.push(not_supported(
                &p.child("accessModes"),
                named(m),
                ACCESS_MODES,
            ));
        } else if *m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(forbidden(
            &p.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

fn volume_mode(spec: &Value, p: &Path) -> ErrorList {
    match obj::opt_s(spec, "volumeMode") {
        Some(m) if m != "Block" && m != "Filesystem" => {
            vec![not_supported(
                &p.child("volumeMode"),
                named(m),
                &["Block", "Filesystem"],
            )]
        }
        _ => vec![],
    }
}

const PV_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

/// `ValidatePersistentVolume` (+ update rules), ObjectMeta excluded.
pub fn persistent_volume(pv: &Value, old: Option<&Value>) -> ErrorList {
    let sp = Path::new("spec");
    let empty = Value::Null;
    let spec = obj::get(pv, "spec").unwrap_or(&empty);
    let mut errs = access_modes(spec, &sp, "");
    let cap = obj::keys(spec, "capacity");
    if cap.is_empty() {
        errs.push(required(&sp.child("capacity"), ""));
    }
    if !cap.contains(&"storage") || cap.len() > 1 {
        errs.push(not_supported(
            &sp.child("capacity"),
            match spec.get("capacity").filter(|c| c.is_object()) {
                None => super::field::BadValue::GoRepr("core.ResourceList(nil)".into()),
                Some(c) => bad(Some(c)),
            },
            &["storage"],
        ));
    }
    for k in &cap {
        let p = sp.child("capacity").key(k);
        match quantity(&spec["capacity"][*k], &p) {
            Ok(q) if q.nanos() <= 0 => {
                errs.push(invalid_str(&p, &q.canonical(), "must be greater than zero"))
            }
            Ok(_) => {}
            Err(e) => errs.extend(e),
        }
    }
    if let Some(rp) = obj::opt_s(spec, "persistentVolumeReclaimPolicy") {
        if !["Delete", "Recycle", "Retain"].contains(&rp) {
            errs.push(not_supported(
                &sp.child("persistentVolumeReclaimPolicy"),
                named(rp),
                &["Delete", "Recycle", "Retain"],
            ));
        }
    }
    let mut n = 0;
    for src in PV_SOURCES {
        if obj::get(spec, src).is_none() {
            continue;
        }
        if n > 0 {
            errs.push(forbidden(
                &sp.child(src),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        n += 1;
        let v = &spec[*src];
        if (*src == "hostPath" || *src == "local") && obj::s(v, "path").is_empty() {
            errs.push(required(&sp.child(src).child("path"), ""));
        }
        if *src == "local" && obj::get(spec, "nodeAffinity").is_none() {
            errs.push(required(
                &sp.child("nodeAffinity"),
                "Local volume requires node affinity",
            ));
        }
        if *src == "csi" {
            if obj::s(v, "driver").is_empty() {
                errs.push(required(&sp.child("csi").child("driver"), ""));
            }
            if obj::s(v, "volumeHandle").is_empty() {
                errs.push(required(&sp.child("csi").child("volumeHandle"), ""));
            }
        }
    }
    if n == 0 {
        errs.push(required(&sp, "must specify a volume type"));
    }
    let sc = obj::s(spec, "storageClassName");
    if !sc.is_empty() {
        errs.extend(
            is_dns1123_subdomain(sc)
                .into_iter()
                .map(|m| invalid_str(&sp.child("storageClassName"), sc, &m)),
        );
    }
    errs.extend(volume_mode(spec, &sp));
    if let Some(old) = old {
        let os = obj::get(old, "spec").unwrap_or(&empty);
        let source_changed = PV_SOURCES
            .iter()
            .any(|s| !obj::same(spec.get(*s), os.get(*s)));
        if source_changed {
            errs.push(forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation\n",
            ));
        }
        if !obj::same(spec.get("volumeMode"), os.get("volumeMode")) {
            errs.push(invalid(
                "volumeMode",
                bad(spec.get("volumeMode")),
                FIELD_IMMUTABLE,
            ));
        }
    }
    errs
}

/// `ValidatePersistentVolumeClaim` (+ update rules), ObjectMeta excluded.
pub fn persistent_volume_claim(pvc: &Value, old: Option<&Value>) -> ErrorList {
    let sp = Path::new("spec");
    let empty = Value::Null;
    let spec = obj::get(pvc, "spec").unwrap_or(&empty);
    let mut errs = ErrorList::new();
    if obj::arr(spec, "accessModes").is_empty() {
        errs.push(required(
            &sp.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = obj::get(spec, "selector") {
        errs.extend(label_selector(sel, &sp.child("selector")));
    }
    let mut am = access_modes(spec, &sp, "");
    am.retain(|e| !e.detail.is_empty() || e.kind != super::field::ErrorType::Required);
    errs.extend(am);
    let storage = obj::at(spec, &["resources", "requests", "storage"]);
    let rp = sp.child("resources").key("storage");
    let new_size = match storage {
        None => {
            errs.push(required(&rp, ""));
            None
        }
        Some(v) => match quantity(v, &rp) {
            Ok(q) if q.nanos() <= 0 => {
                errs.push(invalid_str(
                    &rp,
                    &q.canonical(),
                    "must be greater than zero",
                ));
                None
            }
            Ok(q) => Some(q),
            Err(e) => {
                errs.extend(e);
                None
            }
        },
    };
    if let Some(sc) = obj::opt_s(spec, "storageClassName") {
        if !sc.is_empty() {
            errs.extend(
                is_dns1123_subdomain(sc)
                    .into_iter()
                    .map(|m| invalid_str(&sp.child("storageClassName"), sc, &m)),
            );
        }
    }
    errs.extend(volume_mode(spec, &sp));
    if let Some(old) = old {
        let os = obj::get(old, "spec").unwrap_or(&empty);
        let mut a = spec.clone();
        let mut b = os.clone();
        if obj::s(os, "volumeName").is_empty() {
            b["volumeName"] = spec.get("volumeName").cloned().unwrap_or(Value::Null);
        }
        let bound = obj::at(pvc, &["status", "phase"]).and_then(Value::as_str) == Some("Bound");
        if bound {
            for x in [&mut a, &mut b] {
                if let Some(r) = x
                    .get_mut("resources")
                    .and_then(|r| r.get_mut("requests"))
                    .and_then(Value::as_object_mut)
                {
                    r.remove("storage");
                }
            }
        }
        if !obj::same(Some(&a), Some(&b)) {
            errs.push(forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n",
            ));
        }
        let old_size = obj::at(os, &["resources", "requests", "storage"])
            .and_then(|v| v.as_str())
            .and_then(|s| Qty::parse(s).ok());
        if let (Some(n), Some(o)) = (new_size, old_size) {
            if n < o {
                errs.push(forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than previous value",
                ));
            }
        }
        if !obj::same(spec.get("volumeMode"), os.get("volumeMode")) {
            errs.push(invalid(
                "volumeMode",
                bad(spec.get("volumeMode")),
                FIELD_IMMUTABLE,
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(errs: &ErrorList) -> Vec<String> {
        errs.iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect()
    }

    #[test]
    fn pvc_requires_access_modes_and_storage() {
        let out = render(&persistent_volume_claim(&json!({"spec": {}}), None));
        assert_eq!(
            out,
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ]
        );
        let ok = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        assert!(persistent_volume_claim(&ok, None).is_empty());
        let mut bigger = ok.clone();
        bigger["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let out = render(&persistent_volume_claim(&bigger, Some(&ok)));
        assert!(
            out[0].starts_with(
                "spec: Forbidden: spec is immutable after creation except resources.requests"
            ),
            "{out:?}"
        );
    }

    #[test]
    fn pv_rules() {
        let out = render(&persistent_volume(
            &json!({"spec": {"accessModes": ["Sometimes"]}}),
            None,
        ));
        assert_eq!(out, vec![
            "spec.accessModes: Unsupported value: \"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
            "spec.capacity: Required value",
            "spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\"",
            "spec: Required value: must specify a volume type",
        ]);
    }
}
