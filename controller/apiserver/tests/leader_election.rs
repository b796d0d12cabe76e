//! Leader election through a Lease against the real API server in process: two candidates
//! (two electors, as two controller processes would be) for one Lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bramble_apiserver::leader_election::{ElectionConfig, LeaderElector};
use bramble_apiserver::{Controller, ControllerConfig};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};

async fn start() -> Result<(tempfile::TempDir, Client)> {
    let dir = tempfile::tempdir()?;
    let cfg = ControllerConfig::new(dir.path().join("controller"), "127.0.0.1:0".parse()?);
    let controller = Controller::start(&cfg).await?;
    let client = controller.in_process_client("system:kube-controller-manager");
    std::mem::forget(controller);
    Ok((dir, client))
}

fn cfg(identity: &str) -> ElectionConfig {
    ElectionConfig {
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(200),
        ..ElectionConfig::new("test-controller")
    }
}

async fn lease(client: &Client) -> Result<Lease> {
    Ok(Api::<Lease>::namespaced(client.clone(), "kube-system")
        .get("test-controller")
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_takeover_after_expiry() -> Result<()> {
    let (_dir, client) = start().await?;
    let mut a = LeaderElector::new(client.clone(), cfg("a"));
    let mut b = LeaderElector::new(client.clone(), cfg("b"));
    assert!(a.try_acquire_or_renew().await?, "a takes the free lease");
    assert!(!b.try_acquire_or_renew().await?, "b must wait");
    assert!(a.try_acquire_or_renew().await?, "a renews");
    let l = lease(&client).await?;
    let spec = l.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(2));
    assert_eq!(spec.lease_transitions, Some(0));

    // a stops renewing; b takes over once 2 s passed since b saw the record change
    assert!(!b.try_acquire_or_renew().await?);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert!(b.try_acquire_or_renew().await?, "b takes the expired lease");
    let spec = lease(&client).await?.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert!(!a.try_acquire_or_renew().await?, "a lost it");

    // a release lets the other candidate in at once
    b.release().await?;
    assert!(a.try_acquire_or_renew().await?);
    assert_eq!(
        lease(&client).await?.spec.unwrap().lease_transitions,
        Some(2)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_runs_only_while_leading() -> Result<()> {
    let (_dir, client) = start().await?;
    let a_running = Arc::new(AtomicBool::new(false));
    let b_running = Arc::new(AtomicBool::new(false));
    let (stop_a, stopped) = tokio::sync::oneshot::channel::<()>();
    let flag = a_running.clone();
    let a = tokio::spawn(
        LeaderElector::new(client.clone(), cfg("a")).run(async move {
            flag.store(true, Ordering::SeqCst);
            let _ = stopped.await;
            flag.store(false, Ordering::SeqCst);
        }),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !a_running.load(Ordering::SeqCst) {
        assert!(tokio::time::Instant::now() < deadline, "a never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flag = b_running.clone();
    let b = tokio::spawn(
        LeaderElector::new(client.clone(), cfg("b")).run(async move {
            flag.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }),
    );
    // a keeps renewing: b stays a candidate well past the lease duration
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !b_running.load(Ordering::SeqCst),
        "b ran while a was leading"
    );
    // a's work ends: a releases the lease and b takes over
    stop_a.send(()).unwrap();
    a.await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !b_running.load(Ordering::SeqCst) {
        assert!(tokio::time::Instant::now() < deadline, "b never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        lease(&client)
            .await?
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("b")
    );
    b.abort();
    Ok(())
}
