//! The store as a resource served in another form sees it ([`bramble_api::conversion`]:
//! events.k8s.io/v1 Events stored as core/v1 ones, autoscaling/v1 HorizontalPodAutoscalers
//! as autoscaling/v2 ones): every value read is converted to the served form, every value
//! written to the storage form. The handlers then serve such a resource exactly like
//! any other, and list filters (field and label selectors) see the served form.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;

use bramble_api::conversion::Storage;
use bramble_api::ResourceInfo;
use bramble_store::{
    BoxFuture, Event, EventStream, KeyValue, ListOptions, ListResult, Op, OpOutcome,
    ProgressStream, Revision, Store, StoreError, WatchItem,
};

/// `store` as `info` sees it: the store itself, or a converting view.
pub fn for_resource(store: &Arc<dyn Store>, info: &ResourceInfo) -> Arc<dyn Store> {
    match bramble_api::conversion::storage_for(info) {
        Some(storage) => Arc::new(ConvertingStore {
            inner: store.clone(),
            storage,
        }),
        None => store.clone(),
    }
}

struct ConvertingStore {
    inner: Arc<dyn Store>,
    storage: Storage,
}

/// Stored bytes in the served form. Values the server did not write as JSON (never the
/// case) pass through unchanged rather than failing the whole read.
fn served(storage: &Storage, raw: &[u8]) -> Arc<[u8]> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(v) => match serde_json::to_vec(&(storage.from_storage)(v)) {
            Ok(bytes) => bytes.into(),
            Err(_) => raw.into(),
        },
        Err(_) => raw.into(),
    }
}

fn served_kv(storage: &Storage, kv: KeyValue) -> KeyValue {
    KeyValue {
        value: served(storage, &kv.value),
        ..kv
    }
}

fn served_event(storage: &Storage, e: &Event) -> Arc<Event> {
    Arc::new(Event {
        revision: e.revision,
        kind: e.kind,
        key: e.key.clone(),
        value: served(storage, &e.value),
        prev_value: e.prev_value.as_ref().map(|p| served(storage, p)),
    })
}

impl Store for ConvertingStore {
    fn current_revision(&self) -> Revision {
        self.inner.current_revision()
    }

    fn compacted_revision(&self) -> Revision {
        self.inner.compacted_revision()
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.inner.get(key)?.map(|kv| served_kv(&self.storage, kv)))
    }

    fn list(&self, prefix: &str, opts: ListOptions<'_>) -> Result<ListResult, StoreError> {
        let storage = self.storage;
        let user_filter = opts.filter;
        let converted_filter =
            move |kv: &KeyValue| user_filter.is_none_or(|f| f(&served_kv(&storage, kv.clone())));
        let opts = ListOptions {
            filter: user_filter
                .map(|_| &converted_filter as &(dyn Fn(&KeyValue) -> bool + Send + Sync)),
            ..opts
        };
        let mut result = self.inner.list(prefix, opts)?;
        result.items = result
            .items
            .into_iter()
            .map(|kv| served_kv(&self.storage, kv))
            .collect();
        Ok(result)
    }

    fn txn(&self, ops: Vec<Op>) -> BoxFuture<'_, Result<Vec<OpOutcome>, StoreError>> {
        let to = self.storage.to_storage;
        let ops = ops
            .into_iter()
            .map(|op| match op {
                Op::Create { key, value } => Op::Create {
                    key,
                    value: to(value),
                },
                Op::Update {
                    key,
                    value,
                    expected_revision,
                } => Op::Update {
                    key,
                    value: to(value),
                    expected_revision,
                },
                delete => delete,
            })
            .collect();
        Box::pin(async move {
            let outcomes = self.inner.txn(ops).await?;
            Ok(outcomes
                .into_iter()
                .map(|o| match o {
                    OpOutcome::Written(kv) => OpOutcome::Written(served_kv(&self.storage, kv)),
                    OpOutcome::Deleted(kv) => OpOutcome::Deleted(served_kv(&self.storage, kv)),
                })
                .collect())
        })
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<EventStream, StoreError> {
        let storage = self.storage;
        let events = self.inner.watch(prefix, after)?;
        Ok(Box::pin(
            events.map(move |item| item.map(|e| served_event(&storage, &e))),
        ))
    }

    fn watch_with_progress(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<ProgressStream, StoreError> {
        let storage = self.storage;
        let items = self.inner.watch_with_progress(prefix, after)?;
        Ok(Box::pin(items.map(move |item| {
            item.map(|w| match w {
                WatchItem::Event(e) => WatchItem::Event(served_event(&storage, &e)),
                progress => progress,
            })
        })))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn registry_info(group: &str, resource: &str) -> ResourceInfo {
        registry_info_in(group, "v1", resource)
    }

    fn registry_info_in(group: &str, version: &str, resource: &str) -> ResourceInfo {
        bramble_api::registry::Registry::builtin()
            .find(group, version, resource)
            .expect("registered")
            .as_ref()
            .clone()
    }

    #[tokio::test]
    async fn events_written_through_one_api_are_read_through_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            bramble_store::lmdb::LmdbStore::open(dir.path(), Default::default()).unwrap();
        let v1_info = registry_info("events.k8s.io", "events");
        let core_info = registry_info("", "events");
        assert_eq!(v1_info.store_prefix(), core_info.store_prefix());
        let v1 = for_resource(&store, &v1_info);
        let key = v1_info.store_key(Some("default"), "e1");
        let out = v1
            .txn(vec![Op::Create {
                key: key.clone(),
                value: json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                    "metadata": {"name": "e1", "namespace": "default"},
                    "regarding": {"kind": "Pod", "name": "web"}, "note": "hello"}),
            }])
            .await
            .unwrap();
        let OpOutcome::Written(kv) = &out[0] else {
            panic!("{out:?}")
        };
        let written: Value = serde_json::from_slice(&kv.value).unwrap();
        assert_eq!(written["note"], "hello");
        // the core API reads the same object in its own form
        let core = for_resource(&store, &core_info);
        let raw = core.get(&key).unwrap().unwrap();
        let stored: Value = serde_json::from_slice(&raw.value).unwrap();
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["message"], "hello");
        assert_eq!(stored["involvedObject"]["name"], "web");
        // lists filter on the served form
        let wants_note =
            |kv: &KeyValue| serde_json::from_slice::<Value>(&kv.value).unwrap()["note"] == "hello";
        let listed = v1
            .list(
                &v1_info.store_prefix(),
                ListOptions {
                    filter: Some(&wants_note),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(listed.items.len(), 1);
        let item: Value = serde_json::from_slice(&listed.items[0].value).unwrap();
        assert_eq!(item["apiVersion"], "events.k8s.io/v1");
        // and watches see it converted
        let mut w = v1.watch(&v1_info.store_prefix(), 0).unwrap();
        let e = w.next().await.unwrap().unwrap();
        let seen: Value = serde_json::from_slice(&e.value).unwrap();
        assert_eq!(seen["regarding"]["name"], "web");
    }

    #[tokio::test]
    async fn hpas_written_through_v1_are_stored_and_watched_as_v2() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            bramble_store::lmdb::LmdbStore::open(dir.path(), Default::default()).unwrap();
        let v1_info = registry_info_in("autoscaling", "v1", "horizontalpodautoscalers");
        let v2_info = registry_info_in("autoscaling", "v2", "horizontalpodautoscalers");
        let (v1, v2) = (
            for_resource(&store, &v1_info),
            for_resource(&store, &v2_info),
        );
        let key = v1_info.store_key(Some("default"), "web");
        assert_eq!(key, v2_info.store_key(Some("default"), "web"));
        let mut w = v1.watch(&v1_info.store_prefix(), 0).unwrap();
        v1.txn(vec![Op::Create {
            key: key.clone(),
            value: json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                    "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}}),
        }])
        .await
        .unwrap();
        // stored as v2: what the HPA controller and v2 clients read
        let raw = store.get(&key).unwrap().unwrap();
        let stored: Value = serde_json::from_slice(&raw.value).unwrap();
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(
            stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        assert!(stored["spec"]
            .get("targetCPUUtilizationPercentage")
            .is_none());
        let through_v2: Value =
            serde_json::from_slice(&v2.get(&key).unwrap().unwrap().value).unwrap();
        assert_eq!(through_v2, stored);
        // a v2 write with a memory metric reads back through v1 with the metrics annotation
        let mut memory = stored.clone();
        memory["spec"]["metrics"] = json!([{"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]);
        v2.txn(vec![Op::Update {
            key: key.clone(),
            value: memory.clone(),
            expected_revision: Some(raw.mod_revision),
        }])
        .await
        .unwrap();
        let seen: Value = serde_json::from_slice(&v1.get(&key).unwrap().unwrap().value).unwrap();
        assert_eq!(seen["apiVersion"], "autoscaling/v1");
        assert!(seen["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert_eq!(
            seen["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"],
            r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]"#
        );
        // the v1 watch saw both writes in v1's form
        for want in [json!(50), Value::Null] {
            let e = w.next().await.unwrap().unwrap();
            let obj: Value = serde_json::from_slice(&e.value).unwrap();
            assert_eq!(obj["apiVersion"], "autoscaling/v1");
            assert_eq!(
                obj["spec"]
                    .get("targetCPUUtilizationPercentage")
                    .cloned()
                    .unwrap_or(Value::Null),
                want
            );
        }
        // and the v1 form written back stores the same v2 object
        let rev = store.get(&key).unwrap().unwrap().mod_revision;
        v1.txn(vec![Op::Update {
            key: key.clone(),
            value: seen,
            expected_revision: Some(rev),
        }])
        .await
        .unwrap();
        let mut again: Value =
            serde_json::from_slice(&store.get(&key).unwrap().unwrap().value).unwrap();
        // (the store stamps the resourceVersion)
        for obj in [&mut again, &mut memory] {
            obj["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("resourceVersion");
        }
        assert_eq!(again, memory);
    }
}
