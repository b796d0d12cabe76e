//! The REST operations of each served resource (paths, verbs, parameters, bodies and
//! responses) in a flavor-neutral form; `render` turns them into OpenAPI v3 or Swagger 2.0.

use super::kinds;
use super::params::{self, Param};
use super::schemas::{kind_names, SUBRESOURCE_KINDS};
use crate::patch::supported_patch_types;
use crate::resources::ResourceInfo;

/// A response: status code, description and the definition it returns (`None`: plain text).
#[derive(Debug)]
pub(crate) struct Response {
    pub code: u16,
    pub description: &'static str,
    pub schema: Option<String>,
}

/// One operation of a path.
#[derive(Debug)]
pub(crate) struct Operation {
    /// HTTP method in lower case (`get`, `put`, `post`, `patch`, `delete`).
    pub method: &'static str,
    /// `x-kubernetes-action`: get, list, post, put, patch, delete, deletecollection, watch,
    /// watchlist.
    pub action: &'static str,
    pub id: String,
    pub description: String,
    /// `x-kubernetes-group-version-kind`.
    pub gvk: [String; 3],
    pub query: &'static [&'static Param],
    /// Request body definition and its media types.
    pub body: Option<(String, &'static [&'static str])>,
    pub responses: Vec<Response>,
    /// Media types the responses come in.
    pub produces: &'static [&'static str],
    pub tag: String,
}

/// A path with its path-level parameters and operations.
#[derive(Debug)]
pub(crate) struct PathItem {
    pub path: String,
    pub params: Vec<&'static Param>,
    pub operations: Vec<Operation>,
}

const JSON_YAML: &[&str] = &["application/json", "application/yaml"];
const WATCH_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];
const TEXT: &[&str] = &["text/plain", "application/json", "application/yaml"];
const BODY_TYPES: &[&str] = &["application/json", "application/yaml"];

/// `apps` -> `Apps`, `rbac.authorization.k8s.io` -> `RbacAuthorization`, `` -> `Core`.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .strip_suffix(".k8s.io")
        .unwrap_or(group)
        .split(['.', '-'])
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Upstream's operation tag: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    let lower: String = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

/// Builds the operations of one resource, in upstream's path layout.
struct Builder<'a> {
    info: &'a ResourceInfo,
    /// `/api/v1` or `/apis/<group>/<version>`.
    prefix: String,
    /// `CoreV1`, `AppsV1`.
    gv_camel: String,
    kind_def: String,
    list_def: String,
    tag: String,
    items: Vec<PathItem>,
}

impl<'a> Builder<'a> {
    fn has_verb(&self, verb: &str) -> bool {
        self.info.verbs.iter().any(|v| v == verb)
    }

    fn gvk(&self) -> [String; 3] {
        [
            self.info.group.clone(),
            self.info.version.clone(),
            self.info.kind.clone(),
        ]
    }

    /// `Namespaced` for namespaced resources.
    fn scope(&self) -> &'static str {
        if self.info.namespaced {
            "Namespaced"
        } else {
            ""
        }
    }

    /// Collection path within a namespace (or the cluster).
    fn collection(&self, watch: bool) -> String {
        let watch = if watch { "/watch" } else { "" };
        if self.info.namespaced {
            format!(
                "{}{watch}/namespaces/{{namespace}}/{}",
                self.prefix, self.info.resource
            )
        } else {
            format!("{}{watch}/{}", self.prefix, self.info.resource)
        }
    }

    fn scope_params(&self, named: bool) -> Vec<&'static Param> {
        let mut out = Vec::new();
        if named {
            out.push(&params::NAME);
        }
        if self.info.namespaced {
            out.push(&params::NAMESPACE);
        }
        out.push(&params::PRETTY);
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn op(
        &self,
        method: &'static str,
        action: &'static str,
        id: String,
        description: String,
        query: &'static [&'static Param],
        body: Option<(String, &'static [&'static str])>,
        responses: Vec<Response>,
        produces: &'static [&'static str],
    ) -> Operation {
        Operation {
            method,
            action,
            id,
            description,
            gvk: self.gvk(),
            query,
            body,
            responses,
            produces,
            tag: self.tag.clone(),
        }
    }

    fn ok(schema: &str) -> Vec<Response> {
        vec![Response {
            code: 200,
            description: "OK",
            schema: Some(schema.to_string()),
        }]
    }

    fn write_responses(schema: &str, codes: &[(u16, &'static str)]) -> Vec<Response> {
        codes
            .iter()
            .map(|(code, description)| Response {
                code: *code,
                description,
                schema: Some(schema.to_string()),
            })
            .collect()
    }

    fn collection_paths(&mut self) {
        let (kind, gv, scope) = (&self.info.kind, &self.gv_camel, self.scope());
        let mut ops = Vec::new();
        if self.has_verb("list") {
            ops.push(self.op(
                "get",
                "list",
                format!("list{gv}{scope}{kind}"),
                format!("list or watch objects of kind {kind}"),
                params::LIST,
                None,
                Self::ok(&self.list_def),
                WATCH_TYPES,
            ));
        }
        if self.has_verb("create") {
            ops.push(self.op(
                "post",
                "post",
                format!("create{gv}{scope}{kind}"),
                format!("create {}", article(kind)),
                params::WRITE,
                Some((self.kind_def.clone(), BODY_TYPES)),
                Self::write_responses(
                    &self.kind_def,
                    &[(200, "OK"), (201, "Created"), (202, "Accepted")],
                ),
                JSON_YAML,
            ));
        }
        if self.has_verb("deletecollection") {
            ops.push(self.op(
                "delete",
                "deletecollection",
                format!("delete{gv}Collection{scope}{kind}"),
                format!("delete collection of {kind}"),
                params::DELETE_COLLECTION,
                Some((kinds::DELETE_OPTIONS.to_string(), BODY_TYPES)),
                Self::ok(kinds::STATUS),
                JSON_YAML,
            ));
        }
        let path = self.collection(false);
        self.push(path, self.scope_params(false), ops);
    }

    fn item_paths(&mut self) {
        let (kind, gv, scope) = (&self.info.kind, &self.gv_camel, self.scope());
        let mut ops = Vec::new();
        if self.has_verb("get") {
            ops.push(self.op(
                "get",
                "get",
                format!("read{gv}{scope}{kind}"),
                format!("read the specified {kind}"),
                &[],
                None,
                Self::ok(&self.kind_def),
                JSON_YAML,
            ));
        }
        if self.has_verb("update") {
            ops.push(self.op(
                "put",
                "put",
                format!("replace{gv}{scope}{kind}"),
                format!("replace the specified {kind}"),
                params::WRITE,
                Some((self.kind_def.clone(), BODY_TYPES)),
                Self::write_responses(&self.kind_def, &[(200, "OK"), (201, "Created")]),
                JSON_YAML,
            ));
        }
        if self.has_verb("patch") {
            ops.push(self.op(
                "patch",
                "patch",
                format!("patch{gv}{scope}{kind}"),
                format!("partially update the specified {kind}"),
                params::PATCH,
                Some((kinds::PATCH.to_string(), supported_patch_types(self.info))),
                Self::write_responses(&self.kind_def, &[(200, "OK"), (201, "Created")]),
                JSON_YAML,
            ));
        }
        if self.has_verb("delete") {
            ops.push(self.op(
                "delete",
                "delete",
                format!("delete{gv}{scope}{kind}"),
                format!("delete {}", article(kind)),
                params::DELETE,
                Some((kinds::DELETE_OPTIONS.to_string(), BODY_TYPES)),
                Self::write_responses(kinds::STATUS, &[(200, "OK"), (202, "Accepted")]),
                JSON_YAML,
            ));
        }
        let path = format!("{}/{{name}}", self.collection(false));
        self.push(path, self.scope_params(true), ops);
    }

    fn all_namespaces_path(&mut self) {
        if !self.info.namespaced || !self.has_verb("list") {
            return;
        }
        let (kind, gv) = (&self.info.kind, &self.gv_camel);
        let op = self.op(
            "get",
            "list",
            format!("list{gv}{kind}ForAllNamespaces"),
            format!("list or watch objects of kind {kind}"),
            params::LIST,
            None,
            Self::ok(&self.list_def),
            WATCH_TYPES,
        );
        let path = format!("{}/{}", self.prefix, self.info.resource);
        self.push(path, vec![&params::PRETTY], vec![op]);
    }

    fn watch_paths(&mut self) {
        if !self.has_verb("watch") {
            return;
        }
        let (kind, gv, scope) = (self.info.kind.clone(), self.gv_camel.clone(), self.scope());
        let deprecated = "deprecated: use the 'watch' parameter with a list operation instead";
        let list = self.op(
            "get",
            "watchlist",
            format!("watch{gv}{scope}{kind}List"),
            format!("watch individual changes to a list of {kind}. {deprecated}."),
            params::LIST,
            None,
            Self::ok(kinds::WATCH_EVENT),
            WATCH_TYPES,
        );
        let path = self.collection(true);
        self.push(path, self.scope_params(false), vec![list]);
        let one = self.op(
            "get",
            "watch",
            format!("watch{gv}{scope}{kind}"),
            format!("watch changes to an object of kind {kind}. {deprecated}, filtered to a single item with the 'fieldSelector' parameter."),
            params::LIST,
            None,
            Self::ok(kinds::WATCH_EVENT),
            WATCH_TYPES,
        );
        let path = format!("{}/{{name}}", self.collection(true));
        self.push(path, self.scope_params(true), vec![one]);
        if self.info.namespaced {
            let all = self.op(
                "get",
                "watchlist",
                format!("watch{gv}{kind}ListForAllNamespaces"),
                format!("watch individual changes to a list of {kind}. {deprecated}."),
                params::LIST,
                None,
                Self::ok(kinds::WATCH_EVENT),
                WATCH_TYPES,
            );
            let path = format!("{}/watch/{}", self.prefix, self.info.resource);
            self.push(path, vec![&params::PRETTY], vec![all]);
        }
    }

    /// `status`, `scale`, `approval`, `ephemeralcontainers`, `resize` (read/replace/patch),
    /// `finalize` (replace), `binding`, `eviction`, `token` (create) and `log` (read).
    fn subresource_paths(&mut self) {
        let subresources = self.info.subresources.clone();
        for sub in &subresources {
            let (kind, gv, scope) = (&self.info.kind, &self.gv_camel, self.scope());
            let suffix = capitalize(sub);
            let other = SUBRESOURCE_KINDS.iter().find(|(s, ..)| s == sub);
            let (body_def, gvk) = match other {
                Some((_, group, version, other_kind)) => {
                    match kinds::find(group, version, other_kind) {
                        Some(k) => (
                            (k.name)().into_owned(),
                            [
                                group.to_string(),
                                version.to_string(),
                                other_kind.to_string(),
                            ],
                        ),
                        None => continue,
                    }
                }
                None => (self.kind_def.clone(), self.gvk()),
            };
            let mut ops = Vec::new();
            let mut push = |op: Operation| {
                ops.push(Operation {
                    gvk: gvk.clone(),
                    ..op
                })
            };
            match sub.as_str() {
                "status" | "scale" | "approval" | "ephemeralcontainers" | "resize" => {
                    let what = match sub.as_str() {
                        "status" => "status of ",
                        "scale" => "scale of ",
                        "approval" => "approval of ",
                        "ephemeralcontainers" => "ephemeralcontainers of ",
                        _ => "resize of ",
                    };
                    push(self.op(
                        "get",
                        "get",
                        format!("read{gv}{scope}{kind}{suffix}"),
                        format!("read {what}the specified {kind}"),
                        &[],
                        None,
                        Self::ok(&body_def),
                        JSON_YAML,
                    ));
                    push(self.op(
                        "put",
                        "put",
                        format!("replace{gv}{scope}{kind}{suffix}"),
                        format!("replace {what}the specified {kind}"),
                        params::WRITE,
                        Some((body_def.clone(), BODY_TYPES)),
                        Self::write_responses(&body_def, &[(200, "OK"), (201, "Created")]),
                        JSON_YAML,
                    ));
                    push(self.op(
                        "patch",
                        "patch",
                        format!("patch{gv}{scope}{kind}{suffix}"),
                        format!("partially update {what}the specified {kind}"),
                        params::PATCH,
                        Some((kinds::PATCH.to_string(), supported_patch_types(self.info))),
                        Self::write_responses(&body_def, &[(200, "OK"), (201, "Created")]),
                        JSON_YAML,
                    ));
                }
                "finalize" => push(self.op(
                    "put",
                    "put",
                    format!("replace{gv}{scope}{kind}{suffix}"),
                    format!("replace finalize of the specified {kind}"),
                    params::WRITE,
                    Some((body_def.clone(), BODY_TYPES)),
                    Self::write_responses(&body_def, &[(200, "OK"), (201, "Created")]),
                    JSON_YAML,
                )),
                "binding" | "eviction" | "token" => push(self.op(
                    "post",
                    "post",
                    format!("create{gv}{scope}{kind}{suffix}"),
                    format!("create {sub} of {}", article(kind)),
                    params::WRITE,
                    Some((body_def.clone(), BODY_TYPES)),
                    Self::write_responses(
                        &body_def,
                        &[(200, "OK"), (201, "Created"), (202, "Accepted")],
                    ),
                    JSON_YAML,
                )),
                "log" => push(self.op(
                    "get",
                    "get",
                    format!("read{gv}{scope}{kind}{suffix}"),
                    format!("read log of the specified {kind}"),
                    params::LOG,
                    None,
                    vec![Response {
                        code: 200,
                        description: "OK",
                        schema: None,
                    }],
                    TEXT,
                )),
                // exec, attach, portforward, proxy: connect streams, not described here.
                _ => {}
            }
            if !ops.is_empty() {
                let path = format!("{}/{{name}}/{sub}", self.collection(false));
                self.push(path, self.scope_params(true), ops);
            }
        }
    }

    fn push(&mut self, path: String, params: Vec<&'static Param>, operations: Vec<Operation>) {
        if !operations.is_empty() {
            self.items.push(PathItem {
                path,
                params,
                operations,
            });
        }
    }
}

/// `a Pod`, `an Ingress`.
fn article(kind: &str) -> String {
    let vowel = kind
        .chars()
        .next()
        .is_some_and(|c| "AEIOU".contains(c.to_ascii_uppercase()));
    if vowel {
        format!("an {kind}")
    } else {
        format!("a {kind}")
    }
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub(crate) fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Every path of one resource.
pub(crate) fn resource_paths(info: &ResourceInfo) -> Vec<PathItem> {
    let names = kind_names(info);
    let mut b = Builder {
        info,
        prefix: prefix(&info.group, &info.version),
        gv_camel: format!("{}{}", group_camel(&info.group), capitalize(&info.version)),
        kind_def: names.kind,
        list_def: names.list,
        tag: tag(&info.group, &info.version),
        items: Vec::new(),
    };
    b.collection_paths();
    b.item_paths();
    b.subresource_paths();
    b.all_namespaces_path();
    b.watch_paths();
    b.items
}
