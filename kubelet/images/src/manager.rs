//! The kubelet's image manager (`EnsureImageExists`): pull policy, per-pod pull back-off
//! (10 s doubling to 5 min, as the kubelet's `imageBackOff`), serialized pulls, and the events
//! and waiting reasons upstream records (`Pulling`, `Pulled`, `Failed`, `BackOff`,
//! `ErrImageNeverPull`, `InspectFailed`; `ErrImagePull`, `ImagePullBackOff`, ...).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::Keyring;
use crate::policy::{already_present_message, decide_pull, PullAction, PullPolicy};
use crate::pull::Puller;
use crate::reference::ImageRef;
use crate::store::{ImageRecord, ImageStore};

/// The kubelet's image pull back-off start (`backOffPeriod`).
pub const PULL_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// The kubelet's image pull back-off cap (`MaxContainerBackOff`).
pub const PULL_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Per-key exponential back-off with upstream `flowcontrol.Backoff` semantics (no jitter).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, (Duration, Instant)>,
}

impl Backoff {
    /// A back-off starting at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// Whether `key` failed less than its current back-off ago.
    pub fn is_in_backoff_since_update(&self, key: &str, now: Instant) -> bool {
        self.entries
            .get(key)
            .is_some_and(|(d, last)| now.saturating_duration_since(*last) < *d)
    }

    /// Records a failure: starts at `initial`, else doubles (capped); an entry idle for more
    /// than twice the cap starts over.
    pub fn next(&mut self, key: &str, now: Instant) {
        let (initial, max) = (self.initial, self.max);
        let e = self
            .entries
            .entry(key.to_string())
            .or_insert((Duration::ZERO, now));
        let expired = now.saturating_duration_since(e.1) > 2 * max;
        e.0 = if e.0.is_zero() || expired {
            initial
        } else {
            (e.0 * 2).min(max)
        };
        e.1 = now;
    }

    /// The current back-off of `key`, if any.
    pub fn get(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.0)
    }

    /// Drops entries idle for more than twice the cap.
    pub fn gc(&mut self, now: Instant) {
        let max = self.max;
        self.entries
            .retain(|_, (_, last)| now.saturating_duration_since(*last) <= 2 * max);
    }
}

/// Event type, as in `v1.Event.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// An event the kubelet should record on the pod for this container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEvent {
    /// Normal or Warning.
    pub event_type: EventType,
    /// `Pulling`, `Pulled`, `Failed`, `BackOff`, `ErrImageNeverPull`, `InspectFailed`.
    pub reason: &'static str,
    /// Upstream's message text.
    pub message: String,
}

/// The image is ready.
#[derive(Debug, Clone)]
pub struct Ensured {
    /// The stored image.
    pub record: ImageRecord,
    /// Events to record.
    pub events: Vec<ImageEvent>,
}

/// The image is not available; `reason` and `message` go into the container's waiting state.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct EnsureFailure {
    /// `ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`, `InvalidImageName`,
    /// `ImageInspectError`.
    pub reason: &'static str,
    /// Upstream's message.
    pub message: String,
    /// Events to record.
    pub events: Vec<ImageEvent>,
}

/// Ensures container images exist, as the kubelet's image manager.
pub struct ImageManager {
    store: ImageStore,
    puller: Puller,
    backoff: Mutex<Backoff>,
    pull_slots: Arc<tokio::sync::Semaphore>,
}

impl ImageManager {
    /// A manager pulling one image at a time (`serializeImagePulls: true`, the default), or up
    /// to `max_parallel_pulls` at once when given.
    pub fn new(store: ImageStore, puller: Puller, max_parallel_pulls: Option<usize>) -> Self {
        ImageManager {
            store,
            puller,
            backoff: Mutex::new(Backoff::new(PULL_BACKOFF_INITIAL, PULL_BACKOFF_MAX)),
            pull_slots: Arc::new(tokio::sync::Semaphore::new(
                max_parallel_pulls.unwrap_or(1).max(1),
            )),
        }
    }

    /// The store images land in.
    pub fn store(&self) -> &ImageStore {
        &self.store
    }

    /// Upstream `EnsureImageExists` for one container of pod `pod_uid`: `image` as written in
    /// the spec, `policy` its `imagePullPolicy` (defaulted from the tag when `None`), `keyring`
    /// the pod's `imagePullSecrets`.
    pub async fn ensure_image_exists(
        &self,
        pod_uid: &str,
        image: &str,
        policy: Option<PullPolicy>,
        keyring: &Keyring,
    ) -> Result<Ensured, EnsureFailure> {
        let mut events = Vec::new();
        let fail = |reason,
                    message: String,
                    mut events: Vec<ImageEvent>,
                    ev: Option<(EventType, &'static str)>| {
            if let Some((event_type, r)) = ev {
                events.push(ImageEvent {
                    event_type,
                    reason: r,
                    message: message.clone(),
                });
            }
            EnsureFailure {
                reason,
                message,
                events,
            }
        };
        if let Err(e) = ImageRef::parse_with_default_tag(image) {
            let msg = format!("Failed to apply default image tag {image:?}: {e}");
            return Err(fail(
                "InvalidImageName",
                msg,
                events,
                Some((EventType::Warning, "InspectFailed")),
            ));
        }
        let policy = policy.unwrap_or_else(|| PullPolicy::default_for_image(image));
        let present = match self.store.is_present(image) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("Failed to inspect image {image:?}: {e}");
                return Err(fail(
                    "ImageInspectError",
                    msg,
                    events,
                    Some((EventType::Warning, "InspectFailed")),
                ));
            }
        };
        match decide_pull(policy, image, present) {
            Err(never) => {
                return Err(fail(
                    "ErrImageNeverPull",
                    never.to_string(),
                    events,
                    Some((EventType::Warning, "ErrImageNeverPull")),
                ))
            }
            Ok(PullAction::UsePresent) => {
                let record =
                    self.store
                        .find(image)
                        .ok()
                        .flatten()
                        .ok_or_else(|| EnsureFailure {
                            reason: "ImageInspectError",
                            message: format!(
                                "Failed to inspect image {image:?}: removed concurrently"
                            ),
                            events: Vec::new(),
                        })?;
                events.push(ImageEvent {
                    event_type: EventType::Normal,
                    reason: "Pulled",
                    message: already_present_message(image),
                });
                return Ok(Ensured { record, events });
            }
            Ok(PullAction::Pull) => {}
        }
        let key = format!("{pod_uid}_{image}");
        if self
            .backoff
            .lock()
            .expect("backoff")
            .is_in_backoff_since_update(&key, Instant::now())
        {
            let msg = format!("Back-off pulling image {image:?}");
            return Err(fail(
                "ImagePullBackOff",
                msg,
                events,
                Some((EventType::Normal, "BackOff")),
            ));
        }
        events.push(ImageEvent {
            event_type: EventType::Normal,
            reason: "Pulling",
            message: format!("Pulling image {image:?}"),
        });
        let waiting_since = Instant::now();
        let _slot = self
            .pull_slots
            .acquire()
            .await
            .expect("semaphore never closed");
        let started = Instant::now();
        match self.puller.pull(image, keyring).await {
            Ok(record) => {
                let now = Instant::now();
                events.push(ImageEvent {
                    event_type: EventType::Normal,
                    reason: "Pulled",
                    message: format!(
                        "Successfully pulled image {image:?} in {} ({} including waiting). Image size: {} bytes.",
                        go_duration_ms(now - started),
                        go_duration_ms(now - waiting_since),
                        record.size
                    ),
                });
                self.backoff.lock().expect("backoff").gc(now);
                Ok(Ensured { record, events })
            }
            Err(e) => {
                events.push(ImageEvent {
                    event_type: EventType::Warning,
                    reason: "Failed",
                    message: format!("Failed to pull image {image:?}: {e}"),
                });
                self.backoff
                    .lock()
                    .expect("backoff")
                    .next(&key, Instant::now());
                Err(fail(e.reason(), e.to_string(), events, None))
            }
        }
    }
}

/// Go's `time.Duration.String()` of `d` truncated to milliseconds (`0s`, `567ms`, `1.5s`,
/// `2m3.004s`, `1h0m0s`), as the kubelet prints pull durations.
pub fn go_duration_ms(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let (s, frac) = ((ms / 1000) % 60, ms % 1000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_idle() {
        let mut b = Backoff::new(PULL_BACKOFF_INITIAL, PULL_BACKOFF_MAX);
        let t0 = Instant::now();
        assert!(!b.is_in_backoff_since_update("k", t0));
        b.next("k", t0);
        assert_eq!(b.get("k"), Some(Duration::from_secs(10)));
        assert!(b.is_in_backoff_since_update("k", t0 + Duration::from_secs(9)));
        assert!(!b.is_in_backoff_since_update("k", t0 + Duration::from_secs(10)));
        let mut t = t0;
        for want in [20, 40, 80, 160, 300, 300] {
            t += Duration::from_secs(11);
            b.next("k", t);
            assert_eq!(b.get("k"), Some(Duration::from_secs(want)));
        }
        // Idle for more than 2x the cap: starts over.
        t += Duration::from_secs(601);
        b.next("k", t);
        assert_eq!(b.get("k"), Some(Duration::from_secs(10)));
        b.gc(t + Duration::from_secs(601));
        assert_eq!(b.get("k"), None);
    }

    #[test]
    fn ensure_future_is_send_so_the_kubelet_can_spawn_it() {
        fn assert_send<T: Send>(_: &T) {}
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let m = ImageManager::new(store.clone(), Puller::new(store, Default::default()), None);
        let kr = Keyring::default();
        let fut = m.ensure_image_exists("uid", "busybox", None, &kr);
        assert_send(&fut);
    }

    #[test]
    fn durations_print_like_go() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration_ms(Duration::from_micros(400)), "0s");
        assert_eq!(go_duration_ms(ms(567)), "567ms");
        assert_eq!(go_duration_ms(ms(1000)), "1s");
        assert_eq!(go_duration_ms(ms(1500)), "1.5s");
        assert_eq!(go_duration_ms(ms(123_004)), "2m3.004s");
        assert_eq!(go_duration_ms(ms(3_600_000)), "1h0m0s");
    }
}
