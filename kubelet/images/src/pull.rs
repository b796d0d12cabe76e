//! Pulling images from OCI/Docker registries with `oci-client`: manifests and blobs are verified
//! against their sha256 digests as they stream to disk, multi-arch indexes are resolved to the
//! node's platform, layers already in the store are not fetched again.

use futures::{StreamExt, TryStreamExt};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::time::SystemTime;
use tracing::Instrument;

use crate::auth::Keyring;
use crate::digest::{sha256_digest, verify, DigestError};
use crate::manifest::{
    is_supported_layer, AnyManifest, Descriptor, ImageConfigFile, ImageManifest,
    ACCEPTED_MANIFEST_TYPES,
};
use crate::platform::Platform;
use crate::reference::{ImageRef, ReferenceError};
use crate::registry::RegistryConfig;
use crate::store::{unix_ms, ImageRecord, ImageStore, Lease, StoreError};

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A failed pull. [`PullError::reason`] gives the container-status reason the kubelet reports.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The image string is not a valid reference (reason `InvalidImageName`).
    #[error("Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": {source}")]
    InvalidImageName {
        /// The image as written in the pod.
        image: String,
        /// Why it does not parse.
        source: ReferenceError,
    },
    /// The registry has no such repository or tag.
    #[error("failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {reference}: not found")]
    NotFound {
        /// Normalised reference.
        reference: String,
    },
    /// The registry refused the credentials (or anonymous access).
    #[error("failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": pull access denied, repository does not exist or may require authorization: {detail}")]
    Unauthorized {
        /// Normalised reference.
        reference: String,
        /// What the registry said.
        detail: String,
    },
    /// A multi-arch index has no manifest for this node.
    #[error("failed to pull and unpack image \"{reference}\": no match for platform {platform} in manifest {digest}: not found")]
    NoMatchingPlatform {
        /// Normalised reference.
        reference: String,
        /// The node's platform.
        platform: String,
        /// The index digest.
        digest: String,
    },
    /// Content failed verification (digest or size).
    #[error("failed to pull and unpack image \"{reference}\": {source}")]
    Verification {
        /// Normalised reference.
        reference: String,
        /// The mismatch.
        source: DigestError,
    },
    /// The manifest uses something the store cannot handle.
    #[error("failed to pull and unpack image \"{reference}\": {detail}")]
    Unsupported {
        /// Normalised reference.
        reference: String,
        /// What is unsupported.
        detail: String,
    },
    /// Talking to the registry failed.
    #[error("failed to pull and unpack image \"{reference}\": {detail}")]
    Registry {
        /// Normalised reference.
        reference: String,
        /// The client error with its causes (`a: b: c`), e.g. connection refused, bad cert.
        detail: String,
        /// The client error.
        #[source]
        source: OciDistributionError,
    },
    /// Writing to the store failed.
    #[error("failed to pull and unpack image \"{reference}\": {source}")]
    Store {
        /// Normalised reference.
        reference: String,
        /// The store error.
        source: StoreError,
    },
}

impl PullError {
    /// The container waiting reason upstream uses: `InvalidImageName` or `ErrImagePull`.
    pub fn reason(&self) -> &'static str {
        match self {
            PullError::InvalidImageName { .. } => "InvalidImageName",
            _ => "ErrImagePull",
        }
    }
}

/// Pulls images into an [`ImageStore`].
#[derive(Debug, Clone)]
pub struct Puller {
    store: ImageStore,
    registries: RegistryConfig,
    platform: Platform,
    max_concurrent_layers: usize,
}

impl Puller {
    /// A puller for the running binary's platform.
    pub fn new(store: ImageStore, registries: RegistryConfig) -> Self {
        Puller {
            store,
            registries,
            platform: Platform::current(),
            max_concurrent_layers: 3,
        }
    }

    /// Overrides the platform multi-arch indexes resolve to.
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// The platform indexes resolve to.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Pulls `image` (as written in a pod spec), trying each credential of `keyring` that
    /// matches the repository in turn (anonymous when none matches), as the kubelet does.
    pub async fn pull(&self, image: &str, keyring: &Keyring) -> Result<ImageRecord, PullError> {
        let r = ImageRef::parse_with_default_tag(image).map_err(|source| {
            PullError::InvalidImageName {
                image: image.to_string(),
                source,
            }
        })?;
        let span = tracing::info_span!("pull_image", image = %r);
        self.pull_ref(&r, keyring).instrument(span).await
    }

    async fn pull_ref(&self, r: &ImageRef, keyring: &Keyring) -> Result<ImageRecord, PullError> {
        let creds = keyring.lookup(&r.repository());
        let auths: Vec<RegistryAuth> = if creds.is_empty() {
            vec![RegistryAuth::Anonymous]
        } else {
            creds
                .into_iter()
                .map(|c| RegistryAuth::Basic(c.username, c.password))
                .collect()
        };
        let mut last = None;
        for auth in auths {
            match self.pull_with_auth(r, &auth).await {
                Ok(rec) => return Ok(rec),
                Err(e @ PullError::Unauthorized { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one auth attempted"))
    }

    fn client(&self, registry: &str) -> Result<Client, PullError> {
        install_crypto_provider();
        let protocol = if self.registries.uses_plain_http(registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            platform_resolver: None,
            extra_root_certificates: self
                .registries
                .extra_root_certificates_pem
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            connect_timeout: Some(CONNECT_TIMEOUT),
            // Like the kubelet's image pull progress deadline: a registry that stops sending
            // data fails the pull instead of hanging it.
            read_timeout: Some(READ_TIMEOUT),
            ..Default::default()
        };
        Client::try_from(config).map_err(|e| PullError::Registry {
            reference: registry.to_string(),
            detail: error_chain(&e),
            source: e,
        })
    }

    async fn pull_with_auth(
        &self,
        r: &ImageRef,
        auth: &RegistryAuth,
    ) -> Result<ImageRecord, PullError> {
        let reference = ImageRecord::key_for(r);
        let ctx = Ctx {
            reference: &reference,
        };
        let client = self.client(r.domain())?;
        let oref = oci_reference(r, None);
        let mut lease = self.store.lease();

        let (top_bytes, header_digest) = client
            .pull_manifest_raw(&oref, auth, ACCEPTED_MANIFEST_TYPES)
            .await
            .map_err(|e| ctx.registry(e))?;
        let top_digest = match r.digest() {
            Some(d) => d.to_string(),
            None => sha256_digest(&top_bytes),
        };
        verify(&top_bytes, &top_digest).map_err(|e| ctx.verification(e))?;
        if header_digest != top_digest {
            return Err(ctx.verification(DigestError::Mismatch {
                expected: header_digest,
                actual: top_digest,
            }));
        }
        lease.add(&top_digest);
        self.store
            .put_blob(&top_digest, &top_bytes)
            .map_err(|e| ctx.store(e))?;

        let top = AnyManifest::parse(&top_bytes)
            .map_err(|e| ctx.unsupported(format!("manifest: {e}")))?;
        let (manifest, manifest_digest, platform) = match top {
            AnyManifest::Image(m) => (m, top_digest.clone(), None),
            AnyManifest::Index(idx) => {
                let entry = self.platform.select(&idx.manifests).ok_or_else(|| {
                    PullError::NoMatchingPlatform {
                        reference: reference.clone(),
                        platform: self.platform.to_string(),
                        digest: top_digest.clone(),
                    }
                })?;
                let m = self
                    .fetch_platform_manifest(&client, r, auth, entry, &mut lease, &ctx)
                    .await?;
                (m, entry.digest.clone(), entry.platform.clone())
            }
        };
        check_layers(&manifest, &ctx)?;

        lease.add(&manifest.config.digest);
        if !self.store.has_blob(&manifest.config.digest) {
            self.download(&client, &oref, &manifest.config, &ctx)
                .await?;
        }
        let config_bytes = self
            .store
            .read_blob(&manifest.config.digest)
            .map_err(|e| ctx.store(e))?;
        let config: ImageConfigFile = serde_json::from_slice(&config_bytes)
            .map_err(|e| ctx.unsupported(format!("image config: {e}")))?;

        for l in &manifest.layers {
            lease.add(&l.digest);
        }
        // Futures built up front (not in a `map` closure inside the stream) keep this future
        // `Send` for any lifetime, so callers can `tokio::spawn` a pull.
        let fetches: Vec<_> = manifest
            .layers
            .iter()
            .map(|l| self.fetch_layer(&client, &oref, l, &ctx))
            .collect();
        futures::stream::iter(fetches)
            .buffer_unordered(self.max_concurrent_layers)
            .try_collect::<Vec<()>>()
            .await?;

        let platform = match platform {
            Some(p) => Platform {
                os: p.os,
                architecture: p.architecture,
                variant: p.variant,
            }
            .to_string(),
            None => format!("{}/{}", config.os, config.architecture),
        };
        let now = unix_ms(SystemTime::now());
        let created_ms = match self.store.get(r) {
            Ok(Some(old)) if old.manifest_digest == manifest_digest => old.created_ms,
            _ => now,
        };
        let rec = ImageRecord {
            reference: reference.clone(),
            repo_digest: top_digest,
            manifest_digest,
            config_digest: manifest.config.digest.clone(),
            layer_digests: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
            size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
            platform,
            created_ms,
            last_used_ms: now,
        };
        self.store.put_record(&rec).map_err(|e| ctx.store(e))?;
        tracing::info!(digest = %rec.manifest_digest, size = rec.size, "image pulled");
        Ok(rec)
    }

    async fn fetch_platform_manifest(
        &self,
        client: &Client,
        r: &ImageRef,
        auth: &RegistryAuth,
        entry: &Descriptor,
        lease: &mut Lease,
        ctx: &Ctx<'_>,
    ) -> Result<ImageManifest, PullError> {
        lease.add(&entry.digest);
        let by_digest = oci_reference(r, Some(&entry.digest));
        let (bytes, _) = client
            .pull_manifest_raw(&by_digest, auth, ACCEPTED_MANIFEST_TYPES)
            .await
            .map_err(|e| ctx.registry(e))?;
        verify(&bytes, &entry.digest).map_err(|e| ctx.verification(e))?;
        self.store
            .put_blob(&entry.digest, &bytes)
            .map_err(|e| ctx.store(e))?;
        match AnyManifest::parse(&bytes).map_err(|e| ctx.unsupported(format!("manifest: {e}")))? {
            AnyManifest::Image(m) => Ok(m),
            AnyManifest::Index(_) => Err(ctx.unsupported("nested image index".into())),
        }
    }

    async fn fetch_layer(
        &self,
        client: &Client,
        oref: &Reference,
        l: &Descriptor,
        ctx: &Ctx<'_>,
    ) -> Result<(), PullError> {
        if self.store.has_layer(&l.digest) {
            return Ok(());
        }
        // One download/unpack per layer at a time in this process: concurrent pulls of images
        // sharing a layer wait for the first and then find it present.
        let lock = self.store.digest_lock(&l.digest);
        let _guard = lock.lock().await;
        if self.store.has_layer(&l.digest) {
            return Ok(());
        }
        if !self.store.has_blob(&l.digest) {
            self.download(client, oref, l, ctx).await?;
        }
        let store = self.store.clone();
        let digest = l.digest.clone();
        tokio::task::spawn_blocking(move || {
            let r = store.unpack_layer_blob(&digest);
            // The unpacked tree is the layer's stored form; the compressed copy is not kept
            // (it would double the flash used per layer).
            if let Ok(p) = store.blob_path(&digest) {
                let _ = std::fs::remove_file(p);
            }
            r
        })
        .await
        .map_err(|e| ctx.unsupported(format!("unpack task: {e}")))?
        .map_err(|e| ctx.store(e))?;
        Ok(())
    }

    async fn download(
        &self,
        client: &Client,
        oref: &Reference,
        d: &Descriptor,
        ctx: &Ctx<'_>,
    ) -> Result<(), PullError> {
        let mut w = self
            .store
            .blob_writer(&d.digest, Some(d.size))
            .await
            .map_err(|e| ctx.store(e))?;
        let mut stream = client
            .pull_blob_stream(oref, d.digest.as_str())
            .await
            .map_err(|e| ctx.registry(e))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                use oci_client::errors::DigestError as OciDigestError;
                match e.get_ref().and_then(|i| i.downcast_ref::<OciDigestError>()) {
                    Some(OciDigestError::VerificationError { expected, actual }) => ctx
                        .verification(DigestError::Mismatch {
                            expected: expected.clone(),
                            actual: actual.clone(),
                        }),
                    _ => ctx.registry(OciDistributionError::IoError(e)),
                }
            })?;
            w.write(&chunk).await.map_err(|e| ctx.store(e))?;
        }
        w.commit().await.map_err(|e| ctx.store(e))?;
        Ok(())
    }
}

/// The `oci-client` reference for `r`, pinned to `digest` when given (then without tag, as
/// `repo@digest`), built from the parts Bramble's own parser ([`ImageRef`]) already validated and
/// normalised. Parsing a string instead (`Reference::from_str`) compiles oci-spec's reference
/// regex on first use, which keeps about 7 MiB of heap for the life of the kubelet.
fn oci_reference(r: &ImageRef, digest: Option<&str>) -> Reference {
    let (registry, repository) = (r.domain().to_string(), r.path().to_string());
    match (digest.or(r.digest()), r.tag()) {
        (Some(d), _) => Reference::with_digest(registry, repository, d.to_string()),
        (None, tag) => Reference::with_tag(
            registry,
            repository,
            tag.unwrap_or(crate::reference::DEFAULT_TAG).to_string(),
        ),
    }
}

fn check_layers(m: &ImageManifest, ctx: &Ctx<'_>) -> Result<(), PullError> {
    for l in &m.layers {
        if !is_supported_layer(&l.media_type) {
            return Err(ctx.unsupported(format!(
                "unsupported layer media type {} ({})",
                l.media_type, l.digest
            )));
        }
        crate::digest::sha256_hex(&l.digest).map_err(|e| ctx.verification(e))?;
    }
    crate::digest::sha256_hex(&m.config.digest).map_err(|e| ctx.verification(e))?;
    Ok(())
}

struct Ctx<'a> {
    reference: &'a str,
}

impl Ctx<'_> {
    fn unsupported(&self, detail: String) -> PullError {
        PullError::Unsupported {
            reference: self.reference.into(),
            detail,
        }
    }
    fn verification(&self, source: DigestError) -> PullError {
        PullError::Verification {
            reference: self.reference.into(),
            source,
        }
    }
    fn store(&self, source: StoreError) -> PullError {
        match source {
            StoreError::Digest(d) => self.verification(d),
            source => PullError::Store {
                reference: self.reference.into(),
                source,
            },
        }
    }
    fn registry(&self, e: OciDistributionError) -> PullError {
        let reference = self.reference.to_string();
        let codes: Vec<&OciErrorCode> = match &e {
            OciDistributionError::RegistryError { envelope, .. } => {
                envelope.errors.iter().map(|x| &x.code).collect()
            }
            _ => Vec::new(),
        };
        let not_found = matches!(e, OciDistributionError::ImageManifestNotFoundError(_))
            || matches!(e, OciDistributionError::ServerError { code: 404, .. })
            || codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                )
            });
        let unauthorized = matches!(
            e,
            OciDistributionError::UnauthorizedError { .. }
                | OciDistributionError::AuthenticationFailure(_)
        ) || codes
            .iter()
            .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied));
        if not_found {
            PullError::NotFound { reference }
        } else if unauthorized {
            PullError::Unauthorized {
                reference,
                detail: e.to_string(),
            }
        } else {
            PullError::Registry {
                reference,
                detail: error_chain(&e),
                source: e,
            }
        }
    }
}

/// `top: cause: cause`, skipping causes whose text the previous level already includes.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = c.source();
    }
    out
}

/// reqwest is built without a bundled crypto provider (see Cargo.toml): install rustls' ring
/// provider as the process default once. Harmless if something else installed one first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oref(s: &str, digest: Option<&str>) -> String {
        oci_reference(&ImageRef::parse_with_default_tag(s).unwrap(), digest).whole()
    }

    #[test]
    fn references_match_what_oci_client_would_parse() {
        let d = format!("sha256:{}", "a".repeat(64));
        for (image, digest) in [
            ("busybox", None),
            ("127.0.0.1:5000/team/app:v1", None),
            ("127.0.0.1:5000/team/app:v1", Some(d.as_str())),
            ("quay.io/x/y", None),
        ] {
            let r = ImageRef::parse_with_default_tag(image).unwrap();
            let text = match digest {
                Some(d) => format!("{}@{d}", r.repository()),
                None => r.to_string(),
            };
            let parsed: Reference = text.parse().unwrap();
            assert_eq!(oref(image, digest), parsed.whole(), "{image}");
            assert_eq!(
                oci_reference(&r, digest).resolve_registry(),
                parsed.resolve_registry()
            );
        }
        let pinned = format!("busybox@{d}");
        assert_eq!(
            oref(&pinned, None),
            format!("docker.io/library/busybox@{d}")
        );
    }
}
