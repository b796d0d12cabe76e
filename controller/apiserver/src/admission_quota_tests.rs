//! Quota accounting through the whole create path on a real store: admission charges an
//! object exactly once (`used + this object <= hard`, written to `status.used` before the
//! object), a dry run charges nothing, and the quota controller's recount from the stored
//! objects agrees with what admission charged.

use std::sync::Arc;

use serde_json::{json, Value};

use bramble_api::registry::Registry;
use bramble_api::{Reason, ResourceInfo};
use bramble_store::{Op, Store};

use crate::handlers::create_object;
use crate::quota_controller::recalculate;
use crate::state::{ApiSettings, ApiState};

struct Fixture {
    state: Arc<ApiState>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            bramble_store::lmdb::LmdbStore::open(dir.path(), Default::default()).unwrap();
        let state = ApiState::new(store, Arc::new(Registry::builtin()), ApiSettings::default());
        state
            .store
            .txn(vec![Op::Create {
                key: "core/namespaces/ns".into(),
                value: json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "ns"}, "status": {"phase": "Active"}}),
            }])
            .await
            .unwrap();
        Fixture { state, _dir: dir }
    }

    fn info(&self, resource: &str) -> Arc<ResourceInfo> {
        self.state.registry.find("", "v1", resource).unwrap()
    }

    async fn create(&self, resource: &str, obj: Value, dry_run: bool) -> Result<(), String> {
        create_object(&self.state, &self.info(resource), Some("ns"), obj, dry_run)
            .await
            .map(|_| ())
            .map_err(|s| {
                assert_eq!(s.reason, Reason::Forbidden, "{}", s.message);
                s.message
            })
    }

    /// One pass of the quota controller: recount and write.
    async fn recount(&self) -> usize {
        let ops = recalculate(&self.state, "ns").unwrap();
        let n = ops.len();
        if n > 0 {
            self.state.store.txn(ops).await.unwrap();
        }
        n
    }

    fn used(&self, name: &str) -> Value {
        let kv = self
            .state
            .store
            .get("core/resourcequotas/ns/q")
            .unwrap()
            .unwrap();
        let q: Value = serde_json::from_slice(&kv.value).unwrap();
        q["status"]["used"][name].clone()
    }
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
}

#[tokio::test]
async fn a_create_is_charged_once_and_the_recount_agrees() {
    let f = Fixture::new().await;
    f.create(
        "resourcequotas",
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
            "spec": {"hard": {"count/configmaps": "2", "configmaps": "2"}}}),
        false,
    )
    .await
    .unwrap();
    // until the controller has counted, upstream refuses what the quota constrains
    let e = f
        .create("configmaps", configmap("a"), false)
        .await
        .unwrap_err();
    assert!(e.contains("status unknown for quota: q"), "{e}");
    assert_eq!(f.recount().await, 1);
    assert_eq!(f.used("count/configmaps"), "0");

    f.create("configmaps", configmap("a"), false).await.unwrap();
    assert_eq!(f.used("count/configmaps"), "1");
    assert_eq!(f.used("configmaps"), "1");
    // the recount from the stored objects finds exactly what admission charged
    assert_eq!(f.recount().await, 0);

    // a dry run is checked but not charged
    f.create("configmaps", configmap("b"), true).await.unwrap();
    assert_eq!(f.used("count/configmaps"), "1");

    f.create("configmaps", configmap("b"), false).await.unwrap();
    assert_eq!(f.used("count/configmaps"), "2");
    assert_eq!(f.recount().await, 0);
    let e = f
        .create("configmaps", configmap("c"), false)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        "configmaps \"c\" is forbidden: exceeded quota: q, requested: configmaps=1,count/configmaps=1, \
         used: configmaps=2,count/configmaps=2, limited: configmaps=2,count/configmaps=2"
    );
    assert!(f.state.store.get("core/configmaps/ns/c").unwrap().is_none());
    assert_eq!(f.used("count/configmaps"), "2");

    // a deletion is freed by the recount
    f.state
        .store
        .txn(vec![Op::Delete {
            key: "core/configmaps/ns/a".into(),
            expected_revision: None,
        }])
        .await
        .unwrap();
    assert_eq!(f.recount().await, 1);
    assert_eq!(f.used("count/configmaps"), "1");
    f.create("configmaps", configmap("c"), false).await.unwrap();
    assert_eq!(f.used("count/configmaps"), "2");
}

#[tokio::test]
async fn compute_resources_are_charged_at_the_pods_requests() {
    let f = Fixture::new().await;
    f.create(
        "resourcequotas",
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
            "spec": {"hard": {"requests.cpu": "1", "pods": "5"}}}),
        false,
    )
    .await
    .unwrap();
    f.recount().await;
    let pod = |name: &str, cpu: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": cpu}}}]}})
    };
    f.create("pods", pod("a", "300m"), false).await.unwrap();
    assert_eq!(f.used("requests.cpu"), "300m");
    assert_eq!(f.used("pods"), "1");
    assert_eq!(f.recount().await, 0);
    let e = f.create("pods", pod("b", "800m"), false).await.unwrap_err();
    assert!(
        e.ends_with(
            "exceeded quota: q, requested: requests.cpu=800m, used: requests.cpu=300m, limited: requests.cpu=1"
        ),
        "{e}"
    );
    f.create("pods", pod("b", "700m"), false).await.unwrap();
    assert_eq!(f.used("requests.cpu"), "1");
    assert_eq!(f.used("pods"), "2");
    assert_eq!(f.recount().await, 0);
}
