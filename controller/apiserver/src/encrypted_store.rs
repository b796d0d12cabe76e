//! Secrets encrypted at rest: a [`Store`] wrapper that stores every object under
//! `core/secrets/` as an envelope `{"metadata": {...}, "encrypted": "k8s:enc:aesgcm:v1:..."}`
//! (only `resourceVersion` in clear, which the store itself writes) and decrypts on every
//! read, list and watch, so the LMDB file never holds a secret's content. The key file is
//! `<controller data dir>/encryption.key` (created at first start, mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{json, Value};

use bramble_auth::encryption::Cipher;
use bramble_store::{
    BoxFuture, Event, EventStream, KeyValue, ListOptions, ListResult, Op, OpOutcome,
    ProgressStream, Revision, Store, StoreError, WatchItem,
};

use crate::errors::ServerError;

/// Key file name in the controller's data directory.
pub const KEY_FILE: &str = "encryption.key";
/// Store prefixes whose objects are encrypted.
pub const ENCRYPTED_PREFIXES: &[&str] = &["core/secrets/"];

/// Loads the key file in `data_dir`, creating it with one random key at first start.
pub fn load_or_create_cipher(data_dir: &Path) -> Result<Cipher, ServerError> {
    let path = data_dir.join(KEY_FILE);
    let io = |source| ServerError::Io {
        path: path.clone(),
        source,
    };
    let bad = |m: String| ServerError::Io {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, m),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = Cipher::generate_key_file("key1").map_err(|e| bad(e.to_string()))?;
            let tmp = path.with_extension("key.tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
            text
        }
        Err(e) => return Err(io(e)),
    };
    Cipher::from_key_file(&text).map_err(|e| bad(e.to_string()))
}

/// The encrypting wrapper.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    cipher: Arc<Cipher>,
}

impl EncryptedStore {
    pub fn new(inner: Arc<dyn Store>, cipher: Cipher) -> EncryptedStore {
        EncryptedStore {
            inner,
            cipher: Arc::new(cipher),
        }
    }
}

fn encrypted_key(key: &str) -> bool {
    ENCRYPTED_PREFIXES.iter().any(|p| key.starts_with(p))
}

fn corrupt(key: &str, msg: String) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        source: serde_json::Error::io(std::io::Error::new(std::io::ErrorKind::InvalidData, msg)),
    }
}

fn seal(cipher: &Cipher, key: &str, value: Value) -> Result<Value, StoreError> {
    let plain = serde_json::to_vec(&value).map_err(|source| StoreError::Corrupt {
        key: key.to_string(),
        source,
    })?;
    let sealed = cipher
        .encrypt(&plain, key)
        .map_err(|e| corrupt(key, e.to_string()))?;
    Ok(json!({"metadata": {}, "encrypted": sealed}))
}

/// The object's JSON from a stored envelope (objects written before encryption pass as is).
fn open(cipher: &Cipher, key: &str, raw: &Arc<[u8]>) -> Result<Arc<[u8]>, StoreError> {
    if !encrypted_key(key) {
        return Ok(raw.clone());
    }
    let envelope: Value = serde_json::from_slice(raw).map_err(|source| StoreError::Corrupt {
        key: key.to_string(),
        source,
    })?;
    let Some(sealed) = envelope.get("encrypted").and_then(Value::as_str) else {
        return Ok(raw.clone());
    };
    let plain = cipher
        .decrypt(sealed, key)
        .map_err(|e| corrupt(key, e.to_string()))?;
    let mut obj: Value = serde_json::from_slice(&plain).map_err(|source| StoreError::Corrupt {
        key: key.to_string(),
        source,
    })?;
    if let (Some(rv), Some(meta)) = (
        envelope.pointer("/metadata/resourceVersion").cloned(),
        obj.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        meta.insert("resourceVersion".into(), rv);
    }
    let bytes = serde_json::to_vec(&obj).map_err(|source| StoreError::Corrupt {
        key: key.to_string(),
        source,
    })?;
    Ok(bytes.into())
}

fn open_kv(cipher: &Cipher, mut kv: KeyValue) -> Result<KeyValue, StoreError> {
    kv.value = open(cipher, &kv.key, &kv.value)?;
    Ok(kv)
}

fn open_event(cipher: &Cipher, ev: Arc<Event>) -> Result<Arc<Event>, StoreError> {
    if !encrypted_key(&ev.key) {
        return Ok(ev);
    }
    let mut e = (*ev).clone();
    e.value = open(cipher, &e.key, &e.value)?;
    if let Some(prev) = &e.prev_value {
        e.prev_value = Some(open(cipher, &e.key, prev)?);
    }
    Ok(Arc::new(e))
}

impl Store for EncryptedStore {
    fn current_revision(&self) -> Revision {
        self.inner.current_revision()
    }

    fn compacted_revision(&self) -> Revision {
        self.inner.compacted_revision()
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner
            .get(key)?
            .map(|kv| open_kv(&self.cipher, kv))
            .transpose()
    }

    fn list(&self, prefix: &str, opts: ListOptions<'_>) -> Result<ListResult, StoreError> {
        let cipher = self.cipher.clone();
        let user_filter = opts.filter;
        let decrypting = move |kv: &KeyValue| match user_filter {
            None => true,
            Some(f) => match open_kv(&cipher, kv.clone()) {
                Ok(plain) => f(&plain),
                Err(_) => false,
            },
        };
        let opts = ListOptions {
            start_after: opts.start_after,
            limit: opts.limit,
            revision: opts.revision,
            filter: user_filter.map(|_| &decrypting as &(dyn Fn(&KeyValue) -> bool + Send + Sync)),
        };
        let mut res = self.inner.list(prefix, opts)?;
        res.items = res
            .items
            .into_iter()
            .map(|kv| open_kv(&self.cipher, kv))
            .collect::<Result<_, _>>()?;
        Ok(res)
    }

    fn txn(&self, ops: Vec<Op>) -> BoxFuture<'_, Result<Vec<OpOutcome>, StoreError>> {
        Box::pin(async move {
            let ops = ops
                .into_iter()
                .map(|op| match op {
                    Op::Create { key, value } if encrypted_key(&key) => {
                        let value = seal(&self.cipher, &key, value)?;
                        Ok(Op::Create { key, value })
                    }
                    Op::Update {
                        key,
                        value,
                        expected_revision,
                    } if encrypted_key(&key) => {
                        let value = seal(&self.cipher, &key, value)?;
                        Ok(Op::Update {
                            key,
                            value,
                            expected_revision,
                        })
                    }
                    other => Ok(other),
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let outcomes = self.inner.txn(ops).await?;
            outcomes
                .into_iter()
                .map(|o| match o {
                    OpOutcome::Written(kv) => open_kv(&self.cipher, kv).map(OpOutcome::Written),
                    OpOutcome::Deleted(kv) => open_kv(&self.cipher, kv).map(OpOutcome::Deleted),
                })
                .collect()
        })
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<EventStream, StoreError> {
        let cipher = self.cipher.clone();
        let events = self.inner.watch(prefix, after)?;
        Ok(Box::pin(events.map(move |item| {
            item.and_then(|ev| open_event(&cipher, ev))
        })))
    }

    fn watch_with_progress(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<ProgressStream, StoreError> {
        let cipher = self.cipher.clone();
        let items = self.inner.watch_with_progress(prefix, after)?;
        Ok(Box::pin(items.map(move |item| {
            item.and_then(|w| match w {
                WatchItem::Event(ev) => open_event(&cipher, ev).map(WatchItem::Event),
                other => Ok(other),
            })
        })))
    }
}
