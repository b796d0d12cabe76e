//! Serialized documents, generated once per registry content: the root index keeps only
//! hashes, group-version documents and the v2 document are kept once requested, gzip-compressed
//! (the v2 document is 1.9 MiB as JSON and about 150 KiB compressed; clients that accept gzip,
//! as kubectl does, get the compressed bytes as they are).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::registry::Registry;

/// A serialized document, kept gzip-compressed, and its upstream-style content hash (also
/// usable as an ETag).
#[derive(Debug, Clone)]
pub struct CachedDocument {
    gzip: Arc<[u8]>,
    /// Upper-case hex sha512 of the uncompressed document.
    pub hash: String,
}

impl CachedDocument {
    fn new(bytes: &[u8]) -> CachedDocument {
        let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 8), Compression::default());
        // Writing into a Vec cannot fail.
        let _ = enc.write_all(bytes);
        let gzip = enc.finish().unwrap_or_default().into();
        CachedDocument {
            gzip,
            hash: super::document_hash(bytes),
        }
    }

    /// The document as a gzip stream (`Content-Encoding: gzip`).
    pub fn gzip(&self) -> Arc<[u8]> {
        self.gzip.clone()
    }

    /// The uncompressed document.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.gzip.len() * 8);
        // The stream was written by `new`: decoding it cannot fail.
        let _ = GzDecoder::new(&self.gzip[..]).read_to_end(&mut out);
        out
    }
}

#[derive(Debug, Default)]
struct State {
    /// Fingerprint of the registry content the entries below were built from.
    fingerprint: Option<u64>,
    root: Option<CachedDocument>,
    group_versions: HashMap<String, CachedDocument>,
    v2: Option<CachedDocument>,
    v2_protobuf: Option<CachedDocument>,
}

/// Caches the OpenAPI documents of a [`Registry`]; entries are dropped when the registry's
/// resources change (a CRD added or removed). Share it as `Arc<OpenApiCache>`.
#[derive(Debug, Default)]
pub struct OpenApiCache {
    state: Mutex<State>,
    /// Documents generated so far (cache misses).
    builds: AtomicU64,
}

/// Hash of everything the documents are generated from.
fn fingerprint(registry: &Registry) -> u64 {
    let mut h = DefaultHasher::new();
    for r in registry.all() {
        (
            &r.group,
            &r.version,
            &r.resource,
            &r.kind,
            &r.list_kind,
            r.namespaced,
        )
            .hash(&mut h);
        (&r.verbs, &r.subresources, r.decode.is_some()).hash(&mut h);
    }
    h.finish()
}

fn serialize(doc: &serde_json::Value) -> CachedDocument {
    // Serializing a `Value` cannot fail (string keys only).
    CachedDocument::new(&serde_json::to_vec(doc).unwrap_or_default())
}

impl OpenApiCache {
    /// An empty cache.
    pub fn new() -> OpenApiCache {
        OpenApiCache::default()
    }

    /// How many documents this cache has generated (a caller that sees the count move after a
    /// request knows it paid for a build: the large temporary allocations of one).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    fn built(&self) {
        self.builds.fetch_add(1, Ordering::Relaxed);
    }

    fn state(&self, registry: &Registry) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let current = fingerprint(registry);
        if state.fingerprint != Some(current) {
            *state = State {
                fingerprint: Some(current),
                ..State::default()
            };
        }
        state
    }

    /// `/openapi/v3` as JSON bytes. Builds every group-version document once to hash it
    /// (keeping only the hashes).
    pub fn root(&self, registry: &Registry) -> CachedDocument {
        let mut state = self.state(registry);
        if let Some(root) = &state.root {
            return root.clone();
        }
        let mut hashes = Vec::new();
        for (g, v) in registry.group_versions() {
            let path = super::group_version_path(&g, &v);
            let hash = match state.group_versions.get(&path) {
                Some(doc) => doc.hash.clone(),
                None => match super::v3_group_version(registry, &path) {
                    Some(doc) => {
                        self.built();
                        serialize(&doc).hash
                    }
                    None => continue,
                },
            };
            hashes.push((path, hash));
        }
        self.built();
        let root = serialize(&super::root_from_hashes(&hashes));
        state.root = Some(root.clone());
        root
    }

    /// One group-version document (`api/v1`, `apis/apps/v1`) as JSON bytes, or `None` when
    /// nothing is served there.
    pub fn group_version(&self, registry: &Registry, path: &str) -> Option<CachedDocument> {
        let path = path.split('?').next().unwrap_or_default().trim_matches('/');
        let mut state = self.state(registry);
        if let Some(doc) = state.group_versions.get(path) {
            return Some(doc.clone());
        }
        let doc = serialize(&super::v3_group_version(registry, path)?);
        self.built();
        state.group_versions.insert(path.to_string(), doc.clone());
        Some(doc)
    }

    /// `/openapi/v2` as JSON bytes.
    pub fn v2(&self, registry: &Registry) -> CachedDocument {
        let mut state = self.state(registry);
        if let Some(doc) = &state.v2 {
            return doc.clone();
        }
        self.built();
        let doc = serialize(&super::v2(registry));
        state.v2 = Some(doc.clone());
        doc
    }

    /// `/openapi/v2` as gnostic protobuf bytes (kubectl 1.27/1.28 ask for this form).
    pub fn v2_protobuf(&self, registry: &Registry) -> CachedDocument {
        let mut state = self.state(registry);
        if let Some(doc) = &state.v2_protobuf {
            return doc.clone();
        }
        self.built();
        let doc = CachedDocument::new(&super::proto_v2::encode_document(&super::v2(registry)));
        state.v2_protobuf = Some(doc.clone());
        doc
    }
}
