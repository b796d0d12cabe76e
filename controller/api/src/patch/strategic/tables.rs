//! Patch metadata of the built-in kinds, transcribed from the struct tags in upstream's
//! `k8s.io/api/<group>/v1/types.go` and `k8s.io/apimachinery/pkg/apis/meta/v1/types.go`
//! (`patchStrategy` / `patchMergeKey`). Only tagged fields and the paths leading to them are
//! listed; upstream leaves everything else untagged. Lists without a strategy (tolerations,
//! node taints, containerStatuses, rbac rules and subjects, endpoint subsets, ...) are replaced
//! whole, so the types of their elements need no entry.
//!
//! Server-side apply reads upstream's OpenAPI list types instead (`+listType`/`+listMapKey`
//! markers, `x-kubernetes-list-type`/`x-kubernetes-list-map-keys`); where they differ from the
//! patch tags the field carries them too ([`ssa`]): compound keys (ports by port and
//! protocol), lists upstream declares atomic despite a merge tag, and untagged map or set
//! lists.

use super::schema::{key, key_or, list_map, ssa, Field, ListMapKey, ListType, TypeMeta};
use super::schema::{merge_by, merge_retain_by, merge_set, nested, replace, retain_keys};

const fn ty(name: &'static str, fields: &'static [Field]) -> TypeMeta {
    TypeMeta { name, fields }
}

// ---- meta/v1 ----------------------------------------------------------------------------

/// ObjectMeta: `ownerReferences` merge on `uid`; `finalizers` merge as a set.
pub(crate) static OBJECT_META: TypeMeta = ty(
    "ObjectMeta",
    &[
        merge_by("ownerReferences", "uid", &TypeMeta::UNTAGGED),
        merge_set("finalizers"),
    ],
);

/// Any kind: nothing tagged outside its metadata.
pub(crate) static GENERIC_OBJECT: TypeMeta = ty("Object", &[nested("metadata", &OBJECT_META)]);

/// A status whose only tagged field is `conditions` (merge on `type`).
static CONDITIONS_STATUS: TypeMeta = ty(
    "Status",
    &[merge_by("conditions", "type", &TypeMeta::UNTAGGED)],
);

// ---- core/v1: pods and templates --------------------------------------------------------

/// `+listMapKey=name` alone.
const NAME_KEY: &[ListMapKey] = &[key("name")];

/// ResourceRequirements: `claims` is a map on `name` for server-side apply (untagged).
static RESOURCE_REQUIREMENTS: TypeMeta = ty(
    "ResourceRequirements",
    &[ssa(
        nested("claims", &TypeMeta::UNTAGGED),
        list_map(NAME_KEY),
    )],
);

/// Container and EphemeralContainer (EphemeralContainerCommon carries the same tags).
static CONTAINER: TypeMeta = ty(
    "Container",
    &[
        // `+listMapKey=containerPort +listMapKey=protocol`, protocol defaulting to TCP
        ssa(
            merge_by("ports", "containerPort", &TypeMeta::UNTAGGED),
            list_map(&[key("containerPort"), key_or("protocol", "TCP")]),
        ),
        merge_by("env", "name", &TypeMeta::UNTAGGED),
        merge_by("volumeMounts", "mountPath", &TypeMeta::UNTAGGED),
        merge_by("volumeDevices", "devicePath", &TypeMeta::UNTAGGED),
        nested("resources", &RESOURCE_REQUIREMENTS),
    ],
);

static POD_SPEC: TypeMeta = ty(
    "PodSpec",
    &[
        merge_retain_by("volumes", "name", &TypeMeta::UNTAGGED),
        merge_by("initContainers", "name", &CONTAINER),
        merge_by("containers", "name", &CONTAINER),
        merge_by("ephemeralContainers", "name", &CONTAINER),
        merge_by("imagePullSecrets", "name", &TypeMeta::UNTAGGED),
        merge_by("hostAliases", "ip", &TypeMeta::UNTAGGED),
        ssa(
            merge_by(
                "topologySpreadConstraints",
                "topologyKey",
                &TypeMeta::UNTAGGED,
            ),
            list_map(&[key("topologyKey"), key("whenUnsatisfiable")]),
        ),
        merge_by("schedulingGates", "name", &TypeMeta::UNTAGGED),
        merge_retain_by("resourceClaims", "name", &TypeMeta::UNTAGGED),
        nested("resources", &RESOURCE_REQUIREMENTS),
    ],
);

static POD_STATUS: TypeMeta = ty(
    "PodStatus",
    &[
        merge_by("conditions", "type", &TypeMeta::UNTAGGED),
        ssa(
            merge_by("hostIPs", "ip", &TypeMeta::UNTAGGED),
            ListType::Atomic,
        ),
        merge_by("podIPs", "ip", &TypeMeta::UNTAGGED),
        merge_retain_by("resourceClaimStatuses", "name", &TypeMeta::UNTAGGED),
    ],
);

static POD_TEMPLATE_SPEC: TypeMeta = ty(
    "PodTemplateSpec",
    &[nested("metadata", &OBJECT_META), nested("spec", &POD_SPEC)],
);

static POD: TypeMeta = ty(
    "Pod",
    &[
        nested("metadata", &OBJECT_META),
        nested("spec", &POD_SPEC),
        nested("status", &POD_STATUS),
    ],
);

static POD_TEMPLATE: TypeMeta = ty(
    "PodTemplate",
    &[
        nested("metadata", &OBJECT_META),
        nested("template", &POD_TEMPLATE_SPEC),
    ],
);

/// `selector`: a LabelSelector (`+structType=atomic`) or, in a ReplicationController and a
/// Service, a label map with `+mapType=atomic`: one value for server-side apply.
const ATOMIC_SELECTOR: Field = ssa(nested("selector", &TypeMeta::UNTAGGED), ListType::Atomic);

/// The spec of every workload with a pod template (and no other tagged spec field).
static TEMPLATED_SPEC: TypeMeta = ty(
    "WorkloadSpec",
    &[nested("template", &POD_TEMPLATE_SPEC), ATOMIC_SELECTOR],
);

/// ReplicationController, ReplicaSet, DaemonSet, StatefulSet, Job: template + conditions.
static TEMPLATED_WORKLOAD: TypeMeta = ty(
    "Workload",
    &[
        nested("metadata", &OBJECT_META),
        nested("spec", &TEMPLATED_SPEC),
        nested("status", &CONDITIONS_STATUS),
    ],
);

// ---- core/v1: other kinds -----------------------------------------------------------------

static SERVICE: TypeMeta = ty(
    "Service",
    &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &ty(
                "ServiceSpec",
                // `+listMapKey=port +listMapKey=protocol`, protocol defaulting to TCP
                &[
                    ssa(
                        merge_by("ports", "port", &TypeMeta::UNTAGGED),
                        list_map(&[key("port"), key_or("protocol", "TCP")]),
                    ),
                    ATOMIC_SELECTOR,
                ],
            ),
        ),
        nested("status", &CONDITIONS_STATUS),
    ],
);

static NODE: TypeMeta = ty(
    "Node",
    &[
        nested("metadata", &OBJECT_META),
        nested("spec", &ty("NodeSpec", &[merge_set("podCIDRs")])),
        nested(
            "status",
            &ty(
                "NodeStatus",
                &[
                    merge_by("conditions", "type", &TypeMeta::UNTAGGED),
                    merge_by("addresses", "type", &TypeMeta::UNTAGGED),
                ],
            ),
        ),
    ],
);

/// Namespace, PersistentVolumeClaim, and the other kinds whose only tagged field is
/// `status.conditions`.
static STATUS_CONDITIONS_KIND: TypeMeta = ty(
    "Object",
    &[
        nested("metadata", &OBJECT_META),
        nested("status", &CONDITIONS_STATUS),
    ],
);

static SERVICE_ACCOUNT: TypeMeta = ty(
    "ServiceAccount",
    &[
        nested("metadata", &OBJECT_META),
        merge_by("secrets", "name", &TypeMeta::UNTAGGED),
    ],
);

static COMPONENT_STATUS: TypeMeta = ty(
    "ComponentStatus",
    &[
        nested("metadata", &OBJECT_META),
        merge_by("conditions", "type", &TypeMeta::UNTAGGED),
    ],
);

// ---- apps/v1, batch/v1 --------------------------------------------------------------------

static DEPLOYMENT: TypeMeta = ty(
    "Deployment",
    &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &ty(
                "DeploymentSpec",
                &[
                    nested("template", &POD_TEMPLATE_SPEC),
                    retain_keys("strategy", &TypeMeta::UNTAGGED),
                    ATOMIC_SELECTOR,
                ],
            ),
        ),
        nested("status", &CONDITIONS_STATUS),
    ],
);

/// Job: its `status.conditions` carry the merge tag but are `+listType=atomic`; the
/// uncounted pod lists are sets.
static JOB: TypeMeta = ty(
    "Job",
    &[
        nested("metadata", &OBJECT_META),
        nested("spec", &TEMPLATED_SPEC),
        nested(
            "status",
            &ty(
                "JobStatus",
                &[
                    ssa(
                        merge_by("conditions", "type", &TypeMeta::UNTAGGED),
                        ListType::Atomic,
                    ),
                    nested(
                        "uncountedTerminatedPods",
                        &ty(
                            "UncountedTerminatedPods",
                            &[
                                ssa(nested("succeeded", &TypeMeta::UNTAGGED), ListType::Set),
                                ssa(nested("failed", &TypeMeta::UNTAGGED), ListType::Set),
                            ],
                        ),
                    ),
                ],
            ),
        ),
    ],
);

static CRON_JOB: TypeMeta = ty(
    "CronJob",
    &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &ty(
                "CronJobSpec",
                &[nested(
                    "jobTemplate",
                    &ty(
                        "JobTemplateSpec",
                        &[
                            nested("metadata", &OBJECT_META),
                            nested("spec", &TEMPLATED_SPEC),
                        ],
                    ),
                )],
            ),
        ),
    ],
);

// ---- certificates/v1 ---------------------------------------------------------------------

/// CertificateSigningRequest: untagged `status.conditions`, a map on `type` for apply.
static CERTIFICATE_SIGNING_REQUEST: TypeMeta = ty(
    "CertificateSigningRequest",
    &[
        nested("metadata", &OBJECT_META),
        nested(
            "status",
            &ty(
                "CertificateSigningRequestStatus",
                &[ssa(
                    nested("conditions", &TypeMeta::UNTAGGED),
                    list_map(&[key("type")]),
                )],
            ),
        ),
    ],
);

// ---- policy/v1 ----------------------------------------------------------------------------

static POD_DISRUPTION_BUDGET: TypeMeta = ty(
    "PodDisruptionBudget",
    &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &ty("PodDisruptionBudgetSpec", &[replace("selector")]),
        ),
        nested("status", &CONDITIONS_STATUS),
    ],
);

// ---- admissionregistration/v1, storage/v1, resource ---------------------------------------

static WEBHOOK: TypeMeta = ty(
    "Webhook",
    &[merge_by("matchConditions", "name", &TypeMeta::UNTAGGED)],
);

static WEBHOOK_CONFIGURATION: TypeMeta = ty(
    "WebhookConfiguration",
    &[
        nested("metadata", &OBJECT_META),
        merge_by("webhooks", "name", &WEBHOOK),
    ],
);

static ADMISSION_POLICY: TypeMeta = ty(
    "AdmissionPolicy",
    &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &ty(
                "AdmissionPolicySpec",
                &[
                    merge_by("matchConditions", "name", &TypeMeta::UNTAGGED),
                    merge_by("variables", "name", &TypeMeta::UNTAGGED),
                ],
            ),
        ),
        nested("status", &CONDITIONS_STATUS),
    ],
);

static CSI_NODE: TypeMeta = ty(
    "CSINode",
    &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &ty(
                "CSINodeSpec",
                &[merge_by("drivers", "name", &TypeMeta::UNTAGGED)],
            ),
        ),
    ],
);

static CSI_DRIVER: TypeMeta = ty(
    "CSIDriver",
    &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &ty(
                "CSIDriverSpec",
                &[ssa(
                    nested("volumeLifecycleModes", &TypeMeta::UNTAGGED),
                    ListType::Set,
                )],
            ),
        ),
    ],
);

static RESOURCE_CLAIM: TypeMeta = ty(
    "ResourceClaim",
    &[
        nested("metadata", &OBJECT_META),
        nested(
            "status",
            &ty(
                "ResourceClaimStatus",
                &[merge_by("reservedFor", "uid", &TypeMeta::UNTAGGED)],
            ),
        ),
    ],
);

/// The root type of a kind with tagged fields outside its metadata.
pub(crate) fn root(group: &str, kind: &str) -> Option<&'static TypeMeta> {
    let t: &'static TypeMeta = match (group, kind) {
        ("", "Pod") => &POD,
        ("", "PodTemplate") => &POD_TEMPLATE,
        ("", "ReplicationController") => &TEMPLATED_WORKLOAD,
        ("", "Service") => &SERVICE,
        ("", "Node") => &NODE,
        ("", "Namespace") | ("", "PersistentVolumeClaim") => &STATUS_CONDITIONS_KIND,
        ("", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("", "ComponentStatus") => &COMPONENT_STATUS,
        ("apps", "Deployment") => &DEPLOYMENT,
        ("apps", "ReplicaSet" | "DaemonSet" | "StatefulSet") => &TEMPLATED_WORKLOAD,
        ("batch", "Job") => &JOB,
        ("batch", "CronJob") => &CRON_JOB,
        ("autoscaling", "HorizontalPodAutoscaler") => &STATUS_CONDITIONS_KIND,
        ("policy", "PodDisruptionBudget") => &POD_DISRUPTION_BUDGET,
        ("flowcontrol.apiserver.k8s.io", "FlowSchema" | "PriorityLevelConfiguration") => {
            &STATUS_CONDITIONS_KIND
        }
        ("networking.k8s.io", "ServiceCIDR") => &STATUS_CONDITIONS_KIND,
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
        ) => &WEBHOOK_CONFIGURATION,
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicy" | "MutatingAdmissionPolicy",
        ) => &ADMISSION_POLICY,
        ("storage.k8s.io", "CSINode") => &CSI_NODE,
        ("storage.k8s.io", "CSIDriver") => &CSI_DRIVER,
        ("certificates.k8s.io", "CertificateSigningRequest") => &CERTIFICATE_SIGNING_REQUEST,
        ("resource.k8s.io", "ResourceClaim") => &RESOURCE_CLAIM,
        _ => return None,
    };
    Some(t)
}
