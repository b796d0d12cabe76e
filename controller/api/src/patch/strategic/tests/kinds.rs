//! Built-in kinds through `apply`: the tag table per kind, the kubectl task page's examples,
//! and hand-written `kubectl patch` bodies (the captured kubectl patches are in `kubectl`).

use super::{apply_kind, check_kind, yaml};
use crate::patch::strategic::{field_meta, Strategy};

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: patch-demo
  finalizers: [a.example/one]
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      containers:
        - name: patch-demo-ctr
          image: nginx
          env:
            - {name: A, value: "1"}
            - {name: B, value: "2"}
          ports:
            - {containerPort: 80, protocol: TCP}
      tolerations:
        - {effect: NoSchedule, key: dedicated, value: test-team}
"#;

#[test]
fn task_page_containers_merge_by_name() {
    let got = apply_kind(
        "apps",
        "Deployment",
        DEPLOYMENT,
        "spec: {template: {spec: {containers: [{name: patch-demo-ctr-2, image: redis}]}}}",
    )
    .unwrap();
    let containers = got["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // The task page shows the new container first: no `$setElementOrder` in a hand patch.
    assert_eq!(names, ["patch-demo-ctr-2", "patch-demo-ctr"]);
    assert_eq!(containers[0]["image"], "redis");
    assert_eq!(containers[1]["image"], "nginx");
}

#[test]
fn task_page_tolerations_are_replaced() {
    let got = apply_kind(
        "apps",
        "Deployment",
        DEPLOYMENT,
        "spec: {template: {spec: {tolerations: [{effect: NoSchedule, key: disktype, value: ssd}]}}}",
    )
    .unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["tolerations"],
        yaml("[{effect: NoSchedule, key: disktype, value: ssd}]")
    );
}

#[test]
fn task_page_retain_keys_clears_rolling_update() {
    let got = apply_kind(
        "apps",
        "Deployment",
        DEPLOYMENT,
        "spec: {strategy: {$retainKeys: [type], type: Recreate}}",
    )
    .unwrap();
    assert_eq!(got["spec"]["strategy"], yaml("type: Recreate"));
    // Without the directive the union keeps its stale member, as upstream.
    let got = apply_kind(
        "apps",
        "Deployment",
        DEPLOYMENT,
        "spec: {strategy: {type: Recreate}}",
    )
    .unwrap();
    assert_eq!(got["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
}

#[test]
fn kubectl_apply_replacing_an_env_var_keeps_a_server_added_one_in_place() {
    // Manifest env went from [A, B] to [A, C]; S was added on the server (by a webhook,
    // say). Upstream places S by its view of the list after deleting B and appending C
    // in the same array ([A, S, C]), so S stays between A and C.
    let pod = "spec: {containers: [{name: c, env: [{name: A}, {name: B}, {name: S}]}]}";
    let patch = r#"
spec:
  $setElementOrder/containers: [{name: c}]
  containers:
    - name: c
      $setElementOrder/env: [{name: A}, {name: C}]
      env: [{name: C}, {name: B, $patch: delete}]
"#;
    let got = apply_kind("", "Pod", pod, patch).unwrap();
    assert_eq!(
        got["spec"]["containers"][0]["env"],
        yaml("[{name: A}, {name: S}, {name: C}]")
    );
}

#[test]
fn label_and_annotation_patches() {
    let pod = "
metadata:
  name: p
  labels: {app: web, tier: fe}
spec:
  containers: [{name: c, image: busybox}]
";
    // `kubectl patch pod p -p ...` adding one label and removing another (`kubectl label`
    // itself sends the same body as a JSON merge patch).
    check_kind(
        "",
        "Pod",
        pod,
        r#"{"metadata":{"labels":{"env":"prod","tier":null}}}"#,
        "
metadata:
  name: p
  labels: {app: web, env: prod}
spec:
  containers: [{name: c, image: busybox}]
",
    );
    // An annotation on an object with none.
    let got = apply_kind(
        "",
        "Pod",
        pod,
        r#"{"metadata":{"annotations":{"note":"hi"}}}"#,
    )
    .unwrap();
    assert_eq!(got["metadata"]["annotations"], yaml("{note: hi}"));
}

#[test]
fn container_lists_merge_by_their_keys() {
    let pod = r#"
spec:
  containers:
    - name: app
      image: app:1
      ports: [{containerPort: 80, name: http}, {containerPort: 443}]
      env: [{name: X, value: x}]
      volumeMounts: [{name: data, mountPath: /data}]
      volumeDevices: [{name: raw, devicePath: /dev/xvda}]
  initContainers: [{name: init, image: busybox}]
  volumes: [{name: data, emptyDir: {}}]
  imagePullSecrets: [{name: reg}]
  hostAliases: [{ip: 10.0.0.1, hostnames: [a]}]
  topologySpreadConstraints: [{topologyKey: zone, maxSkew: 1}]
"#;
    check_kind(
        "",
        "Pod",
        pod,
        r#"
spec:
  containers:
    - name: app
      ports: [{containerPort: 80, name: web}]
      env: [{name: Y, value: y}]
      volumeMounts: [{name: cache, mountPath: /cache}]
      volumeDevices: [{name: raw, devicePath: /dev/xvda, $patch: delete}]
  initContainers: [{name: init, image: busybox:2}]
  volumes: [{name: cache, emptyDir: {}}]
  imagePullSecrets: [{name: reg2}]
  hostAliases: [{ip: 10.0.0.1, hostnames: [b]}]
  topologySpreadConstraints: [{topologyKey: zone, maxSkew: 2}]
"#,
        r#"
spec:
  containers:
    - name: app
      image: app:1
      ports: [{containerPort: 80, name: web}, {containerPort: 443}]
      env: [{name: Y, value: y}, {name: X, value: x}]
      volumeMounts: [{name: cache, mountPath: /cache}, {name: data, mountPath: /data}]
      volumeDevices: []
  initContainers: [{name: init, image: "busybox:2"}]
  volumes: [{name: cache, emptyDir: {}}, {name: data, emptyDir: {}}]
  imagePullSecrets: [{name: reg2}, {name: reg}]
  hostAliases: [{ip: 10.0.0.1, hostnames: [b]}]
  topologySpreadConstraints: [{topologyKey: zone, maxSkew: 2}]
"#,
    );
}

#[test]
fn kubectl_apply_switching_a_volume_source_uses_retain_keys() {
    // `volumes` is `merge,retainKeys`: kubectl lists the keys to keep in the element.
    check_kind(
        "",
        "Pod",
        "spec: {volumes: [{name: data, emptyDir: {}}, {name: cfg, configMap: {name: c}}]}",
        r#"
spec:
  $setElementOrder/volumes: [{name: data}, {name: cfg}]
  volumes:
    - $retainKeys: [hostPath, name]
      hostPath: {path: /srv}
      name: data
"#,
        "spec: {volumes: [{name: data, hostPath: {path: /srv}}, {name: cfg, configMap: {name: c}}]}",
    );
}

#[test]
fn pod_templates_of_every_workload_merge_containers() {
    let container_patch = "{spec: {containers: [{name: b, image: b}]}}";
    let with_template = |prefix: &str| {
        format!("{prefix}{{template: {{spec: {{containers: [{{name: a, image: a}}]}}}}}}")
    };
    for (group, kind) in [
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "DaemonSet"),
        ("apps", "StatefulSet"),
        ("batch", "Job"),
        ("", "ReplicationController"),
    ] {
        let got = apply_kind(
            group,
            kind,
            &with_template("spec: "),
            &format!("spec: {{template: {container_patch}}}"),
        )
        .unwrap();
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            2,
            "{kind}"
        );
    }
    let got = apply_kind(
        "",
        "PodTemplate",
        "template: {spec: {containers: [{name: a, image: a}]}}",
        &format!("template: {container_patch}"),
    )
    .unwrap();
    assert_eq!(
        got["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let got = apply_kind(
        "batch",
        "CronJob",
        "spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: a}]}}}}}",
        &format!("spec: {{jobTemplate: {{spec: {{template: {container_patch}}}}}}}"),
    )
    .unwrap();
    assert_eq!(
        got["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn object_meta_finalizers_and_owner_references() {
    // Any kind, here a ConfigMap: finalizers are an ordered set, ownerReferences merge by uid.
    check_kind(
        "",
        "ConfigMap",
        "
metadata:
  finalizers: [a, b]
  ownerReferences: [{uid: u1, name: one}]
data: {k: v}
",
        "
metadata:
  finalizers: [c]
  ownerReferences: [{uid: u2, name: two}]
data: {k2: v2}
",
        "
metadata:
  finalizers: [c, a, b]
  ownerReferences: [{uid: u2, name: two}, {uid: u1, name: one}]
data: {k: v, k2: v2}
",
    );
    // Removing a finalizer the way kubectl apply does.
    check_kind(
        "",
        "ConfigMap",
        "metadata: {finalizers: [a, b, c]}",
        "metadata: {$setElementOrder/finalizers: [a, c], $deleteFromPrimitiveList/finalizers: [b]}",
        "metadata: {finalizers: [a, c]}",
    );
}

#[test]
fn service_node_and_status_lists() {
    check_kind(
        "",
        "Service",
        "spec: {ports: [{port: 80, targetPort: 8080}, {port: 443}]}",
        "spec: {ports: [{port: 80, targetPort: 9090}]}",
        "spec: {ports: [{port: 80, targetPort: 9090}, {port: 443}]}",
    );
    // Node: podCIDRs are a set, taints have no strategy and are replaced, conditions and
    // addresses merge by type.
    check_kind(
        "",
        "Node",
        "
spec: {podCIDRs: [10.0.0.0/24], taints: [{key: a, effect: NoSchedule}]}
status:
  conditions: [{type: Ready, status: 'False'}, {type: DiskPressure, status: 'False'}]
  addresses: [{type: InternalIP, address: 10.0.0.5}]
",
        "
spec: {podCIDRs: [fd00::/64], taints: [{key: b, effect: NoExecute}]}
status:
  conditions: [{type: Ready, status: 'True'}]
  addresses: [{type: Hostname, address: n1}]
",
        "
spec: {podCIDRs: [fd00::/64, 10.0.0.0/24], taints: [{key: b, effect: NoExecute}]}
status:
  conditions: [{type: Ready, status: 'True'}, {type: DiskPressure, status: 'False'}]
  addresses: [{type: Hostname, address: n1}, {type: InternalIP, address: 10.0.0.5}]
",
    );
    check_kind(
        "",
        "Pod",
        "status: {conditions: [{type: Ready, status: 'False'}], podIPs: [{ip: 10.1.0.4}]}",
        "status: {conditions: [{type: PodScheduled, status: 'True'}]}",
        "status: {conditions: [{type: PodScheduled, status: 'True'}, {type: Ready, status: 'False'}], podIPs: [{ip: 10.1.0.4}]}",
    );
}

#[test]
fn pdb_selector_is_replaced_whole() {
    check_kind(
        "policy",
        "PodDisruptionBudget",
        "spec: {selector: {matchLabels: {a: b}}, minAvailable: 1}",
        "spec: {selector: {matchLabels: {c: d}}}",
        "spec: {selector: {matchLabels: {c: d}}, minAvailable: 1}",
    );
}

#[test]
fn untagged_lists_of_other_kinds_are_replaced() {
    check_kind(
        "rbac.authorization.k8s.io",
        "Role",
        "rules: [{verbs: [get], resources: [pods], apiGroups: ['']}]",
        "rules: [{verbs: [list], resources: [pods], apiGroups: ['']}]",
        "rules: [{verbs: [list], resources: [pods], apiGroups: ['']}]",
    );
}

#[test]
fn tag_table_by_kind_and_path() {
    let merge = |group: &str, kind: &str, path: &str| {
        let m = field_meta(group, kind, path);
        assert_eq!(m.strategy, Strategy::Merge, "{kind} {path}");
        m.merge_key
    };
    let pod_spec_paths = [
        ("", "Pod", "spec"),
        ("", "PodTemplate", "template.spec"),
        ("", "ReplicationController", "spec.template.spec"),
        ("apps", "Deployment", "spec.template.spec"),
        ("apps", "ReplicaSet", "spec.template.spec"),
        ("apps", "DaemonSet", "spec.template.spec"),
        ("apps", "StatefulSet", "spec.template.spec"),
        ("batch", "Job", "spec.template.spec"),
        ("batch", "CronJob", "spec.jobTemplate.spec.template.spec"),
    ];
    for (group, kind, spec) in pod_spec_paths {
        for (field, key) in [
            ("containers", "name"),
            ("initContainers", "name"),
            ("ephemeralContainers", "name"),
            ("volumes", "name"),
            ("imagePullSecrets", "name"),
            ("hostAliases", "ip"),
            ("topologySpreadConstraints", "topologyKey"),
            ("resourceClaims", "name"),
            ("schedulingGates", "name"),
            ("containers.ports", "containerPort"),
            ("containers.env", "name"),
            ("containers.volumeMounts", "mountPath"),
            ("containers.volumeDevices", "devicePath"),
            ("initContainers.env", "name"),
        ] {
            assert_eq!(merge(group, kind, &format!("{spec}.{field}")), Some(key));
        }
        let tolerations = field_meta(group, kind, &format!("{spec}.tolerations"));
        assert_eq!(tolerations.strategy, Strategy::Untagged);
        assert!(field_meta(group, kind, &format!("{spec}.volumes")).retain_keys);
    }
    for kind in ["Pod", "ConfigMap", "Secret", "Namespace", "Lease"] {
        assert_eq!(merge("", kind, "metadata.ownerReferences"), Some("uid"));
        assert_eq!(merge("", kind, "metadata.finalizers"), None);
    }
    assert_eq!(merge("", "Service", "spec.ports"), Some("port"));
    assert_eq!(merge("", "ServiceAccount", "secrets"), Some("name"));
    assert_eq!(merge("", "Node", "status.addresses"), Some("type"));
    assert_eq!(merge("", "Node", "spec.podCIDRs"), None);
    assert_eq!(
        field_meta("", "Node", "spec.taints").strategy,
        Strategy::Untagged
    );
    for (group, kind) in [
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("batch", "Job"),
        ("", "Namespace"),
        ("", "PersistentVolumeClaim"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("policy", "PodDisruptionBudget"),
    ] {
        assert_eq!(
            merge(group, kind, "status.conditions"),
            Some("type"),
            "{kind}"
        );
    }
    assert!(field_meta("apps", "Deployment", "spec.strategy").retain_keys);
    assert_eq!(
        field_meta("policy", "PodDisruptionBudget", "spec.selector").strategy,
        Strategy::Replace
    );
    assert_eq!(
        merge(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            "webhooks.matchConditions"
        ),
        Some("name")
    );
}
