//! Cluster-level kinds: Lease, StorageClass, PriorityClass, CertificateSigningRequest,
//! CustomResourceDefinition and ControllerRevision, as upstream validates them.

use serde_json::Value;

use super::field::{
    forbidden, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::meta::{immutable, nonnegative};
use super::names::{is_dns1035_label, is_dns1123_subdomain, is_qualified_name};
use super::obj::{self, bad, named};

/// `ValidateLease` spec part.
pub fn lease(o: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(spec) = obj::get(o, "spec") else {
        return errs;
    };
    if let Some(d) = obj::opt_i(spec, "leaseDurationSeconds") {
        if d <= 0 {
            errs.push(invalid(
                "spec.leaseDurationSeconds",
                BadValue::Int(d),
                "must be greater than 0",
            ));
        }
    }
    if let Some(t) = obj::opt_i(spec, "leaseTransitions") {
        if t < 0 {
            errs.push(invalid(
                "spec.leaseTransitions",
                BadValue::Int(t),
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}

/// `ValidateStorageClass` (+ update).
pub fn storage_class(o: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let prov = obj::s(o, "provisioner");
    if prov.is_empty() {
        errs.push(required("provisioner", ""));
    } else {
        errs.extend(
            is_qualified_name(&prov.to_lowercase())
                .into_iter()
                .map(|m| invalid_str("provisioner", prov, &m)),
        );
    }
    let mut size = 0;
    for (k, v) in obj::string_map(o, "parameters") {
        if k.is_empty() {
            errs.push(invalid_str("parameters", k, "field can not be empty."));
        }
        size += k.len() + v.len();
    }
    if size > 256 * 1024 {
        errs.push(super::field::too_long("parameters", 256 * 1024));
    }
    if let Some(rp) = obj::opt_s(o, "reclaimPolicy") {
        if rp != "Delete" && rp != "Retain" {
            errs.push(not_supported(
                "reclaimPolicy",
                named(rp),
                &["Delete", "Retain"],
            ));
        }
    }
    match obj::opt_s(o, "volumeBindingMode") {
        None => errs.push(required("volumeBindingMode", "")),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(m) => errs.push(not_supported(
            "volumeBindingMode",
            named(m),
            &["Immediate", "WaitForFirstConsumer"],
        )),
    }
    if let Some(old) = old {
        if !obj::same(o.get("parameters"), old.get("parameters")) {
            errs.push(forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if obj::s(o, "provisioner") != obj::s(old, "provisioner") {
            errs.push(forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if !obj::same(o.get("reclaimPolicy"), old.get("reclaimPolicy")) {
            errs.push(forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        errs.extend(immutable(
            o.get("volumeBindingMode"),
            old.get("volumeBindingMode"),
            "volumeBindingMode",
        ));
    }
    errs
}

const SYSTEM_PRIORITY_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// `ValidatePriorityClass` (+ update).
pub fn priority_class(o: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = obj::at(o, &["metadata", "name"])
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = obj::i(o, "value");
    if let Some((_, v)) = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name) {
        if *v != value {
            errs.push(forbidden(
                "metadata.name",
                &format!("{name} is a system priority class and must have value {v}"),
            ));
        }
    } else if name.starts_with("system-") {
        errs.push(forbidden(
            "metadata.name",
            "priority class names with 'system-' prefix are reserved for system use only",
        ));
    } else if value > 1_000_000_000 {
        errs.push(forbidden(
            "value",
            "maximum allowed value of a user defined priority is 1000000000",
        ));
    }
    if let Some(pp) = obj::opt_s(o, "preemptionPolicy") {
        if pp != "PreemptLowerPriority" && pp != "Never" {
            errs.push(not_supported(
                "preemptionPolicy",
                named(pp),
                &["PreemptLowerPriority", "Never"],
            ));
        }
    }
    if let Some(old) = old {
        if obj::i(old, "value") != value {
            errs.push(forbidden("value", "may not be changed in an update."));
        }
        errs.extend(immutable(
            o.get("preemptionPolicy"),
            old.get("preemptionPolicy"),
            "preemptionPolicy",
        ));
    }
    errs
}

const KEY_USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// `ValidateCertificateSigningRequestCreate` spec part.
pub fn csr(o: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = Value::Null;
    let spec = obj::get(o, "spec").unwrap_or(&empty);
    let sp = Path::new("spec");
    let request = obj::s(spec, "request");
    let pem = base64_decode(request)
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    if !pem.contains("-----BEGIN CERTIFICATE REQUEST-----")
        && !pem.contains("-----BEGIN NEW CERTIFICATE REQUEST-----")
    {
        errs.push(invalid(
            &sp.child("request"),
            BadValue::Json(Value::String(request.to_string())),
            "PEM block type must be CERTIFICATE REQUEST",
        ));
    }
    let signer = obj::s(spec, "signerName");
    if signer.is_empty() {
        errs.push(required(&sp.child("signerName"), ""));
    } else {
        match signer.split_once('/') {
            None => errs.push(invalid_str(
                &sp.child("signerName"),
                signer,
                "must be a fully qualified domain and path of the form 'example.com/signer-name'",
            )),
            Some((domain, _)) => {
                errs.extend(
                    is_dns1123_subdomain(domain)
                        .into_iter()
                        .map(|m| invalid_str(&sp.child("signerName"), domain, &m)),
                );
            }
        }
    }
    let usages = obj::strings(spec, "usages");
    if usages.is_empty() {
        errs.push(required(&sp.child("usages"), ""));
    }
    for (i, u) in usages.iter().enumerate() {
        if !KEY_USAGES.contains(u) {
            errs.push(not_supported(
                &sp.child("usages").index(i),
                named(u),
                KEY_USAGES,
            ));
        }
    }
    if let Some(e) = obj::opt_i(spec, "expirationSeconds") {
        if e < 600 {
            errs.push(invalid(
                &sp.child("expirationSeconds"),
                BadValue::Int(e),
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
    }
    errs
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// `ValidateCustomResourceDefinition` core rules (names, group, scope, versions).
pub fn crd(o: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = Value::Null;
    let spec = obj::get(o, "spec").unwrap_or(&empty);
    let sp = Path::new("spec");
    let group = obj::s(spec, "group");
    let names = obj::get(spec, "names").unwrap_or(&empty);
    let plural = obj::s(names, "plural");
    let name = obj::at(o, &["metadata", "name"])
        .and_then(Value::as_str)
        .unwrap_or("");
    if name != format!("{plural}.{group}") {
        errs.push(invalid_str(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errs.push(required(&sp.child("group"), ""));
    } else {
        errs.extend(
            is_dns1123_subdomain(group)
                .into_iter()
                .map(|m| invalid_str(&sp.child("group"), group, &m)),
        );
        if group.split('.').count() < 2 {
            errs.push(invalid_str(
                &sp.child("group"),
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    match obj::s(spec, "scope") {
        "Cluster" | "Namespaced" => {}
        "" => errs.push(required(&sp.child("scope"), "")),
        other => errs.push(not_supported(
            &sp.child("scope"),
            named(other),
            &["Cluster", "Namespaced"],
        )),
    }
    let np = sp.child("names");
    // Upstream: format errors for each name first, then the required ones.
    for (f, is_kind) in [
        ("plural", false),
        ("singular", false),
        ("kind", true),
        ("listKind", true),
    ] {
        let v = obj::s(names, f);
        if v.is_empty() {
            continue;
        }
        let msgs = if is_kind {
            is_dns1035_label(&v.to_lowercase())
        } else {
            is_dns1035_label(v)
        };
        if !msgs.is_empty() {
            let detail = if is_kind {
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    msgs.join(",")
                )
            } else {
                msgs.join(",")
            };
            errs.push(invalid_str(&np.child(f), v, &detail));
        }
    }
    for f in ["plural", "kind", "listKind"] {
        if obj::s(names, f).is_empty() {
            errs.push(required(&np.child(f), ""));
        }
    }
    let versions = obj::arr(spec, "versions");
    let vp = sp.child("versions");
    if versions.is_empty() {
        errs.push(invalid(
            &vp,
            bad(spec.get("versions")),
            "must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions.iter().filter(|v| obj::b(v, "storage")).count();
        if storage != 1 {
            errs.push(invalid(
                &vp,
                bad(spec.get("versions")),
                "must have exactly one version marked as storage version",
            ));
        }
        let mut seen = Vec::new();
        for (i, v) in versions.iter().enumerate() {
            let n = obj::s(v, "name");
            let p = vp.index(i).child("name");
            errs.extend(
                is_dns1035_label(n)
                    .into_iter()
                    .map(|m| invalid_str(&p, n, &m)),
            );
            if seen.contains(&n) {
                errs.push(invalid(
                    &vp,
                    bad(spec.get("versions")),
                    "must contain unique version names",
                ));
            }
            seen.push(n);
        }
    }
    errs
}

/// `ValidateControllerRevision` (+ update: data immutable).
pub fn controller_revision(o: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    if obj::get(o, "data").is_none() {
        errs.push(required("data", "data is mandatory"));
    }
    errs.extend(nonnegative(obj::i(o, "revision"), "revision"));
    if let Some(old) = old {
        errs.extend(immutable(o.get("data"), old.get("data"), "data"));
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
    fn storage_class_rules() {
        assert_eq!(
            render(&storage_class(
                &json!({"volumeBindingMode": "Immediate"}),
                None
            )),
            vec!["provisioner: Required value"]
        );
        let old = json!({"provisioner": "a.io/x", "volumeBindingMode": "Immediate", "reclaimPolicy": "Delete"});
        let mut new = old.clone();
        new["provisioner"] = json!("b.io/y");
        assert_eq!(
            render(&storage_class(&new, Some(&old))),
            vec!["provisioner: Forbidden: updates to provisioner are forbidden."]
        );
    }

    #[test]
    fn priority_class_rules() {
        let pc = json!({"metadata": {"name": "high"}, "value": 2_000_000_000i64});
        assert_eq!(
            render(&priority_class(&pc, None)),
            vec![
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
            ]
        );
        let pc = json!({"metadata": {"name": "system-mine"}, "value": 1});
        assert_eq!(render(&priority_class(&pc, None)), vec!["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only"]);
    }

    #[test]
    fn crd_rules() {
        let c = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}});
        assert!(crd(&c).is_empty(), "{:?}", render(&crd(&c)));
        let mut k = c.clone();
        k["spec"]["names"]["kind"] = json!("Wid_get");
        assert_eq!(render(&crd(&k)), vec!["spec.names.kind: Invalid value: \"Wid_get\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]);
        let mut b = c.clone();
        b["spec"]["versions"][0]["storage"] = json!(false);
        b["metadata"]["name"] = json!("x");
        let out = render(&crd(&b));
        assert_eq!(
            out[0],
            "metadata.name: Invalid value: \"x\": must be spec.names.plural+\".\"+spec.group"
        );
        assert!(out[1].ends_with("must have exactly one version marked as storage version"));
    }

    #[test]
    fn lease_rules() {
        assert_eq!(
            render(&lease(&json!({"spec": {"leaseDurationSeconds": 0}}))),
            vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
        );
    }
}
