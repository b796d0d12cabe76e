//! Printers of the remaining group kinds: EndpointSlice, Ingress, NetworkPolicy, IngressClass,
//! StorageClass, Lease, RoleBinding, ClusterRoleBinding, PriorityClass,
//! CertificateSigningRequest. (Role, ClusterRole, LimitRange and CRDs have no printer
//! upstream and get the default table.)

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::core::load_balancer_addresses;
use super::descriptions as d;
use super::duration::human_duration;
use super::format::{
    age, arr_at, at, bool_at, format_label_selector, int_at, list_with_more, name, opt_str, s,
    str_at,
};
use super::{col, typed, wide, Ctx, Printer, Row, AGE, NAME};

const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_IS_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";

pub(crate) const ENDPOINT_SLICE: Printer = Printer {
    columns: &[
        NAME,
        col("AddressType", d::ES_ADDRESS_TYPE),
        col("Ports", d::ES_PORTS),
        col("Endpoints", d::ES_ENDPOINTS),
        AGE,
    ],
    row: endpoint_slice_row,
};

/// Collects up to 3 entries as upstream's `formatDiscoveryPorts`/`Endpoints` do.
fn capped(items: impl Iterator<Item = String>) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for item in items {
        if list.len() < MAX {
            list.push(item);
        } else if list.len() == MAX {
            more = true;
        }
        count += 1;
    }
    list_with_more(&list, more, count, MAX)
}

fn endpoint_slice_row(slice: &Value, ctx: &Ctx) -> Row {
    let ports = arr_at(slice, "/ports").iter().map(|p| {
        match (at(p, "/port").and_then(Value::as_i64), opt_str(p, "/name")) {
            (Some(n), _) => n.to_string(),
            (None, Some(n)) => n.to_string(),
            // Upstream checks the name pointer, not its emptiness.
            (None, None) if at(p, "/name").is_some() => String::new(),
            (None, None) => "*".to_string(),
        }
    });
    let addresses = arr_at(slice, "/endpoints").iter().flat_map(|e| {
        arr_at(e, "/addresses")
            .iter()
            .map(|a| a.as_str().unwrap_or("").to_string())
    });
    vec![
        name(slice),
        s(str_at(slice, "/addressType")),
        s(capped(ports)),
        s(capped(addresses)),
        age(slice, ctx),
    ]
    .into()
}

pub(crate) const INGRESS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Class",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        col(
            "Hosts",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        col(
            "Address",
            "Address is a list containing ingress points for the load-balancer",
        ),
        col("Ports", "Ports of TLS configurations that open"),
        AGE,
    ],
    row: ingress_row,
};

/// Upstream `formatHosts`: at most 3 hosts, `*` when none.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        if let Some(host) = opt_str(rule, "/host").filter(|_| !more) {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", rules.len() - MAX)
    } else {
        ret
    }
}

fn ingress_row(ing: &Value, ctx: &Ctx) -> Row {
    let ports = if arr_at(ing, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(ing),
        s(opt_str(ing, "/spec/ingressClassName").unwrap_or("<none>")),
        s(format_hosts(arr_at(ing, "/spec/rules"))),
        s(load_balancer_addresses(
            arr_at(ing, "/status/loadBalancer/ingress"),
            true,
        )),
        s(ports),
        age(ing, ctx),
    ]
    .into()
}

pub(crate) const NETWORK_POLICY: Printer = Printer {
    columns: &[NAME, col("Pod-Selector", d::NP_POD_SELECTOR), AGE],
    row: network_policy_row,
};

fn network_policy_row(np: &Value, ctx: &Ctx) -> Row {
    vec![
        name(np),
        s(format_label_selector(at(np, "/spec/podSelector"))),
        age(np, ctx),
    ]
    .into()
}

pub(crate) const INGRESS_CLASS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Controller",
            "Controller that is responsible for handling this class",
        ),
        col(
            "Parameters",
            "A reference to a resource with additional parameters",
        ),
        AGE,
    ],
    row: |class, ctx| {
        let parameters = match at(class, "/spec/parameters") {
            None => "<none>".to_string(),
            Some(p) => {
                let mut out = str_at(p, "/kind").to_string();
                if let Some(group) = at(p, "/apiGroup").and_then(Value::as_str) {
                    out = format!("{out}.{group}");
                }
                format!("{out}/{}", str_at(p, "/name"))
            }
        };
        vec![
            name(class),
            s(str_at(class, "/spec/controller")),
            s(parameters),
            age(class, ctx),
        ]
        .into()
    },
};

pub(crate) const STORAGE_CLASS: Printer = Printer {
    columns: &[
        NAME,
        col("Provisioner", d::SC_PROVISIONER),
        col("ReclaimPolicy", d::SC_RECLAIM),
        col("VolumeBindingMode", d::SC_BINDING),
        col("AllowVolumeExpansion", d::SC_EXPANSION),
        AGE,
    ],
    row: |sc, ctx| {
        let annotation = |key: &str| {
            at(sc, "/metadata/annotations")
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                == Some("true")
        };
        let mut class_name = str_at(sc, "/metadata/name").to_string();
        if annotation(IS_DEFAULT_CLASS) || annotation(BETA_IS_DEFAULT_CLASS) {
            class_name.push_str(" (default)");
        }
        vec![
            s(class_name),
            s(str_at(sc, "/provisioner")),
            s(opt_str(sc, "/reclaimPolicy").unwrap_or("Delete")),
            s(opt_str(sc, "/volumeBindingMode").unwrap_or("Immediate")),
            json!(bool_at(sc, "/allowVolumeExpansion")),
            age(sc, ctx),
        ]
        .into()
    },
};

pub(crate) const LEASE: Printer = Printer {
    columns: &[NAME, col("Holder", d::LEASE_HOLDER), AGE],
    row: |lease, ctx| {
        vec![
            name(lease),
            s(str_at(lease, "/spec/holderIdentity")),
            age(lease, ctx),
        ]
        .into()
    },
};

pub(crate) const ROLE_BINDING: Printer = Printer {
    columns: &[
        NAME,
        col("Role", d::RB_ROLE_REF),
        AGE,
        wide("Users", "Users in the roleBinding"),
        wide("Groups", "Groups in the roleBinding"),
        wide("ServiceAccounts", "ServiceAccounts in the roleBinding"),
    ],
    row: binding_row,
};

pub(crate) const CLUSTER_ROLE_BINDING: Printer = Printer {
    columns: &[
        NAME,
        col("Role", d::CRB_ROLE_REF),
        AGE,
        wide("Users", "Users in the clusterRoleBinding"),
        wide("Groups", "Groups in the clusterRoleBinding"),
        wide(
            "ServiceAccounts",
            "ServiceAccounts in the clusterRoleBinding",
        ),
    ],
    row: binding_row,
};

/// ROLE `Kind/name`, and upstream `rbac.SubjectsStrings` joined with `, `.
fn binding_row(binding: &Value, ctx: &Ctx) -> Row {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut sas = Vec::new();
    for subject in arr_at(binding, "/subjects") {
        let subject_name = str_at(subject, "/name");
        match str_at(subject, "/kind") {
            "ServiceAccount" => {
                sas.push(format!("{}/{subject_name}", str_at(subject, "/namespace")))
            }
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    vec![
        name(binding),
        s(format!(
            "{}/{}",
            str_at(binding, "/roleRef/kind"),
            str_at(binding, "/roleRef/name")
        )),
        age(binding, ctx),
        s(users.join(", ")),
        s(groups.join(", ")),
        s(sas.join(", ")),
    ]
    .into()
}

pub(crate) const PRIORITY_CLASS: Printer = Printer {
    columns: &[
        NAME,
        typed("Value", "integer", d::PC_VALUE),
        typed("Global-Default", "boolean", d::PC_GLOBAL),
        AGE,
        col("PreemptionPolicy", d::PC_PREEMPTION),
    ],
    row: |pc, ctx| {
        vec![
            name(pc),
            json!(int_at(pc, "/value")),
            json!(bool_at(pc, "/globalDefault")),
            age(pc, ctx),
            s(str_at(pc, "/preemptionPolicy")),
        ]
        .into()
    },
};

pub(crate) const CSR: Printer = Printer {
    columns: &[
        NAME,
        AGE,
        col("SignerName", d::CSR_SIGNER),
        col("Requestor", d::CSR_REQUEST),
        col("RequestedDuration", d::CSR_EXPIRATION),
        col("Condition", d::CSR_CONDITIONS),
    ],
    row: |csr, ctx| {
        let duration = match at(csr, "/spec/expirationSeconds").and_then(Value::as_i64) {
            Some(secs) => human_duration(TimeDelta::seconds(secs)),
            None => "<none>".into(),
        };
        vec![
            name(csr),
            age(csr, ctx),
            s(opt_str(csr, "/spec/signerName").unwrap_or("<none>")),
            s(str_at(csr, "/spec/username")),
            s(duration),
            s(csr_status(csr)),
        ]
        .into()
    },
};

/// Upstream `extractCSRStatus`: Denied > Approved > Pending, then `,Failed`, `,Issued`.
fn csr_status(csr: &Value) -> String {
    let has = |kind: &str| {
        arr_at(csr, "/status/conditions")
            .iter()
            .any(|c| str_at(c, "/type") == kind)
    };
    let mut status = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if opt_str(csr, "/status/certificate").is_some() {
        status.push_str(",Issued");
    }
    status
}
