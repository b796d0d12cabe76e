//! The seam the kubelet uses: [`ContainerRuntime`], implemented by [`RuntimeClient`] over the
//! helper connection.

use std::future::Future;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, Interest};

use crate::client::RuntimeClient;
use crate::error::RuntimeError;
use crate::protocol::{
    ContainerConfig, ContainerKind, ContainerState, ContainerStatusKind, ExecConfig, ExecResult,
    RelistEntry, Request, Response, SandboxConfig,
};

/// How long `stop` waits for a SIGKILLed container to be reported exited.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// A pod sandbox's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStatus {
    /// Sandbox id.
    pub id: String,
    /// `true` while the pause container runs (CRI `SANDBOX_READY`).
    pub ready: bool,
    /// Host pid of the pause process.
    pub pid: Option<i32>,
    /// The pod network namespace, for CNI (`/proc/<pid>/ns/net`).
    pub netns_path: Option<String>,
    /// The pause container's full state (config, exit).
    pub state: ContainerState,
}

/// Output of [`ContainerRuntime::exec_sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// Exit code (128 + signal when signalled).
    pub exit_code: i32,
}

/// A process started by [`ContainerRuntime::exec`].
#[derive(Debug)]
pub struct ExecProcess {
    /// Its host pid.
    pub pid: i32,
    result: OwnedFd,
}

impl ExecProcess {
    /// Waits for the process to end; returns its exit code.
    pub async fn wait(self) -> Result<i32, RuntimeError> {
        let fd = self.result;
        let bytes = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::File::from(fd);
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).map(|_| buf)
        })
        .await
        .map_err(|e| RuntimeError::Exec(e.to_string()))?
        .map_err(|e| RuntimeError::Io("read exec result", e))?;
        let res: ExecResult = serde_json::from_slice(&bytes)
            .map_err(|_| RuntimeError::Exec("exec shim died without a result".into()))?;
        match (res.exit_code, res.error) {
            (Some(code), _) => Ok(code),
            (None, e) => Err(RuntimeError::Exec(e.unwrap_or_default())),
        }
    }
}

/// `/dev/null`, opened once: the stdin of every `exec_sync` (the helper dups it).
fn dev_null() -> Result<RawFd, RuntimeError> {
    static NULL: OnceLock<std::fs::File> = OnceLock::new();
    if let Some(f) = NULL.get() {
        return Ok(f.as_raw_fd());
    }
    let f = std::fs::File::open("/dev/null").map_err(|e| RuntimeError::Io("/dev/null", e))?;
    Ok(NULL.get_or_init(|| f).as_raw_fd())
}

/// The exit code of the exited child behind `pidfd` (128 + signal when signalled), reaping
/// it; `None` while it runs.
fn try_reap(pidfd: BorrowedFd<'_>) -> Result<Option<i32>, RuntimeError> {
    loop {
        match waitid(
            Id::PIDFd(pidfd),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
        ) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Some(128 + sig as i32)),
            Ok(_) => return Ok(None),
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(RuntimeError::Io("waitid", e.into())),
        }
    }
}

/// Waits (without a thread) for a child of this process known by its pidfd, and reaps it:
/// its exit code, 128 + signal when signalled. A child that has already exited (an exec
/// whose output pipes have closed, mostly) is reaped without registering the pidfd.
async fn reap(pidfd: BorrowedFd<'_>) -> Result<i32, RuntimeError> {
    if let Some(code) = try_reap(pidfd)? {
        return Ok(code);
    }
    // SAFETY: the caller keeps the descriptor open for the AsyncFd's life (this call).
    let fd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
        .map_err(|e| RuntimeError::Io("register pidfd", std::io::Error::other(e.to_string())))?;
    loop {
        let mut guard = fd
            .readable()
            .await
            .map_err(|e| RuntimeError::Io("wait pidfd", e))?;
        match try_reap(pidfd)? {
            Some(code) => return Ok(code),
            None => guard.clear_ready(),
        }
    }
}

/// [`reap`] for an owned pidfd (on a task of its own).
async fn reap_owned(pidfd: OwnedFd) -> Result<i32, RuntimeError> {
    reap(pidfd.as_fd()).await
}

/// Reads a pipe to its end without a thread. What is there already (all of it, mostly: an
/// exec's answer comes when it has often exited) is read without registering the pipe with
/// the reactor.
async fn read_pipe(fd: OwnedFd) -> Result<Vec<u8>, RuntimeError> {
    // The read end of a pipe2(O_CLOEXEC) pipe has no other status flags to keep.
    nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
    )
    .map_err(|e| RuntimeError::Io("exec output pipe", e.into()))?;
    let mut buf = Vec::new();
    let mut file = std::fs::File::from(fd);
    let read = |f: &mut std::fs::File, buf: &mut Vec<u8>| loop {
        let mut chunk = [0u8; 4096];
        match f.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(RuntimeError::Io("read exec output", e)),
        }
    };
    if read(&mut file, &mut buf)? {
        return Ok(buf);
    }
    let mut rx = tokio::net::unix::pipe::Receiver::from_file_unchecked(file)
        .map_err(|e| RuntimeError::Io("exec output pipe", e))?;
    rx.read_to_end(&mut buf)
        .await
        .map_err(|e| RuntimeError::Io("read exec output", e))?;
    Ok(buf)
}

/// Pods and containers as the kubelet drives them (the CRI's shape, in-process).
pub trait ContainerRuntime: Send + Sync {
    /// Creates and starts a pod's pause container (new network, IPC and UTS namespaces, the
    /// pod's hostname, in `config.cgroup_parent`); returns the sandbox id.
    fn run_pod_sandbox(
        &self,
        config: &SandboxConfig,
    ) -> impl Future<Output = Result<String, RuntimeError>> + Send;
    /// Stops every container of the sandbox, then the pause container (SIGTERM, `grace`,
    /// SIGKILL).
    fn stop_pod_sandbox(
        &self,
        id: &str,
        grace: Duration,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// Removes every container of the sandbox and the sandbox itself (killing what runs).
    fn remove_pod_sandbox(&self, id: &str)
        -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// The sandbox's state.
    fn sandbox_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<SandboxStatus, RuntimeError>> + Send;
    /// Creates an app container in a sandbox (overlay rootfs over the image layers, joined to
    /// the pause container's namespaces); returns its id. It waits for `start_container`.
    fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
    ) -> impl Future<Output = Result<String, RuntimeError>> + Send;
    /// Starts a created container.
    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// SIGTERM, up to `grace` for it to exit, then SIGKILL.
    fn stop_container(
        &self,
        id: &str,
        grace: Duration,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// Deletes a container (killing it if it still runs), its rootfs and cgroup.
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// One container's state (exit code and OOM kill once exited).
    fn container_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerState, RuntimeError>> + Send;
    /// Every container and sandbox the runtime knows, including those created before a
    /// kubelet restart.
    fn list_containers(
        &self,
    ) -> impl Future<Output = Result<Vec<ContainerState>, RuntimeError>> + Send;
    /// Every container's id, pod uid and status (the PLEG's relist: no configurations).
    fn relist(&self) -> impl Future<Output = Result<Vec<RelistEntry>, RuntimeError>> + Send;
    /// One pod's sandboxes (by `pod_uid`) and the app containers in them.
    fn list_pod_containers(
        &self,
        pod_uid: &str,
    ) -> impl Future<Output = Result<Vec<ContainerState>, RuntimeError>> + Send;
    /// Runs a process in a running container with the given stdio descriptors.
    fn exec(
        &self,
        id: &str,
        config: &ExecConfig,
        stdio: [OwnedFd; 3],
    ) -> impl Future<Output = Result<ExecProcess, RuntimeError>> + Send;
    /// Runs a process to completion and collects its output (CRI `ExecSync`).
    fn exec_sync(
        &self,
        id: &str,
        config: &ExecConfig,
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecOutput, RuntimeError>> + Send;
    /// Connects to a running container's shim to attach to its standard streams
    /// ([`crate::attach`]): the connected socket, before the client's hello.
    fn attach(&self, id: &str) -> impl Future<Output = Result<OwnedFd, RuntimeError>> + Send;
    /// Makes the container's log writer reopen its file after the kubelet rotated it.
    fn reopen_container_log(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn unexpected(r: Response) -> RuntimeError {
    RuntimeError::Unexpected(format!("{r:?}"))
}

impl RuntimeClient {
    async fn simple(&self, req: Request) -> Result<(), RuntimeError> {
        match self.call(&req, &[]).await?.0 {
            Response::Ok => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    async fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        match self
            .call(&Request::State { id: id.to_string() }, &[])
            .await?
            .0
        {
            Response::State { state } => Ok(state),
            r => Err(unexpected(r)),
        }
    }

    async fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        self.simple(Request::Kill {
            id: id.to_string(),
            signal,
        })
        .await
    }

    /// Polls until the container is no longer created/running or `limit` passes.
    async fn wait_stopped(&self, id: &str, limit: Duration) -> Result<bool, RuntimeError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut pause = Duration::from_millis(5);
        loop {
            let st = self.state(id).await?;
            if matches!(
                st.status,
                ContainerStatusKind::Exited | ContainerStatusKind::Unknown
            ) {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let st = self.state(id).await?;
        if matches!(
            st.status,
            ContainerStatusKind::Exited | ContainerStatusKind::Unknown
        ) {
            return Ok(());
        }
        if !grace.is_zero() {
            self.kill(id, libc::SIGTERM).await?;
            if self.wait_stopped(id, grace).await? {
                return Ok(());
            }
        }
        self.kill(id, libc::SIGKILL).await?;
        if self.wait_stopped(id, KILL_WAIT).await? {
            Ok(())
        } else {
            Err(RuntimeError::Helper(format!(
                "container {id} did not die after SIGKILL"
            )))
        }
    }

    async fn containers_of(&self, sandbox: &str) -> Result<Vec<String>, RuntimeError> {
        Ok(self
            .list_containers()
            .await?
            .into_iter()
            .filter(|s| matches!(&s.meta.kind, ContainerKind::App { sandbox_id, .. } if sandbox_id == sandbox))
            .map(|s| s.meta.id)
            .collect())
    }
}

impl ContainerRuntime for RuntimeClient {
    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String, RuntimeError> {
        let id = new_id();
        let kind = ContainerKind::Sandbox {
            config: config.clone(),
        };
        match self
            .call(
                &Request::Create {
                    id: id.clone(),
                    kind,
                },
                &[],
            )
            .await?
            .0
        {
            Response::Created { .. } => {}
            r => return Err(unexpected(r)),
        }
        if let Err(e) = self.simple(Request::Start { id: id.clone() }).await {
            let _ = self
                .simple(Request::Delete {
                    id: id.clone(),
                    force: true,
                })
                .await;
            return Err(e);
        }
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        for c in self.containers_of(id).await? {
            self.stop(&c, grace).await?;
        }
        self.stop(id, grace).await
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        for c in self.containers_of(id).await? {
            self.simple(Request::Delete { id: c, force: true }).await?;
        }
        self.simple(Request::Delete {
            id: id.to_string(),
            force: true,
        })
        .await
    }

    async fn sandbox_status(&self, id: &str) -> Result<SandboxStatus, RuntimeError> {
        let state = self.state(id).await?;
        if !matches!(state.meta.kind, ContainerKind::Sandbox { .. }) {
            return Err(RuntimeError::Invalid(format!("{id} is not a sandbox")));
        }
        let ready = state.status == ContainerStatusKind::Running;
        Ok(SandboxStatus {
            id: id.to_string(),
            ready,
            pid: state.pid,
            netns_path: state
                .pid
                .filter(|_| ready)
                .map(|p| format!("/proc/{p}/ns/net")),
            state,
        })
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let id = new_id();
        let kind = ContainerKind::App {
            sandbox_id: sandbox_id.to_string(),
            config: config.clone(),
        };
        match self
            .call(
                &Request::Create {
                    id: id.clone(),
                    kind,
                },
                &[],
            )
            .await?
            .0
        {
            Response::Created { .. } => Ok(id),
            r => Err(unexpected(r)),
        }
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        self.simple(Request::Start { id: id.to_string() }).await
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        self.stop(id, grace).await
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        self.simple(Request::Delete {
            id: id.to_string(),
            force: true,
        })
        .await
    }

    async fn container_status(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        self.state(id).await
    }

    async fn list_containers(&self) -> Result<Vec<ContainerState>, RuntimeError> {
        match self.call(&Request::List, &[]).await?.0 {
            Response::List { states } => Ok(states),
            r => Err(unexpected(r)),
        }
    }

    async fn relist(&self) -> Result<Vec<RelistEntry>, RuntimeError> {
        match self.call(&Request::Relist, &[]).await?.0 {
            Response::Relisted { containers } => Ok(containers),
            r => Err(unexpected(r)),
        }
    }

    async fn list_pod_containers(
        &self,
        pod_uid: &str,
    ) -> Result<Vec<ContainerState>, RuntimeError> {
        let req = Request::ListPod {
            pod_uid: pod_uid.to_string(),
        };
        match self.call(&req, &[]).await?.0 {
            Response::List { states } => Ok(states),
            r => Err(unexpected(r)),
        }
    }

    async fn exec(
        &self,
        id: &str,
        config: &ExecConfig,
        stdio: [OwnedFd; 3],
    ) -> Result<ExecProcess, RuntimeError> {
        let raw = [
            stdio[0].as_raw_fd(),
            stdio[1].as_raw_fd(),
            stdio[2].as_raw_fd(),
        ];
        let req = Request::Exec {
            id: id.to_string(),
            config: config.clone(),
        };
        let (resp, mut fds) = self.call(&req, &raw).await?;
        drop(stdio);
        match resp {
            Response::ExecStarted { pid } if fds.len() == 1 => Ok(ExecProcess {
                pid,
                result: fds.remove(0),
            }),
            r => Err(unexpected(r)),
        }
    }

    async fn exec_sync(
        &self,
        id: &str,
        config: &ExecConfig,
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let pipe =
            || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Io("pipe", e.into()));
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let raw = [dev_null()?, out_w.as_raw_fd(), err_w.as_raw_fd()];
        let req = Request::ExecDirect {
            id: id.to_string(),
            config: config.clone(),
        };
        let (resp, mut fds) = self.call(&req, &raw).await?;
        drop((out_w, err_w));
        let (pid, error) = match resp {
            Response::ExecDirectStarted { pid, error } if fds.len() == 1 => (pid, error),
            r => return Err(unexpected(r)),
        };
        let pidfd = fds.remove(0);
        if let Some(e) = error {
            let _ = reap(pidfd.as_fd()).await;
            return Err(RuntimeError::Exec(e));
        }
        let run = async {
            let (stdout, stderr) = tokio::try_join!(read_pipe(out_r), read_pipe(err_r))?;
            let code = reap(pidfd.as_fd()).await?;
            Ok::<_, RuntimeError>(ExecOutput {
                stdout,
                stderr,
                exit_code: code,
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                // A task of its own reaps the killed process.
                tokio::spawn(reap_owned(pidfd));
                Err(RuntimeError::Timeout)
            }
        }
    }

    async fn attach(&self, id: &str) -> Result<OwnedFd, RuntimeError> {
        let (resp, mut fds) = self
            .call(&Request::Attach { id: id.to_string() }, &[])
            .await?;
        match resp {
            Response::Attached if fds.len() == 1 => Ok(fds.remove(0)),
            r => Err(unexpected(r)),
        }
    }

    async fn reopen_container_log(&self, id: &str) -> Result<(), RuntimeError> {
        self.simple(Request::ReopenLog { id: id.to_string() }).await
    }
}
