//! Server-side Table printing: what the API server answers to
//! `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` (what `kubectl get` sends), with
//! upstream's columns for every built-in kind (`pkg/printers/internalversion`), upstream's
//! default table (`Name`, `Created At`) for kinds without a printer, and the
//! `includeObject` handling of the apiserver's `asTable` (`None`, `Metadata`, `Object`).
//!
//! As upstream's `printerstorage.TableConvertor` does, every table is generated "wide": the
//! `-o wide` columns carry `priority: 1` and kubectl hides them unless asked.

mod cluster;
mod core;
mod custom;
mod descriptions;
mod duration;
mod events;
mod format;
mod pod;
mod workloads;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::resources::ResourceInfo;

pub use custom::{custom_resource_table, PrinterColumn};
pub use duration::{human_duration, short_human_duration};

/// `meta.k8s.io/v1`, the group/version of `Table` and `PartialObjectMetadata`.
pub const META_API_VERSION: &str = "meta.k8s.io/v1";

/// What each row's `object` holds (`?includeObject=`), as upstream's `metav1.IncludeObjectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `object: null`.
    None,
    /// A `PartialObjectMetadata` with the object's metadata: the default, and what
    /// `kubectl get` gets unless it sorts.
    #[default]
    Metadata,
    /// The whole object (`kubectl get --sort-by` asks for it).
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; `""` is the default (`Metadata`). The
    /// error is upstream's 400 message: `unrecognized includeObject value: "Foo"`.
    pub fn parse(value: &str) -> Result<IncludeObject, String> {
        match value {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(format!(
                "unrecognized includeObject value: {}",
                serde_json::Value::String(other.to_string())
            )),
        }
    }
}

/// Options of one Table conversion.
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// What each row's `object` holds.
    pub include_object: IncludeObject,
    /// `?noHeaders=true` (kubectl `--no-headers`): `columnDefinitions` is `null`.
    pub no_headers: bool,
    /// The time ages and durations are measured to (passed in so output is deterministic).
    pub now: DateTime<Utc>,
}

impl TableOptions {
    /// Default options (`Metadata`, with headers) at `now`.
    pub fn at(now: DateTime<Utc>) -> TableOptions {
        TableOptions {
            include_object: IncludeObject::Metadata,
            no_headers: false,
            now,
        }
    }
}

/// One column of a table (`metav1.TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    pub kind: &'static str,
    /// `name` for the object-name column, otherwise empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 for normal columns, 1 for the ones kubectl shows only with `-o wide`.
    pub priority: i64,
}

impl Column {
    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// A normal string column.
pub(crate) const fn col(name: &'static str, description: &'static str) -> Column {
    typed(name, "string", description)
}

/// A normal column of another type.
pub(crate) const fn typed(
    name: &'static str,
    kind: &'static str,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 0,
    }
}

/// A string column shown only with `-o wide`.
pub(crate) const fn wide(name: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind: "string",
        format: "",
        description,
        priority: 1,
    }
}

/// The `Name` column every printer starts with.
pub(crate) const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: descriptions::META_NAME,
    priority: 0,
};

/// The `Age` column.
pub(crate) const AGE: Column = col("Age", descriptions::META_CREATION);

/// Context a row printer needs besides the object.
pub(crate) struct Ctx {
    pub now: DateTime<Utc>,
}

/// One printed row: its cells and its row conditions (`Completed` for finished pods).
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Vec<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Row {
        Row {
            cells,
            conditions: Vec::new(),
        }
    }
}

/// A kind's printer: its columns and the function printing one object.
pub(crate) struct Printer {
    pub columns: &'static [Column],
    pub row: fn(&Value, &Ctx) -> Row,
}

/// The printer upstream registers for a group and kind, if any.
fn printer_for(group: &str, kind: &str) -> Option<&'static Printer> {
    let printer = match (group, kind) {
        ("", "Pod") => &pod::POD,
        ("", "Node") => &core::NODE,
        ("", "Namespace") => &core::NAMESPACE,
        ("", "Service") => &core::SERVICE,
        ("", "Endpoints") => &core::ENDPOINTS,
        ("", "ConfigMap") => &core::CONFIG_MAP,
        ("", "Secret") => &core::SECRET,
        ("", "ServiceAccount") => &core::SERVICE_ACCOUNT,
        ("", "PersistentVolume") => &core::PERSISTENT_VOLUME,
        ("", "PersistentVolumeClaim") => &core::PERSISTENT_VOLUME_CLAIM,
        ("", "ResourceQuota") => &core::RESOURCE_QUOTA,
        ("", "ComponentStatus") => &core::COMPONENT_STATUS,
        ("", "Event") => &events::EVENT,
        ("events.k8s.io", "Event") => &events::EVENT_V1,
        ("apps", "Deployment") => &workloads::DEPLOYMENT,
        ("apps", "ReplicaSet") => &workloads::REPLICA_SET,
        ("apps", "DaemonSet") => &workloads::DAEMON_SET,
        ("apps", "StatefulSet") => &workloads::STATEFUL_SET,
        ("apps", "ControllerRevision") => &workloads::CONTROLLER_REVISION,
        ("batch", "Job") => &workloads::JOB,
        ("batch", "CronJob") => &workloads::CRON_JOB,
        ("autoscaling", "HorizontalPodAutoscaler") => &workloads::HPA,
        ("policy", "PodDisruptionBudget") => &workloads::PDB,
        ("discovery.k8s.io", "EndpointSlice") => &cluster::ENDPOINT_SLICE,
        ("networking.k8s.io", "Ingress") => &cluster::INGRESS,
        ("networking.k8s.io", "IngressClass") => &cluster::INGRESS_CLASS,
        ("networking.k8s.io", "NetworkPolicy") => &cluster::NETWORK_POLICY,
        ("storage.k8s.io", "StorageClass") => &cluster::STORAGE_CLASS,
        ("coordination.k8s.io", "Lease") => &cluster::LEASE,
        ("rbac.authorization.k8s.io", "RoleBinding") => &cluster::ROLE_BINDING,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &cluster::CLUSTER_ROLE_BINDING,
        ("scheduling.k8s.io", "PriorityClass") => &cluster::PRIORITY_CLASS,
        ("certificates.k8s.io", "CertificateSigningRequest") => &cluster::CSR,
        _ => return None,
    };
    Some(printer)
}

/// Upstream's `rest.DefaultTableConvertor` columns: `Name` and `Created At` (type `date`,
/// printed by kubectl as the RFC 3339 string under `CREATED AT`).
const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    typed("Created At", "date", descriptions::META_CREATION),
];

fn default_row(obj: &Value, _ctx: &Ctx) -> Row {
    let created = format::time_at(obj, "/metadata/creationTimestamp")
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![format::name(obj), Value::String(created)].into()
}

const DEFAULT_PRINTER: Printer = Printer {
    columns: DEFAULT_COLUMNS,
    row: default_row,
};

/// Converts objects of one resource to a `meta.k8s.io/v1` `Table` with upstream's columns
/// and cells. `metadata` is left `{}` for the caller to fill (`resourceVersion`,
/// `continue`). Custom resources (no typed decoder) get the CRD default `Age` column; use
/// [`custom_resource_table`] to print a CRD's `additionalPrinterColumns`.
pub fn table(info: &ResourceInfo, objects: &[Value], opts: &TableOptions) -> Value {
    let _span =
        tracing::trace_span!("table", resource = %info.qualified_resource(), n = objects.len())
            .entered();
    if info.decode.is_none() {
        return custom_resource_table(&[], objects, opts);
    }
    let printer = printer_for(&info.group, &info.kind).unwrap_or(&DEFAULT_PRINTER);
    let ctx = Ctx { now: opts.now };
    let columns = printer.columns.iter().map(|c| c.to_json()).collect();
    // a served version without rules of its own prints as its storage version
    let rows = objects.iter().map(|obj| {
        let form = crate::conversion::rules_form(info, obj);
        ((printer.row)(&form, &ctx), obj)
    });
    assemble(columns, rows, opts, Some(info))
}

/// Builds the `Table` from column definitions and printed rows.
/// With `info`, whole objects (`includeObject=Object`) get its `apiVersion` and `kind` when
/// they lack them, as upstream's conversion to the request version sets them.
pub(crate) fn assemble<'a>(
    columns: Vec<Value>,
    rows: impl Iterator<Item = (Row, &'a Value)>,
    opts: &TableOptions,
    info: Option<&ResourceInfo>,
) -> Value {
    let column_definitions = if opts.no_headers {
        Value::Null
    } else {
        Value::Array(columns)
    };
    let rows: Vec<Value> = rows
        .map(|(row, obj)| {
            let mut out = Map::new();
            out.insert("cells".into(), Value::Array(row.cells));
            if !row.conditions.is_empty() {
                out.insert("conditions".into(), Value::Array(row.conditions));
            }
            out.insert("object".into(), row_object(obj, opts.include_object, info));
            Value::Object(out)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": META_API_VERSION,
        "metadata": {},
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

fn row_object(obj: &Value, include: IncludeObject, info: Option<&ResourceInfo>) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => partial_object_metadata(obj),
        IncludeObject::Object => {
            let mut whole = obj.clone();
            if let (Some(info), Some(map)) = (info, whole.as_object_mut()) {
                map.entry("apiVersion")
                    .or_insert_with(|| Value::String(info.api_version()));
                map.entry("kind")
                    .or_insert_with(|| Value::String(info.kind.clone()));
            }
            whole
        }
    }
}

/// `{apiVersion: meta.k8s.io/v1, kind: PartialObjectMetadata, metadata: <the object's>}`
/// (upstream `meta.AsPartialObjectMetadata`), for Table rows and `as=PartialObjectMetadata`.
pub fn partial_object_metadata(obj: &Value) -> Value {
    let metadata = obj
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": META_API_VERSION,
        "metadata": metadata,
    })
}

/// A `PartialObjectMetadataList` of the objects (`as=PartialObjectMetadataList`); like
/// [`table`], `metadata` is left `{}` for the caller.
pub fn partial_object_metadata_list(objects: &[Value]) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": META_API_VERSION,
        "metadata": {},
        "items": objects.iter().map(partial_object_metadata).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests;
