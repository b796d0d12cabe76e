//! Supervising the services init starts (controller, kubelet): restart with exponential back-off,
//! reset after a stable run, stop with SIGTERM then SIGKILL. Pure state machine; processes are
//! started through the [`Spawner`] seam.

use std::time::{Duration, Instant};

/// Restart delays: `initial * 2^(failures-1)`, capped at `max`; a run longer than `reset_after`
/// forgets earlier failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// A run this long counts as healthy.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(120),
        }
    }
}

impl Backoff {
    /// Delay before restart number `failures` (1 = first failure).
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        self.initial.saturating_mul(1u32 << shift).min(self.max)
    }
}

/// A service to run: `bramble <args...>` under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Name (`controller`, `kubelet`).
    pub name: String,
    /// Arguments after the binary (`["controller", "--data-dir", ...]`).
    pub args: Vec<String>,
    /// Start only once these files exist (checked every [`AFTER_POLL`]): the kubelet waits
    /// for init's mark that the kernel modules are loaded and, beside a controller, for the
    /// kubeconfig the controller writes, instead of failing without them and being restarted
    /// with a growing back-off.
    pub after: Vec<std::path::PathBuf>,
}

/// How often a service waiting for its [`ServiceSpec::after`] file looks for it.
pub const AFTER_POLL: Duration = Duration::from_millis(250);

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// Waiting to be (re)started at `until`.
    Waiting {
        /// Start time.
        until: Instant,
    },
    /// Running as `pid` since `since`.
    Running {
        /// Process id.
        pid: i32,
        /// Start time.
        since: Instant,
    },
    /// SIGTERM sent; SIGKILL at `deadline`.
    Stopping {
        /// Process id.
        pid: i32,
        /// When to SIGKILL.
        deadline: Instant,
    },
    /// Not running and not to be restarted.
    Stopped,
}

/// Starts and signals processes.
pub trait Spawner {
    /// Start `spec`; return its pid.
    fn spawn(&mut self, spec: &ServiceSpec) -> std::io::Result<i32>;
    /// Send `signal` to `pid`.
    fn signal(&mut self, pid: i32, signal: i32);
}

/// One supervised service.
#[derive(Debug, Clone)]
pub struct Service {
    /// What to run.
    pub spec: ServiceSpec,
    /// Current state.
    pub state: ServiceState,
    /// Consecutive failures.
    pub failures: u32,
    /// Total restarts.
    pub restarts: u32,
    /// Last exit description.
    pub last_exit: Option<String>,
}

/// Events the supervisor reports (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Service started.
    Started { name: String, pid: i32 },
    /// Could not start; retry later.
    SpawnFailed {
        name: String,
        error: String,
        retry_in: Duration,
    },
    /// Exited; restart after `retry_in` (None when stopping).
    Exited {
        name: String,
        pid: i32,
        status: String,
        retry_in: Option<Duration>,
    },
    /// Killed after the stop grace period.
    Killed { name: String, pid: i32 },
}

/// The supervisor.
pub struct Supervisor<S: Spawner> {
    services: Vec<Service>,
    spawner: S,
    backoff: Backoff,
    stop_grace: Duration,
    stopping: bool,
}

impl<S: Spawner> Supervisor<S> {
    /// Supervise `specs`, all due to start at `now`.
    pub fn new(specs: Vec<ServiceSpec>, spawner: S, backoff: Backoff, now: Instant) -> Self {
        Supervisor {
            services: specs
                .into_iter()
                .map(|spec| Service {
                    spec,
                    state: ServiceState::Waiting { until: now },
                    failures: 0,
                    restarts: 0,
                    last_exit: None,
                })
                .collect(),
            spawner,
            backoff,
            stop_grace: Duration::from_secs(10),
            stopping: false,
        }
    }

    /// The services and their states.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Start services whose wait is over; SIGKILL stopping ones past their deadline.
    pub fn tick(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        for svc in &mut self.services {
            match svc.state {
                ServiceState::Waiting { until } if until <= now && !self.stopping => {
                    if svc.spec.after.iter().any(|f| !f.exists()) {
                        svc.state = ServiceState::Waiting {
                            until: now + AFTER_POLL,
                        };
                        continue;
                    }
                    match self.spawner.spawn(&svc.spec) {
                        Ok(pid) => {
                            svc.state = ServiceState::Running { pid, since: now };
                            events.push(Event::Started {
                                name: svc.spec.name.clone(),
                                pid,
                            });
                        }
                        Err(e) => {
                            svc.failures += 1;
                            let retry_in = self.backoff.delay(svc.failures);
                            svc.state = ServiceState::Waiting {
                                until: now + retry_in,
                            };
                            events.push(Event::SpawnFailed {
                                name: svc.spec.name.clone(),
                                error: e.to_string(),
                                retry_in,
                            });
                        }
                    }
                }
                ServiceState::Stopping { pid, deadline } if deadline <= now => {
                    self.spawner.signal(pid, libc::SIGKILL);
                    // Stay Stopping until the exit is reaped; push the deadline out.
                    svc.state = ServiceState::Stopping {
                        pid,
                        deadline: now + self.stop_grace,
                    };
                    events.push(Event::Killed {
                        name: svc.spec.name.clone(),
                        pid,
                    });
                }
                _ => {}
            }
        }
        events
    }

    /// A child exited (from waitpid). Returns the event if `pid` was a service.
    pub fn on_exit(&mut self, pid: i32, status: &str, now: Instant) -> Option<Event> {
        let stopping = self.stopping;
        let svc = self.services.iter_mut().find(|s| match s.state {
            ServiceState::Running { pid: p, .. } | ServiceState::Stopping { pid: p, .. } => {
                p == pid
            }
            _ => false,
        })?;
        svc.last_exit = Some(status.to_string());
        let retry_in = match svc.state {
            ServiceState::Running { since, .. } if !stopping => {
                if now.duration_since(since) >= self.backoff.reset_after {
                    svc.failures = 0;
                }
                svc.failures += 1;
                svc.restarts += 1;
                let d = self.backoff.delay(svc.failures);
                svc.state = ServiceState::Waiting { until: now + d };
                Some(d)
            }
            _ => {
                svc.state = ServiceState::Stopped;
                None
            }
        };
        Some(Event::Exited {
            name: svc.spec.name.clone(),
            pid,
            status: status.to_string(),
            retry_in,
        })
    }

    /// Begin stopping everything: SIGTERM to running services, no more restarts.
    pub fn stop_all(&mut self, now: Instant) {
        self.stopping = true;
        for svc in &mut self.services {
            match svc.state {
                ServiceState::Running { pid, .. } => {
                    self.spawner.signal(pid, libc::SIGTERM);
                    svc.state = ServiceState::Stopping {
                        pid,
                        deadline: now + self.stop_grace,
                    };
                }
                ServiceState::Waiting { .. } => svc.state = ServiceState::Stopped,
                _ => {}
            }
        }
    }

    /// True when no service process is left.
    pub fn all_stopped(&self) -> bool {
        self.services
            .iter()
            .all(|s| s.state == ServiceState::Stopped)
    }

    /// The earliest time `tick` has work to do.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.services
            .iter()
            .filter_map(|s| match s.state {
                ServiceState::Waiting { until } if !self.stopping => Some(until),
                ServiceState::Stopping { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct FakeSpawner {
        next_pid: i32,
        fail: bool,
        signals: Vec<(i32, i32)>,
    }

    impl Spawner for FakeSpawner {
        fn spawn(&mut self, _spec: &ServiceSpec) -> std::io::Result<i32> {
            if self.fail {
                return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
            }
            self.next_pid += 1;
            Ok(100 + self.next_pid)
        }
        fn signal(&mut self, pid: i32, signal: i32) {
            self.signals.push((pid, signal));
        }
    }

    fn spec(name: &str) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            args: vec![name.into()],
            after: Vec::new(),
        }
    }

    #[test]
    fn a_service_after_a_file_starts_once_it_exists_without_counting_failures() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kubelet.kubeconfig");
        let t0 = Instant::now();
        let kubelet = ServiceSpec {
            after: vec![file.clone()],
            ..spec("kubelet")
        };
        let mut s = Supervisor::new(
            vec![spec("controller"), kubelet],
            FakeSpawner::default(),
            Backoff::default(),
            t0,
        );
        let ev = s.tick(t0);
        assert_eq!(
            ev,
            vec![Event::Started {
                name: "controller".into(),
                pid: 101
            }]
        );
        assert_eq!(s.next_wakeup(), Some(t0 + AFTER_POLL));
        let t1 = t0 + AFTER_POLL;
        assert!(s.tick(t1).is_empty(), "still no file");
        std::fs::write(&file, "x").unwrap();
        assert!(s.tick(t1).is_empty(), "not due before the next poll");
        let ev = s.tick(t1 + AFTER_POLL);
        assert_eq!(
            ev,
            vec![Event::Started {
                name: "kubelet".into(),
                pid: 102
            }]
        );
        assert_eq!((s.services()[1].failures, s.services()[1].restarts), (0, 0));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.delay(1000), Duration::from_secs(60));
    }

    #[test]
    fn crash_loop_backs_off_and_stable_run_resets() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(
            vec![spec("kubelet")],
            FakeSpawner::default(),
            Backoff::default(),
            t0,
        );
        let ev = s.tick(t0);
        assert_eq!(
            ev,
            vec![Event::Started {
                name: "kubelet".into(),
                pid: 101
            }]
        );
        // Crashes quickly three times: 1 s, 2 s, 4 s.
        let mut now = t0;
        for (i, want) in [1u64, 2, 4].iter().enumerate() {
            now += Duration::from_millis(100);
            let pid = 101 + i as i32;
            let e = s.on_exit(pid, "exit status 1", now).unwrap();
            assert_eq!(
                e,
                Event::Exited {
                    name: "kubelet".into(),
                    pid,
                    status: "exit status 1".into(),
                    retry_in: Some(Duration::from_secs(*want))
                }
            );
            assert!(s.tick(now).is_empty(), "must wait");
            assert_eq!(s.next_wakeup(), Some(now + Duration::from_secs(*want)));
            now += Duration::from_secs(*want);
            assert_eq!(s.tick(now).len(), 1);
        }
        // Runs for 5 minutes, then exits: back to a 1 s delay.
        now += Duration::from_secs(300);
        let e = s.on_exit(104, "signal 9", now).unwrap();
        assert!(
            matches!(e, Event::Exited { retry_in: Some(d), .. } if d == Duration::from_secs(1))
        );
        assert_eq!(s.services()[0].restarts, 4);
        // Unknown pids (reaped orphans) are not services.
        assert_eq!(s.on_exit(4242, "exit status 0", now), None);
    }

    #[test]
    fn spawn_failure_retries_with_backoff() {
        let t0 = Instant::now();
        let sp = FakeSpawner {
            fail: true,
            ..Default::default()
        };
        let mut s = Supervisor::new(vec![spec("controller")], sp, Backoff::default(), t0);
        let ev = s.tick(t0);
        assert!(
            matches!(&ev[0], Event::SpawnFailed { retry_in, .. } if *retry_in == Duration::from_secs(1))
        );
        let ev = s.tick(t0 + Duration::from_secs(1));
        assert!(
            matches!(&ev[0], Event::SpawnFailed { retry_in, .. } if *retry_in == Duration::from_secs(2))
        );
    }

    #[test]
    fn stop_all_terms_then_kills_and_never_restarts() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(
            vec![spec("controller"), spec("kubelet")],
            FakeSpawner::default(),
            Backoff::default(),
            t0,
        );
        s.tick(t0);
        s.stop_all(t0);
        assert_eq!(
            s.spawner.signals,
            vec![(101, libc::SIGTERM), (102, libc::SIGTERM)]
        );
        assert!(!s.all_stopped());
        let e = s.on_exit(101, "exit status 0", t0).unwrap();
        assert!(matches!(e, Event::Exited { retry_in: None, .. }));
        let ev = s.tick(t0 + Duration::from_secs(11));
        assert_eq!(
            ev,
            vec![Event::Killed {
                name: "kubelet".into(),
                pid: 102
            }]
        );
        assert_eq!(s.spawner.signals.last(), Some(&(102, libc::SIGKILL)));
        s.on_exit(102, "signal 9", t0 + Duration::from_secs(11));
        assert!(s.all_stopped());
        assert!(s.tick(t0 + Duration::from_secs(100)).is_empty());
    }
}
