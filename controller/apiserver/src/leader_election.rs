//! Leader election through a `coordination.k8s.io/v1` Lease, as upstream's
//! client-go `leaderelection` package does it: a candidate takes the lease when it is free or
//! its holder has not renewed it within `leaseDurationSeconds` (measured on the candidate's
//! own clock from when it last saw the record change, so clocks need not agree), renews it
//! every retry period while leading, and steps down when it could not renew within the
//! renew deadline. Writes carry the Lease's resourceVersion, so two candidates racing for
//! it cannot both win.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::time::Instant;
use tracing::{info, warn};

/// Errors of one election round.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    /// Reading or writing the Lease failed.
    #[error("lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Timing and identity (upstream's defaults: 15 s lease, 10 s renew deadline, 2 s retry).
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub namespace: String,
    pub name: String,
    /// Who this candidate is (upstream: `<hostname>_<uuid>`).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl ElectionConfig {
    /// Upstream's defaults for the lease `kube-system/<name>`, with a fresh identity.
    pub fn new(name: &str) -> ElectionConfig {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "bramble".into());
        ElectionConfig {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: format!("{host}_{}", uuid::Uuid::new_v4()),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// One candidate for one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    cfg: ElectionConfig,
    /// The last record seen and when (on our clock) it last changed.
    observed: Option<(LeaseSpec, Instant)>,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

impl LeaderElector {
    /// A candidate reading and writing the Lease through `client`.
    pub fn new(client: Client, cfg: ElectionConfig) -> LeaderElector {
        LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }

    fn err(&self, source: kube::Error) -> ElectionError {
        ElectionError::Api {
            namespace: self.cfg.namespace.clone(),
            name: self.cfg.name.clone(),
            source,
        }
    }

    fn spec(&self, acquire: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs() as i32),
            acquire_time: acquire.or_else(|| Some(now())),
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One round of upstream's `tryAcquireOrRenew`: true when this candidate holds the
    /// lease afterwards. A lost race (409) is `Ok(false)`.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, ElectionError> {
        let current = match self.api.get_opt(&self.cfg.name).await {
            Ok(l) => l,
            Err(e) => return Err(self.err(e)),
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(l) => {
                    self.observed = l.spec.map(|s| (s, Instant::now()));
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(self.err(e)),
            };
        };
        let record = lease.spec.clone().unwrap_or_default();
        if self.observed.as_ref().map(|(s, _)| s) != Some(&record) {
            self.observed = Some((record.clone(), Instant::now()));
        }
        let observed_at = self
            .observed
            .as_ref()
            .map(|(_, t)| *t)
            .unwrap_or_else(Instant::now);
        let holder = record.holder_identity.clone().unwrap_or_default();
        let duration = Duration::from_secs(
            record
                .lease_duration_seconds
                .unwrap_or(self.cfg.lease_duration.as_secs() as i32)
                .max(0) as u64,
        );
        let mine = holder == self.cfg.identity;
        if !holder.is_empty() && !mine && observed_at + duration > Instant::now() {
            return Ok(false);
        }
        let transitions = record.lease_transitions.unwrap_or(0);
        lease.spec = Some(if mine {
            self.spec(record.acquire_time.clone(), transitions)
        } else {
            self.spec(None, transitions + 1)
        });
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => {
                self.observed = l.spec.map(|s| (s, Instant::now()));
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Waits until this candidate holds the lease, trying every retry period.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    info!(lease = %self.cfg.name, identity = %self.cfg.identity, "became leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.cfg.retry_period).await;
        }
    }

    /// Renews every retry period; returns once a renewal could not succeed within the renew
    /// deadline (leadership lost).
    pub async fn renew_until_lost(&mut self) {
        let mut last_renew = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renew = Instant::now(),
                Ok(false) => {
                    warn!(lease = %self.cfg.name, "lease taken by another candidate");
                    return;
                }
                Err(e) => warn!(error = %e, "renewing the lease failed"),
            }
            if last_renew.elapsed() > self.cfg.renew_deadline {
                warn!(lease = %self.cfg.name, "could not renew the lease within the deadline");
                return;
            }
        }
    }

    /// Gives the lease up (upstream's `ReleaseOnCancel`): clears the holder so another
    /// candidate need not wait for it to expire.
    pub async fn release(&mut self) -> Result<(), ElectionError> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.cfg.name)
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        self.api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| self.err(e))?;
        self.observed = None;
        Ok(())
    }

    /// Acquires the lease, then runs `lead` while renewing; returns when leadership is lost
    /// (`lead` is dropped then) or when `lead` finishes (the lease is released).
    pub async fn run<F: Future<Output = ()>>(mut self, lead: F) {
        self.acquire().await;
        let mut this = self;
        let lost = tokio::select! {
            _ = lead => false,
            _ = this.renew_until_lost() => true,
        };
        if !lost {
            if let Err(e) = this.release().await {
                warn!(error = %e, "releasing the lease failed");
            }
        }
    }
}
