//! Which k8s-openapi type gives the schema of each built-in kind (and of the kinds that
//! subresources take and return), looked up by group/version/kind.

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authentication, autoscaling::v1 as autoscaling_v1,
    autoscaling::v2 as autoscaling, batch::v1 as batch, certificates::v1 as certificates,
    coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
    events::v1 as events, networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::{JsonSchema, Schema, SchemaGenerator};
use k8s_openapi::Resource;

/// Adds a type's schema (and everything it references) to a generator's definitions and
/// returns the `$ref` to it.
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A built-in kind whose schema k8s-openapi provides.
pub(crate) struct KindSchema {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Definition name as upstream spells it (`io.k8s.api.core.v1.Pod`).
    pub name: fn() -> std::borrow::Cow<'static, str>,
    pub schema: SchemaFn,
}

fn sub<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn entry<T: Resource + JsonSchema>() -> KindSchema {
    KindSchema {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        name: T::schema_name,
        schema: sub::<T>,
    }
}

/// Every kind with a typed schema: the registry's built-ins plus subresource bodies
/// (`Scale`, `Binding`, `Eviction`, `TokenRequest`).
pub(crate) fn builtin_kinds() -> Vec<KindSchema> {
    vec![
        entry::<core::ConfigMap>(),
        entry::<core::Endpoints>(),
        entry::<core::Event>(),
        entry::<core::LimitRange>(),
        entry::<core::Namespace>(),
        entry::<core::Node>(),
        entry::<core::PersistentVolumeClaim>(),
        entry::<core::PersistentVolume>(),
        entry::<core::Pod>(),
        entry::<core::ResourceQuota>(),
        entry::<core::Secret>(),
        entry::<core::ServiceAccount>(),
        entry::<core::Service>(),
        entry::<core::ComponentStatus>(),
        entry::<core::Binding>(),
        entry::<apps::ControllerRevision>(),
        entry::<apps::DaemonSet>(),
        entry::<apps::Deployment>(),
        entry::<apps::ReplicaSet>(),
        entry::<apps::StatefulSet>(),
        entry::<events::Event>(),
        entry::<autoscaling::HorizontalPodAutoscaler>(),
        entry::<autoscaling_v1::HorizontalPodAutoscaler>(),
        entry::<autoscaling_v1::Scale>(),
        entry::<batch::CronJob>(),
        entry::<batch::Job>(),
        entry::<certificates::CertificateSigningRequest>(),
        entry::<networking::IngressClass>(),
        entry::<networking::Ingress>(),
        entry::<policy::PodDisruptionBudget>(),
        entry::<policy::Eviction>(),
        entry::<rbac::ClusterRoleBinding>(),
        entry::<rbac::ClusterRole>(),
        entry::<rbac::RoleBinding>(),
        entry::<rbac::Role>(),
        entry::<storage::StorageClass>(),
        entry::<apiextensions::CustomResourceDefinition>(),
        entry::<scheduling::PriorityClass>(),
        entry::<coordination::Lease>(),
        entry::<discovery::EndpointSlice>(),
        entry::<authentication::TokenRequest>(),
    ]
}

/// The typed schema of a kind, if it is a built-in.
pub(crate) fn find(group: &str, version: &str, kind: &str) -> Option<KindSchema> {
    builtin_kinds()
        .into_iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// Definition names of the meta types every group-version document carries.
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Adds the meta types operations refer to (`DeleteOptions`, `Status`, `WatchEvent`,
/// `Patch`, `ListMeta`, `ObjectMeta`).
pub(crate) fn add_meta_types(generator: &mut SchemaGenerator) {
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::WatchEvent<()>>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::ListMeta>();
    generator.subschema_for::<meta::ObjectMeta>();
}
