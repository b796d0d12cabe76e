//! The subset of the OCI image spec (and its Docker v2 schema 2 twin) the store reads:
//! descriptors, image manifests, indexes/manifest lists and image configs.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer (docker save).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Manifest media types the puller accepts, in order of preference.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];

/// Whether `media_type` is a layer this store can unpack (plain, gzip or zstd tar).
pub fn is_supported_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_LAYER_TAR | OCI_LAYER_GZIP | OCI_LAYER_ZSTD | DOCKER_LAYER_GZIP | DOCKER_LAYER_TAR
    )
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform, in index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
    /// Annotations (e.g. `org.opencontainers.image.ref.name` in OCI layouts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The platform of an index entry or image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlatformSpec {
    /// CPU architecture (GOARCH spelling: `amd64`, `arm64`, `arm`).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v8`, `v7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// Manifest media type (optional in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// Layers, base first.
    pub layers: Vec<Descriptor>,
}

/// An image index / manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// Index media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// One entry per platform manifest.
    pub manifests: Vec<Descriptor>,
}

/// A manifest document of either kind.
#[derive(Debug, Clone)]
pub enum AnyManifest {
    /// Single-platform image.
    Image(ImageManifest),
    /// Multi-platform index.
    Index(ImageIndex),
}

impl AnyManifest {
    /// Parses manifest bytes, deciding the kind from `mediaType` or, when absent, from the
    /// presence of a `manifests` array.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            #[serde(default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(bytes)?;
        let is_index = match probe.media_type.as_deref() {
            Some(OCI_INDEX) | Some(DOCKER_MANIFEST_LIST) => true,
            Some(_) => false,
            None => probe.manifests.is_some(),
        };
        if is_index {
            Ok(Self::Index(serde_json::from_slice(bytes)?))
        } else {
            Ok(Self::Image(serde_json::from_slice(bytes)?))
        }
    }
}

/// The image config fields the kubelet needs to build a container (`config` in the OCI image
/// config), plus the platform it was built for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImageConfigFile {
    /// Architecture the image was built for.
    #[serde(default)]
    pub architecture: String,
    /// OS the image was built for.
    #[serde(default)]
    pub os: String,
    /// Execution parameters.
    #[serde(default)]
    pub config: Option<ContainerConfig>,
}

/// Execution defaults of an image (OCI image config `config` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `Env`, `KEY=value` strings.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// `WorkingDir`.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `User` (`uid`, `uid:gid`, `name`, `name:group`).
    #[serde(default)]
    pub user: Option<String>,
}

impl ContainerConfig {
    /// The process argv as upstream builds it from the container spec and the image:
    /// `command` replaces `Entrypoint` (and then `Cmd` is ignored), `args` replaces `Cmd`.
    pub fn container_argv(&self, command: &[String], args: &[String]) -> Vec<String> {
        let entrypoint = self.entrypoint.clone().unwrap_or_default();
        let cmd = self.cmd.clone().unwrap_or_default();
        match (command.is_empty(), args.is_empty()) {
            (true, true) => entrypoint.into_iter().chain(cmd).collect(),
            (true, false) => entrypoint.into_iter().chain(args.iter().cloned()).collect(),
            (false, true) => command.to_vec(),
            (false, false) => command.iter().chain(args).cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn argv_follows_upstream_override_rules() {
        let c = ContainerConfig {
            entrypoint: Some(v(&["/ep"])),
            cmd: Some(v(&["c1", "c2"])),
            ..Default::default()
        };
        assert_eq!(c.container_argv(&[], &[]), v(&["/ep", "c1", "c2"]));
        assert_eq!(c.container_argv(&[], &v(&["a"])), v(&["/ep", "a"]));
        assert_eq!(c.container_argv(&v(&["/cmd"]), &[]), v(&["/cmd"]));
        assert_eq!(
            c.container_argv(&v(&["/cmd"]), &v(&["a"])),
            v(&["/cmd", "a"])
        );
        let no_ep = ContainerConfig {
            cmd: Some(v(&["sh"])),
            ..Default::default()
        };
        assert_eq!(no_ep.container_argv(&[], &[]), v(&["sh"]));
        assert_eq!(no_ep.container_argv(&[], &v(&["x"])), v(&["x"]));
    }

    #[test]
    fn manifest_kind_detection() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            AnyManifest::parse(idx).unwrap(),
            AnyManifest::Index(_)
        ));
        let img = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"sha256:00","size":1}},"layers":[]}}"#
        );
        assert!(matches!(
            AnyManifest::parse(img.as_bytes()).unwrap(),
            AnyManifest::Image(_)
        ));
        let cfg: ImageConfigFile = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh"],"Env":["A=1"],"WorkingDir":"/w","User":"1000"}}"#,
        )
        .unwrap();
        let c = cfg.config.unwrap();
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.user.as_deref(), Some("1000"));
    }
}
