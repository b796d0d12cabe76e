//! The restricted level's checks (on top of baseline; upstream IDs in the returned pairs).

use k8s_openapi::api::core::v1::{PodSpec, SeccompProfile};

use super::{containers, join_quote, pluralize, violation, Violation};

/// Volume types a restricted pod may use.
fn restricted_volume_type(v: &k8s_openapi::api::core::v1::Volume) -> Option<&'static str> {
    let checks: [(&'static str, bool); 21] = [
        ("hostPath", v.host_path.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("rbd", v.rbd.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("fc", v.fc.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("storageos", v.storageos.is_some()),
    ];
    checks.iter().find(|(_, on)| *on).map(|(t, _)| *t)
}

/// Runs the restricted checks.
pub(super) fn check(spec: &PodSpec) -> Vec<(&'static str, Violation)> {
    let cs = containers(spec);
    let psc = spec.security_context.clone().unwrap_or_default();
    let sc =
        |c: &k8s_openapi::api::core::v1::Container| c.security_context.clone().unwrap_or_default();
    let mut out = Vec::new();

    // restrictedVolumes
    let mut vol_names = Vec::new();
    let mut vol_types: Vec<String> = Vec::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(t) = restricted_volume_type(v) {
            vol_names.push(v.name.clone());
            if !vol_types.iter().any(|x| x == t) {
                vol_types.push(t.to_string());
            }
        }
    }
    if !vol_names.is_empty() {
        let plural = vol_names.len() > 1;
        out.push((
            "restrictedVolumes",
            violation(
                "restricted volume types",
                format!(
                    "{} {} restricted volume {} {}",
                    pluralize("volume", &vol_names),
                    if plural { "use" } else { "uses" },
                    if vol_types.len() > 1 { "types" } else { "type" },
                    join_quote(&vol_types)
                ),
            ),
        ));
    }

    // allowPrivilegeEscalation
    let escalating: Vec<String> = cs
        .iter()
        .filter(|c| sc(c).allow_privilege_escalation != Some(false))
        .map(|c| c.name.clone())
        .collect();
    if !escalating.is_empty() {
        out.push((
            "allowPrivilegeEscalation",
            violation(
                "allowPrivilegeEscalation != false",
                format!(
                    "{} must set securityContext.allowPrivilegeEscalation=false",
                    pluralize("container", &escalating)
                ),
            ),
        ));
    }

    // runAsNonRoot
    let mut why = Vec::new();
    if psc.run_as_non_root == Some(false) {
        why.push("pod must not set securityContext.runAsNonRoot=false".to_string());
    }
    let explicit_false: Vec<String> = cs
        .iter()
        .filter(|c| sc(c).run_as_non_root == Some(false))
        .map(|c| c.name.clone())
        .collect();
    if !explicit_false.is_empty() {
        why.push(format!(
            "{} must not set securityContext.runAsNonRoot=false",
            pluralize("container", &explicit_false)
        ));
    }
    if psc.run_as_non_root.is_none() {
        let implicit: Vec<String> = cs
            .iter()
            .filter(|c| sc(c).run_as_non_root.is_none())
            .map(|c| c.name.clone())
            .collect();
        if !implicit.is_empty() {
            why.push(format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                pluralize("container", &implicit)
            ));
        }
    }
    if !why.is_empty() {
        out.push((
            "runAsNonRoot",
            violation("runAsNonRoot != true", why.join("; ")),
        ));
    }

    // runAsUser
    let mut why = Vec::new();
    if psc.run_as_user == Some(0) {
        why.push("pod must not set runAsUser=0".to_string());
    }
    let root: Vec<String> = cs
        .iter()
        .filter(|c| sc(c).run_as_user == Some(0))
        .map(|c| c.name.clone())
        .collect();
    if !root.is_empty() {
        why.push(format!(
            "{} must not set runAsUser=0",
            pluralize("container", &root)
        ));
    }
    if !why.is_empty() {
        out.push(("runAsUser", violation("runAsUser=0", why.join("; "))));
    }

    // seccompProfile_restricted
    let allowed = |p: &SeccompProfile| p.type_ == "RuntimeDefault" || p.type_ == "Localhost";
    let mut why = Vec::new();
    if let Some(p) = psc.seccomp_profile.as_ref().filter(|p| !allowed(p)) {
        why.push(format!(
            "pod must not set securityContext.seccompProfile.type to {:?}",
            p.type_
        ));
    }
    let mut bad_types: Vec<String> = Vec::new();
    let explicit: Vec<String> = cs
        .iter()
        .filter(|c| {
            sc(c).seccomp_profile.as_ref().is_some_and(|p| {
                let bad = !allowed(p);
                if bad && !bad_types.contains(&p.type_) {
                    bad_types.push(p.type_.clone());
                }
                bad
            })
        })
        .map(|c| c.name.clone())
        .collect();
    if !explicit.is_empty() {
        why.push(format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            pluralize("container", &explicit),
            join_quote(&bad_types)
        ));
    }
    if psc.seccomp_profile.is_none() {
        let implicit: Vec<String> = cs
            .iter()
            .filter(|c| sc(c).seccomp_profile.is_none())
            .map(|c| c.name.clone())
            .collect();
        if !implicit.is_empty() {
            why.push(format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                pluralize("container", &implicit)
            ));
        }
    }
    if !why.is_empty() {
        out.push((
            "seccompProfile_restricted",
            violation("seccompProfile", why.join("; ")),
        ));
    }

    // capabilities_restricted
    let mut no_drop = Vec::new();
    let mut bad_add = Vec::new();
    let mut bad_caps: Vec<String> = Vec::new();
    for c in &cs {
        let caps = sc(c).capabilities.unwrap_or_default();
        if !caps.drop.iter().flatten().any(|d| d == "ALL") {
            no_drop.push(c.name.clone());
        }
        let mut bad = false;
        for a in caps.add.iter().flatten() {
            if a != "NET_BIND_SERVICE" {
                bad = true;
                if !bad_caps.contains(a) {
                    bad_caps.push(a.clone());
                }
            }
        }
        if bad {
            bad_add.push(c.name.clone());
        }
    }
    let mut why = Vec::new();
    if !no_drop.is_empty() {
        why.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            pluralize("container", &no_drop)
        ));
    }
    if !bad_add.is_empty() {
        why.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            pluralize("container", &bad_add),
            join_quote(&bad_caps)
        ));
    }
    if !why.is_empty() {
        out.push((
            "capabilities_restricted",
            violation("unrestricted capabilities", why.join("; ")),
        ));
    }
    out
}
