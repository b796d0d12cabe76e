//! The runtime helper: a single-threaded process that owns every libcontainer call.
//!
//! It serves one connection (a Unix socket inherited as a descriptor) with length-prefixed
//! JSON [`Request`]s, one at a time ([`crate::serve`]), and exits when the kubelet closes
//! it. Nothing lives only
//! in its memory: state is in the [`StateDir`] and in libcontainer's state, so a new helper
//! started by a restarted kubelet sees every container the old one created.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use libcontainer::container::{Container, ContainerStatus};
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::signal::Signal as LcSignal;

use crate::exec_target::ExecTargets;
use crate::frame::FrameError;
use crate::protocol::{
    ContainerKind, ContainerMeta, ContainerState, ContainerStatusKind, ErrorKind, ExitInfo,
    RelistEntry, Request, Response,
};
use crate::rootfs::{mount_overlay, prepare_pause_rootfs, unmount_rootfs, RootfsError};
use crate::shim::{launch_container, launch_exec, ContainerShim, ShimError};
use crate::spec::{app_spec, effective_oom_score_adj, may_lower_oom_score, pause_spec, HostLibs};
use crate::state::{
    now_rfc3339, read_json, read_text, write_json, write_text, StateDir, StateError,
};
use crate::state_cache::StateCache;

/// A sandbox's resolv.conf in its bundle, bound into its app containers.
const RESOLV_CONF: &str = "resolv.conf";

/// Where the helper keeps things and finds cgroupfs.
#[derive(Debug, Clone)]
pub struct HelperConfig {
    /// Runtime state root (e.g. `/var/lib/bramble/runtime`).
    pub state_root: PathBuf,
    /// cgroupfs root (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// The `bramble` binary copied into the pause rootfs (normally `/proc/self/exe`).
    pub pause_binary: PathBuf,
}

/// Errors that end the helper or fail one request.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// Transport failure: the helper stops.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// State directory failure.
    #[error(transparent)]
    State(#[from] StateError),
    /// Root filesystem failure.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// Shim failure.
    #[error(transparent)]
    Shim(#[from] ShimError),
    /// Direct exec failure.
    #[error(transparent)]
    DirectExec(#[from] crate::exec_direct::DirectExecError),
    /// libcontainer failure.
    #[error("libcontainer: {0}")]
    Libcontainer(#[from] libcontainer::error::LibcontainerError),
    /// A request that names a missing container.
    #[error("container {0} not found")]
    NotFound(String),
    /// A request that does not fit.
    #[error("{0}")]
    Invalid(String),
    /// Creating the container failed; with the shim's log.
    #[error("{0}")]
    CreateFailed(String),
    /// A create with a taken id.
    #[error("container {0} already exists")]
    AlreadyExists(String),
}

impl HelperError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            HelperError::NotFound(_) => ErrorKind::NotFound,
            HelperError::Invalid(_) => ErrorKind::Invalid,
            HelperError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            _ => ErrorKind::Internal,
        }
    }
}

/// The helper's state between requests ([`crate::serve`] runs the loop).
pub(crate) struct Helper {
    cfg: HelperConfig,
    state: StateDir,
    pause_libs: Option<HostLibs>,
    may_lower_oom: bool,
    /// `meta.json` of each container, read once: it never changes after creation, and
    /// every relist reads every container's state.
    metas: RefCell<HashMap<String, ContainerMeta>>,
    /// States that hold until a watched process exits ([`StateCache`]).
    states: RefCell<StateCache>,
    /// Each container's OCI spec, read at its first direct exec (exec probes run every
    /// period; the spec never changes).
    specs: RefCell<HashMap<String, Rc<Spec>>>,
    /// Each running container's namespaces, cgroups and home directory, read at its first
    /// direct exec and kept while its init runs.
    exec_targets: RefCell<ExecTargets>,
}

impl Helper {
    /// A helper with its state root in place and nothing read yet.
    pub(crate) fn new(cfg: HelperConfig) -> Result<Self, HelperError> {
        let state = StateDir::new(&cfg.state_root);
        state.ensure()?;
        Ok(Helper {
            cfg,
            state,
            pause_libs: None,
            may_lower_oom: may_lower_oom_score(),
            metas: RefCell::default(),
            states: RefCell::default(),
            specs: RefCell::default(),
            exec_targets: RefCell::default(),
        })
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !id.starts_with('.')
}

impl Helper {
    /// Handles one request: the answer and the descriptors that go with it.
    pub(crate) fn handle(
        &mut self,
        req: Request,
        fds: Vec<OwnedFd>,
    ) -> Result<(Response, Vec<OwnedFd>), HelperError> {
        match req {
            Request::Create { id, kind } => {
                let pid = self.create(&id, kind)?;
                Ok((Response::Created { pid }, Vec::new()))
            }
            Request::Start { id } => {
                self.states.borrow_mut().forget(&id);
                let mut c = self.load(&id)?;
                c.start()?;
                write_text(&self.state.bundle(&id).join("started_at"), &now_rfc3339())?;
                Ok((Response::Ok, Vec::new()))
            }
            Request::Kill { id, signal } => {
                let mut c = self.load(&id)?;
                refresh_status(&mut c)?;
                if c.can_kill() {
                    let sig = LcSignal::try_from(signal)
                        .map_err(|e| HelperError::Invalid(format!("signal {signal}: {e}")))?;
                    // SIGKILL goes to every process of the cgroup; other signals to init only.
                    c.kill(sig, signal == libc::SIGKILL)?;
                }
                Ok((Response::Ok, Vec::new()))
            }
            Request::Delete { id, force } => {
                self.delete(&id, force)?;
                Ok((Response::Ok, Vec::new()))
            }
            Request::State { id } => Ok((
                Response::State {
                    state: self.state_of(&id)?,
                },
                Vec::new(),
            )),
            Request::List => {
                let mut states = Vec::new();
                for id in self.state.list_ids()? {
                    match self.state_of(&id) {
                        Ok(s) => states.push(s),
                        Err(e) => tracing::warn!(%id, error = %e, "unreadable container state"),
                    }
                }
                Ok((Response::List { states }, Vec::new()))
            }
            Request::Relist => {
                // Stopped containers' namespaces are not held past the next relist.
                self.exec_targets.borrow_mut().prune();
                let mut containers = Vec::new();
                for id in self.state.list_ids()? {
                    let Ok(meta) = self.meta(&id) else { continue };
                    let pod_uid = match &meta.kind {
                        ContainerKind::Sandbox { config } => config.pod_uid.clone(),
                        ContainerKind::App { sandbox_id, .. } => match self.meta(sandbox_id) {
                            Ok(ContainerMeta {
                                kind: ContainerKind::Sandbox { config },
                                ..
                            }) => config.pod_uid,
                            // A sandbox that is gone: ListPod would not find it either.
                            _ => continue,
                        },
                    };
                    match self.state_of(&id) {
                        Ok(s) => containers.push(RelistEntry {
                            id,
                            pod_uid,
                            status: s.status,
                        }),
                        Err(e) => tracing::warn!(%id, error = %e, "unreadable container state"),
                    }
                }
                Ok((Response::Relisted { containers }, Vec::new()))
            }
            Request::ListPod { pod_uid } => {
                // Sandboxes by their config, app containers by their sandbox: only the
                // pod's own states are read (metas are cached).
                let ids = self.state.list_ids()?;
                let metas: Vec<ContainerMeta> =
                    ids.iter().filter_map(|id| self.meta(id).ok()).collect();
                let sandboxes: Vec<&str> = metas
                    .iter()
                    .filter(|m| {
                        matches!(&m.kind, ContainerKind::Sandbox { config } if config.pod_uid == pod_uid)
                    })
                    .map(|m| m.id.as_str())
                    .collect();
                let mut states = Vec::new();
                for m in &metas {
                    let ours = match &m.kind {
                        ContainerKind::Sandbox { .. } => sandboxes.contains(&m.id.as_str()),
                        ContainerKind::App { sandbox_id, .. } => {
                            sandboxes.contains(&sandbox_id.as_str())
                        }
                    };
                    if !ours {
                        continue;
                    }
                    match self.state_of(&m.id) {
                        Ok(s) => states.push(s),
                        Err(e) => {
                            tracing::warn!(id = %m.id, error = %e, "unreadable container state")
                        }
                    }
                }
                Ok((Response::List { states }, Vec::new()))
            }
            Request::Exec { id, config } => {
                let [i, o, e]: [OwnedFd; 3] = fds
                    .try_into()
                    .map_err(|_| HelperError::Invalid("exec needs stdin, stdout, stderr".into()))?;
                let st = self.state_of(&id)?;
                if st.status != ContainerStatusKind::Running {
                    return Err(HelperError::Invalid(format!(
                        "container {id} is not running"
                    )));
                }
                let (pid, result) = launch_exec(
                    &self.state.libcontainer_root(),
                    &self.state.bundle(&id),
                    &id,
                    &config,
                    [i, o, e],
                )?;
                Ok((Response::ExecStarted { pid }, vec![result]))
            }
            Request::ExecDirect { id, config } => {
                let stdio: [OwnedFd; 3] = fds
                    .try_into()
                    .map_err(|_| HelperError::Invalid("exec needs stdin, stdout, stderr".into()))?;
                if config.tty {
                    return Err(HelperError::Invalid("a direct exec has no terminal".into()));
                }
                let st = self.state_of(&id)?;
                let pid = match (st.status, st.pid) {
                    (ContainerStatusKind::Running, Some(pid)) => pid,
                    _ => {
                        return Err(HelperError::Invalid(format!(
                            "container {id} is not running"
                        )))
                    }
                };
                let spec = self.spec(&id)?;
                let uid = spec.process().as_ref().map_or(0, |p| p.user().uid());
                let target = self.exec_targets.borrow_mut().get(&id, pid, uid)?;
                let started = crate::exec_direct::spawn(&spec, &target, &config, stdio)?;
                Ok((
                    Response::ExecDirectStarted {
                        pid: started.pid,
                        error: started.error,
                    },
                    vec![started.pidfd],
                ))
            }
            Request::Attach { id } => {
                let st = self.state_of(&id)?;
                if st.status != ContainerStatusKind::Running {
                    return Err(HelperError::Invalid(format!(
                        "container {id} is not running"
                    )));
                }
                let sock = crate::attach::connect(&self.state.bundle(&id))
                    .map_err(|e| HelperError::Invalid(e.to_string()))?;
                Ok((Response::Attached, vec![OwnedFd::from(sock)]))
            }
            Request::ReopenLog { id } => {
                let st = self.state_of(&id)?;
                let shim = st.shim_pid.ok_or_else(|| {
                    HelperError::Invalid(format!("container {id} has no running shim"))
                })?;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(shim),
                    nix::sys::signal::Signal::SIGUSR1,
                );
                Ok((Response::Ok, Vec::new()))
            }
        }
    }

    fn load(&self, id: &str) -> Result<Container, HelperError> {
        if !valid_id(id) {
            return Err(HelperError::Invalid(format!("bad container id {id:?}")));
        }
        let dir = self.state.libcontainer_root().join(id);
        if !dir.join("state.json").exists() {
            return Err(HelperError::NotFound(id.to_string()));
        }
        // Loading refreshes the status: the same race as in [`refresh_status`].
        match Container::load(dir.clone()) {
            Ok(c) => Ok(c),
            Err(first) => {
                tracing::debug!(error = %first, "container status changed while read; reading again");
                Ok(Container::load(dir)?)
            }
        }
    }

    fn spec(&self, id: &str) -> Result<Rc<Spec>, HelperError> {
        if let Some(s) = self.specs.borrow().get(id) {
            return Ok(s.clone());
        }
        let spec = Rc::new(crate::exec_direct::load_spec(&self.state.bundle(id))?);
        self.specs.borrow_mut().insert(id.to_string(), spec.clone());
        Ok(spec)
    }

    fn meta(&self, id: &str) -> Result<ContainerMeta, HelperError> {
        if !valid_id(id) {
            return Err(HelperError::Invalid(format!("bad container id {id:?}")));
        }
        if let Some(m) = self.metas.borrow().get(id) {
            return Ok(m.clone());
        }
        let meta: ContainerMeta = read_json(&self.state.bundle(id).join("meta.json"))?
            .ok_or_else(|| HelperError::NotFound(id.to_string()))?;
        self.metas.borrow_mut().insert(id.to_string(), meta.clone());
        Ok(meta)
    }

    fn create(&mut self, id: &str, kind: ContainerKind) -> Result<i32, HelperError> {
        if !valid_id(id) {
            return Err(HelperError::Invalid(format!("bad container id {id:?}")));
        }
        let bundle = self.state.bundle(id);
        if bundle.exists() {
            return Err(HelperError::AlreadyExists(id.to_string()));
        }
        let (cgroup_path, log_path, spec) = match &kind {
            ContainerKind::Sandbox { config } => {
                let cg = config.cgroup_parent.join(id);
                let libs = match &self.pause_libs {
                    Some(l) => l,
                    None => {
                        let l = prepare_pause_rootfs(
                            &self.state.pause_rootfs(),
                            &self.cfg.pause_binary,
                        )?;
                        self.pause_libs.insert(l)
                    }
                };
                let adj = effective_oom_score_adj(
                    Some(bramble_cgroups::qos::POD_INFRA_OOM_SCORE_ADJ),
                    self.may_lower_oom,
                );
                let spec = pause_spec(
                    &self.state.pause_rootfs(),
                    &config.hostname,
                    config.host_network,
                    &cgroups_path(&cg),
                    libs,
                    adj,
                );
                (cg, bundle.join("pause.log"), spec)
            }
            ContainerKind::App { sandbox_id, config } => {
                let sandbox = self.meta(sandbox_id)?;
                let ContainerKind::Sandbox { config: sb } = &sandbox.kind else {
                    return Err(HelperError::Invalid(format!(
                        "{sandbox_id} is not a sandbox"
                    )));
                };
                let st = self.state_of(sandbox_id)?;
                let pause_pid = match (st.status, st.pid) {
                    (ContainerStatusKind::Running, Some(pid)) => pid,
                    _ => {
                        return Err(HelperError::Invalid(format!(
                            "sandbox {sandbox_id} is not running"
                        )))
                    }
                };
                if config.command.is_empty() {
                    return Err(HelperError::Invalid("container command is empty".into()));
                }
                let cg = sb.cgroup_parent.join(id);
                let mut spec = app_spec(config, pause_pid, &cgroups_path(&cg), self.may_lower_oom);
                if sb.resolv_conf.is_some() {
                    let source = self.state.bundle(sandbox_id).join(RESOLV_CONF);
                    if let Some(m) = spec["mounts"].as_array_mut() {
                        m.push(serde_json::json!({"destination": "/etc/resolv.conf",
                            "type": "bind", "source": source, "options": ["rbind", "rprivate"]}));
                    }
                }
                (cg, config.log_path.clone(), spec)
            }
        };
        crate::state::mkdir_all(&bundle)?;
        if let ContainerKind::Sandbox { config } = &kind {
            if let Some(text) = &config.resolv_conf {
                write_text(&bundle.join(RESOLV_CONF), text)?;
            }
        }
        let meta = ContainerMeta {
            id: id.to_string(),
            kind: kind.clone(),
            cgroup_path: cgroup_path.clone(),
            log_path: log_path.clone(),
            created_at: now_rfc3339(),
        };
        write_json(&bundle.join("meta.json"), &meta)?;
        let result = (|| {
            write_json(&bundle.join("config.json"), &spec)?;
            if let ContainerKind::App { config, .. } = &kind {
                mount_overlay(&bundle, &config.image_layers)?;
            }
            let shim = ContainerShim {
                id: id.to_string(),
                bundle: bundle.clone(),
                libcontainer_root: self.state.libcontainer_root(),
                log_path,
                cgroup_root: self.cfg.cgroup_root.clone(),
                cgroup_path,
                stdio: match &kind {
                    ContainerKind::App { config, .. } => config.stdio,
                    ContainerKind::Sandbox { .. } => Default::default(),
                },
            };
            Ok::<_, HelperError>(launch_container(&shim)?)
        })();
        if let Err(e) = result {
            // The shim's log holds libcontainer's own account of the failure.
            let log = std::fs::read_to_string(bundle.join("shim.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            let _ = unmount_rootfs(&bundle);
            let _ = std::fs::remove_dir_all(&bundle);
            let _ = std::fs::remove_dir_all(self.state.libcontainer_root().join(id));
            if tail.is_empty() {
                return Err(e);
            }
            return Err(HelperError::CreateFailed(format!("{e} ({tail})")));
        }
        result
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), HelperError> {
        let bundle = self.state.bundle(id);
        let meta = self.meta(id)?;
        match self.load(id) {
            Ok(mut c) => {
                refresh_status(&mut c)?;
                if !force && !c.can_delete() {
                    return Err(HelperError::Invalid(format!(
                        "container {id} is {:?}; stop it first",
                        c.status()
                    )));
                }
                c.delete(true)?;
            }
            Err(HelperError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        if matches!(meta.kind, ContainerKind::App { .. }) {
            unmount_rootfs(&bundle)?;
        }
        self.metas.borrow_mut().remove(id);
        self.states.borrow_mut().forget(id);
        self.specs.borrow_mut().remove(id);
        self.exec_targets.borrow_mut().forget(id);
        std::fs::remove_dir_all(&bundle).map_err(|source| StateError::Io {
            op: "remove",
            path: bundle.clone(),
            source,
        })?;
        Ok(())
    }

    /// A container's state: cached while it holds, else read from disk.
    fn state_of(&self, id: &str) -> Result<ContainerState, HelperError> {
        if let Some(st) = self.states.borrow_mut().get(id) {
            return Ok(st);
        }
        let st = self.read_state(id)?;
        self.states.borrow_mut().put(id, &st);
        Ok(st)
    }

    fn read_state(&self, id: &str) -> Result<ContainerState, HelperError> {
        let meta = self.meta(id)?;
        let bundle = self.state.bundle(id);
        let exit: Option<ExitInfo> = read_json(&bundle.join("exit.json"))?;
        let shim_pid = read_text(&bundle.join("shim.pid"))
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|p| process_alive(*p));
        let started_at = read_text(&bundle.join("started_at"));
        let (lc_status, pid) = match self.load(id) {
            Ok(mut c) => {
                refresh_status(&mut c)?;
                (Some(c.status()), c.pid().map(|p| p.as_raw()))
            }
            Err(HelperError::NotFound(_)) => (None, None),
            Err(e) => return Err(e),
        };
        let status = match (lc_status, &exit) {
            (_, Some(_)) => ContainerStatusKind::Exited,
            (Some(ContainerStatus::Created), _) | (Some(ContainerStatus::Creating), _) => {
                ContainerStatusKind::Created
            }
            (Some(ContainerStatus::Running), _) | (Some(ContainerStatus::Paused), _) => {
                ContainerStatusKind::Running
            }
            // Exited, the shim still writing exit.json.
            (Some(ContainerStatus::Stopped), None) if shim_pid.is_some() => {
                ContainerStatusKind::Running
            }
            _ => ContainerStatusKind::Unknown,
        };
        let pid = if status == ContainerStatusKind::Exited {
            None
        } else {
            pid
        };
        Ok(ContainerState {
            meta,
            status,
            pid,
            started_at,
            exit,
            shim_pid,
        })
    }
}

/// `Container::refresh_status`, tolerating the process dying during it: libcontainer finds
/// `/proc/PID`, then reads `/proc/PID/stat`, which fails with "File not found" when the
/// process was reaped in between (an OOM kill right at a status query did that). Asked
/// again, it finds no `/proc/PID` and says Stopped; an error that stays is returned.
fn refresh_status(c: &mut Container) -> Result<(), HelperError> {
    match c.refresh_status() {
        Ok(()) => Ok(()),
        Err(first) => {
            tracing::debug!(error = %first, "container status changed while read; reading again");
            Ok(c.refresh_status()?)
        }
    }
}

/// libcontainer's cgroupfs path for a relative cgroup (absolute under the cgroup root).
fn cgroups_path(rel: &Path) -> String {
    format!("/{}", rel.display())
}

fn process_alive(pid: i32) -> bool {
    // A zombie counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(|st| st != "Z" && st != "X")
            .unwrap_or(false),
        Err(_) => false,
    }
}
