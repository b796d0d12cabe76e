//! Response forms a client may ask for in `Accept`: plain JSON, a `meta.k8s.io` `Table`
//! (what `kubectl get` asks for), or `PartialObjectMetadata(List)`.

use chrono::Utc;
use serde_json::{json, Value};

use bramble_api::printers::{self, IncludeObject, TableOptions};
use bramble_api::{ResourceInfo, Status};

use crate::query::Query;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Json,
    /// `as=Table` in `meta.k8s.io/<version>`.
    Table(&'static str),
    /// `as=PartialObjectMetadata` (single objects) or `as=PartialObjectMetadataList` (lists).
    PartialMetadata(&'static str),
}

/// The first form of `Accept` Bramble serves, in the client's order of preference.
pub fn output_for(accept: Option<&str>) -> Output {
    let Some(accept) = accept else {
        return Output::Json;
    };
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let base = parts.next().unwrap_or("");
        let mut as_ = "";
        let mut group = "";
        let mut version = "";
        for p in parts {
            match p.split_once('=') {
                Some(("as", v)) => as_ = v,
                Some(("g", v)) => group = v,
                Some(("v", v)) => version = v,
                _ => {}
            }
        }
        if base != "application/json" && base != "*/*" && base != "application/*" {
            continue;
        }
        let meta_version = match (group, version) {
            ("meta.k8s.io", "v1") => "meta.k8s.io/v1",
            ("meta.k8s.io", "v1beta1") => "meta.k8s.io/v1beta1",
            _ if as_.is_empty() => return Output::Json,
            _ => continue,
        };
        match as_ {
            "Table" => return Output::Table(meta_version),
            "PartialObjectMetadata" | "PartialObjectMetadataList" => {
                return Output::PartialMetadata(meta_version)
            }
            "" => return Output::Json,
            _ => continue,
        }
    }
    Output::Json
}

/// Table options from the query (`includeObject`, `noHeaders`).
pub fn table_options(q: &Query) -> Result<TableOptions, Status> {
    let mut opts = TableOptions::at(Utc::now());
    if let Some(v) = q.get("includeObject") {
        opts.include_object = IncludeObject::parse(v).map_err(Status::bad_request)?;
    }
    opts.no_headers = q.flag("noHeaders");
    Ok(opts)
}

/// Renders objects in the asked form, or `None` for plain JSON (which the caller writes from
/// the stored bytes). `list_meta` is the list's `metadata` (None for a single object).
pub fn render(
    output: &Output,
    info: &ResourceInfo,
    objects: &[Value],
    list_meta: Option<Value>,
    q: &Query,
) -> Result<Option<Value>, Status> {
    let (mut out, version) = match output {
        Output::Json => return Ok(None),
        Output::Table(v) if info.decode.is_none() => {
            let columns =
                bramble_api::crd::printer_columns(&info.group, &info.version, &info.resource);
            (
                printers::custom_resource_table(&columns, objects, &table_options(q)?),
                v,
            )
        }
        Output::Table(v) => (printers::table(info, objects, &table_options(q)?), v),
        Output::PartialMetadata(v) => match &list_meta {
            Some(_) => (printers::partial_object_metadata_list(objects), v),
            None => (
                printers::partial_object_metadata(objects.first().unwrap_or(&Value::Null)),
                v,
            ),
        },
    };
    out["apiVersion"] = json!(version);
    if let Some(meta) = list_meta {
        out["metadata"] = meta;
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_tables() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(output_for(Some(accept)), Output::Table("meta.k8s.io/v1"));
        assert_eq!(output_for(Some("application/json")), Output::Json);
        assert_eq!(
            output_for(Some("application/vnd.kubernetes.protobuf, */*")),
            Output::Json
        );
        assert_eq!(
            output_for(Some(
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
            )),
            Output::PartialMetadata("meta.k8s.io/v1")
        );
        assert_eq!(output_for(None), Output::Json);
    }
}
