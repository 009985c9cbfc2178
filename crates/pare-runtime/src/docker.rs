//! The `docker` runtime: bollard against the local daemon (`DOCKER_HOST` honoured).
//!
//! Analysis runs (sensor present) get exactly what ptrace and fanotify need: user root so the
//! sensor can trace and then drop to the image user, `SYS_PTRACE` (+ `SYS_ADMIN` for fanotify),
//! seccomp and AppArmor unconfined — never `--privileged`. Verification runs (no sensor) run
//! the image's own command, USER, WORKDIR and ENV with Docker's default security.
//!
//! The trait is synchronous; a private tokio runtime drives bollard. Calls made from inside
//! another tokio runtime are moved to a scoped thread so that `block_on` never nests.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, PortMap};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use pare_trace::ExitInfo;

use crate::cleanup::{self, Teardown};
use crate::{Container, ExecOutput, OUTPUT_DIR, RunSpec, Runtime, RuntimeError, SENSOR_PATH};

mod project;
pub use project::{Attach, Health, Healthcheck};

/// Label put on every container pare creates, so stale ones can be found and removed.
pub const RUN_LABEL: &str = "io.pare.run";
/// Label naming the process that created the container (`HOST:PID:STARTTIME`).
pub const OWNER_LABEL: &str = "io.pare.owner";

struct Shared {
    rt: Option<tokio::runtime::Runtime>,
    docker: Docker,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropping a runtime inside another runtime's async context panics; this never does.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Shared {
    /// Runs a future to completion on the private runtime, from sync code or from inside
    /// another tokio runtime (then on a scoped helper thread).
    fn run<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(rt) = self.rt.as_ref() else {
            unreachable!("runtime is only taken in Drop")
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(|| rt.block_on(fut)).join())
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        } else {
            rt.block_on(fut)
        }
    }
}

/// Whether the daemon runs on this host (pids it reports are ours to signal).
fn daemon_is_local() -> bool {
    std::env::var("DOCKER_HOST").map_or(true, |h| h.is_empty() || h.starts_with("unix://"))
}

fn derr(context: &str, e: bollard::errors::Error) -> RuntimeError {
    use bollard::errors::Error as B;
    if matches!(
        e,
        B::HyperLegacyError { .. }
            | B::IOError { .. }
            | B::HyperResponseError { .. }
            | B::RequestTimeoutError
            | B::SocketNotFoundError(_)
    ) {
        // The daemon went away (or stopped answering): say so, and which daemon, rather
        // than a transport error's own words.
        return RuntimeError::DaemonLost {
            host: daemon_host(),
            context: context.to_string(),
            cause: root_cause(&e),
        };
    }
    RuntimeError::Docker {
        message: format!("{context}: {e}"),
    }
}

/// The daemon pare talks to, as a user would name it.
fn daemon_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// The innermost cause's message (a transport error wraps the one that says what happened).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The Docker daemon runtime.
pub struct DockerRuntime {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime").finish_non_exhaustive()
    }
}

impl DockerRuntime {
    /// Connects (`DOCKER_HOST` or the default socket), negotiates the API version and pings,
    /// all within `timeout`; then removes containers left by dead pare processes
    /// ([`remove_stale`](Self::remove_stale)).
    pub fn connect(timeout: Duration) -> Result<Self, RuntimeError> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_default();
        Self::connect_with_host(&host, timeout)
    }

    /// Like [`connect`](Self::connect) with an explicit host (`unix://…`, `tcp://…`; empty =
    /// the default socket).
    pub fn connect_with_host(host: &str, timeout: Duration) -> Result<Self, RuntimeError> {
        let unavailable = |reason: String| RuntimeError::Unavailable {
            runtime: "docker",
            reason,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pare-docker")
            .enable_all()
            .build()
            .map_err(|e| unavailable(format!("tokio runtime: {e}")))?;
        let docker = if host.is_empty() {
            Docker::connect_with_defaults()
        } else {
            Docker::connect_with_host(host)
        }
        .map_err(|e| unavailable(format!("{host}: {e}")))?;
        let fut = async move {
            let docker = tokio::time::timeout(timeout, docker.negotiate_version())
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(timeout, docker.ping())
                .await
                .map_err(|_| format!("no ping answer within {timeout:?}"))?
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(docker)
        };
        let docker = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(|| rt.block_on(fut)).join())
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        } else {
            rt.block_on(fut)
        }
        .map_err(unavailable)?;
        let this = Self {
            shared: Arc::new(Shared {
                rt: Some(rt),
                docker,
            }),
        };
        // Best effort: containers that SIGKILLed pare processes on this host left behind.
        let _ = this.remove_stale(false);
        Ok(this)
    }

    /// Removes containers with the `io.pare.run` label whose creating process (on this host)
    /// is gone, e.g. after a SIGKILL. Containers of live pare processes are kept; with
    /// `all`, every labelled container goes. Returns how many were removed.
    pub fn remove_stale(&self, all: bool) -> Result<usize, RuntimeError> {
        let sh = &self.shared;
        let list = sh.run(async {
            let mut filters = HashMap::new();
            filters.insert("label".to_string(), vec![format!("{RUN_LABEL}=1")]);
            let opts = ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build();
            sh.docker
                .list_containers(Some(opts))
                .await
                .map_err(|e| derr("list containers", e))
        })?;
        let mut n = 0;
        for c in list {
            let Some(id) = c.id else { continue };
            let owner = c
                .labels
                .as_ref()
                .and_then(|l| l.get(OWNER_LABEL))
                .map_or("", String::as_str);
            if !all && crate::owner_alive(owner) != Some(false) {
                continue;
            }
            sh.run(async {
                let opts = RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build();
                match sh.docker.remove_container(&id, Some(opts)).await {
                    Ok(()) => Ok(()),
                    Err(e) if is_not_found(&e) => Ok(()),
                    Err(e) => Err(derr(&format!("remove container {id}"), e)),
                }
            })?;
            n += 1;
        }
        Ok(n)
    }

    /// IDs of all containers (running or not) with the `io.pare.run` label.
    pub fn list_labelled(&self) -> Result<Vec<String>, RuntimeError> {
        let sh = &self.shared;
        sh.run(async {
            let mut filters = HashMap::new();
            filters.insert("label".to_string(), vec![format!("{RUN_LABEL}=1")]);
            let opts = ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build();
            let list = sh
                .docker
                .list_containers(Some(opts))
                .await
                .map_err(|e| derr("list containers", e))?;
            Ok(list.into_iter().filter_map(|c| c.id).collect())
        })
    }
}

/// The container configuration for `spec` (pure: unit-tested).
pub(crate) fn create_body(
    spec: &RunSpec,
    image: &str,
) -> Result<ContainerCreateBody, RuntimeError> {
    let mut labels = HashMap::new();
    labels.insert(RUN_LABEL.to_string(), "1".to_string());
    labels.insert(OWNER_LABEL.to_string(), crate::owner_token());
    let mut host = HostConfig {
        privileged: Some(false),
        ..Default::default()
    };
    let mut body = ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some(labels),
        env: if spec.env.is_empty() {
            None
        } else {
            Some(spec.env.clone())
        },
        tty: Some(false),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        ..Default::default()
    };
    if !spec.hostname.is_empty() {
        body.hostname = Some(spec.hostname.clone());
    }
    match &spec.sensor {
        Some(sensor) => {
            let bin = absolute(&sensor.binary)?;
            let out = absolute(&sensor.output_dir)?;
            host.binds = Some(vec![
                format!("{bin}:{SENSOR_PATH}:ro"),
                format!("{out}:{OUTPUT_DIR}:rw"),
            ]);
            let mut caps = vec!["SYS_PTRACE".to_string()];
            if sensor.fanotify {
                caps.push("SYS_ADMIN".to_string());
            }
            host.cap_add = Some(caps);
            host.security_opt = Some(vec![
                "seccomp=unconfined".into(),
                "apparmor=unconfined".into(),
            ]);
            body.user = Some("0".to_string());
            // The sensor enters WORKDIR itself; setting it here too makes `exec` start there.
            if !spec.workdir.is_empty() {
                body.working_dir = Some(spec.workdir.clone());
            }
            body.entrypoint = Some(sensor_argv(spec));
            body.cmd = Some(Vec::new());
        }
        None => {
            if let Some((first, rest)) = spec.command.split_first() {
                body.entrypoint = Some(vec![first.clone()]);
                body.cmd = Some(rest.to_vec());
            }
            if !spec.user.is_empty() {
                body.user = Some(spec.user.clone());
            }
            if !spec.workdir.is_empty() {
                body.working_dir = Some(spec.workdir.clone());
            }
        }
    }
    if !spec.ports.is_empty() {
        let mut bindings: PortMap = HashMap::new();
        let mut exposed = Vec::new();
        for p in &spec.ports {
            let key = format!("{p}/tcp");
            exposed.push(key.clone());
            bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            );
        }
        body.exposed_ports = Some(exposed);
        host.port_bindings = Some(bindings);
    }
    body.host_config = Some(host);
    Ok(body)
}

/// The sensor's command line for a run: see [`crate::sensor_command`].
pub(crate) fn sensor_argv(spec: &RunSpec) -> Vec<String> {
    crate::sensor_command(
        OUTPUT_DIR,
        &spec.user,
        &spec.workdir,
        spec.sensor.as_ref().is_none_or(|s| s.fanotify),
        &spec.env,
        &spec.command,
    )
}

fn absolute(p: &Path) -> Result<String, RuntimeError> {
    let abs = std::fs::canonicalize(p).map_err(|source| RuntimeError::Io {
        path: p.to_path_buf(),
        source,
    })?;
    abs.into_os_string()
        .into_string()
        .map_err(|p| RuntimeError::Docker {
            message: format!(
                "{}: path is not UTF-8, cannot bind-mount it",
                Path::new(&p).display()
            ),
        })
}

/// Reads the host address of container port `port` from an inspect `NetworkSettings.Ports`.
/// An unspecified host IP (`0.0.0.0`, `::`, empty) becomes 127.0.0.1.
pub(crate) fn parse_port_binding(ports: &PortMap, port: u16) -> Option<SocketAddr> {
    let list = ports.get(&format!("{port}/tcp"))?.as_ref()?;
    // Prefer an explicit IPv4 address, then an unspecified one (reachable on loopback), then v6.
    list.iter()
        .filter_map(|b| {
            let hp = b
                .host_port
                .as_deref()?
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)?;
            let (rank, ip) = match b.host_ip.as_deref().map(str::parse::<IpAddr>) {
                Some(Ok(ip)) if ip.is_unspecified() => (1, IpAddr::V4(Ipv4Addr::LOCALHOST)),
                Some(Ok(ip)) if ip.is_ipv4() => (0, ip),
                Some(Ok(ip)) => (2, ip),
                _ => (1, IpAddr::V4(Ipv4Addr::LOCALHOST)),
            };
            Some((rank, SocketAddr::new(ip, hp)))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, addr)| addr)
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn start(&self, spec: &RunSpec) -> Result<Box<dyn Container>, RuntimeError> {
        Ok(Box::new(self.start_container(spec)?))
    }
}

impl DockerRuntime {
    /// [`Runtime::start`] returning the concrete container (for its [`DockerContainer::id`]).
    pub fn start_container(&self, spec: &RunSpec) -> Result<DockerContainer, RuntimeError> {
        self.start_attached(spec, &Attach::default())
    }

    /// [`start_container`](Self::start_container) joined to a project: networks with DNS
    /// aliases, mounts, healthcheck, name (see [`Attach`]).
    pub fn start_attached(
        &self,
        spec: &RunSpec,
        attach: &Attach,
    ) -> Result<DockerContainer, RuntimeError> {
        let image = spec
            .daemon_image
            .as_deref()
            .ok_or_else(|| RuntimeError::Docker {
                message: "the docker runtime needs RunSpec.daemon_image".into(),
            })?;
        let mut body = create_body(spec, image)?;
        project::apply(&mut body, attach);
        let name = attach
            .name
            .clone()
            .unwrap_or_else(|| format!("pare-{}", crate::random_hex(12)));
        let sh = self.shared.clone();
        // A Ctrl-C while the create request is in flight must not leak the container the
        // daemon is about to make: until it is registered below, a pending entry removes it
        // by name once the request has returned.
        let pending = Arc::new(PendingCreate {
            shared: sh.clone(),
            name: name.clone(),
            in_flight: AtomicBool::new(true),
        });
        let pending_td: Arc<dyn Teardown> = pending.clone();
        let pending_key = cleanup::register(&pending_td);
        // Registered before this check: a clean-up that begins later sees the pending entry.
        if cleanup::closing() {
            cleanup::deregister(pending_key);
            return Err(RuntimeError::Docker {
                message: format!("interrupted: not creating container {name}"),
            });
        }
        let created = sh.run(async {
            let opts = CreateContainerOptionsBuilder::new().name(&name).build();
            let created = sh
                .docker
                .create_container(Some(opts), body)
                .await
                .map_err(|e| derr(&format!("create container {name} from {image}"), e))?;
            Ok::<_, RuntimeError>(created.id)
        });
        pending.in_flight.store(false, Ordering::SeqCst);
        let id = match created {
            Ok(id) => id,
            Err(e) => {
                cleanup::deregister(pending_key);
                return Err(e);
            }
        };
        let inner = Arc::new(DockerInner {
            shared: sh.clone(),
            id: id.clone(),
            name: name.clone(),
            done: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            reg_key: Mutex::new(None),
            exit: Mutex::new(None),
            sent: Mutex::new(Vec::new()),
        });
        let td: Arc<dyn Teardown> = inner.clone();
        *inner.reg_key.lock().unwrap_or_else(|e| e.into_inner()) = Some(cleanup::register(&td));
        cleanup::deregister(pending_key);
        let container = DockerContainer {
            inner,
            endpoints: HashMap::new(),
            direct: None,
            direct_works: AtomicU8::new(DIRECT_UNKNOWN),
        };
        for (net, aliases) in attach.networks.iter().skip(1) {
            self.connect_network(&id, net, aliases)?;
        }
        let started = sh.run(async {
            sh.docker
                .start_container(&id, None)
                .await
                .map_err(|e| derr(&format!("start container {name}"), e))?;
            sh.docker
                .inspect_container(&id, None)
                .await
                .map_err(|e| derr(&format!("inspect container {name}"), e))
        });
        // On error `container` drops here and removes what was created.
        let info = started?;
        let mut container = container;
        if let Some(net) = info.network_settings {
            if daemon_is_local() {
                container.direct = container_ip(&net);
            }
            if let Some(ports) = net.ports {
                for p in &spec.ports {
                    if let Some(addr) = parse_port_binding(&ports, *p) {
                        container.endpoints.insert(*p, addr);
                    }
                }
            }
        }
        Ok(container)
    }
}

struct DockerInner {
    shared: Arc<Shared>,
    id: String,
    name: String,
    done: AtomicBool,
    /// Set when the removal request has returned.
    removed: AtomicBool,
    reg_key: Mutex<Option<u64>>,
    exit: Mutex<Option<ExitInfo>>,
    /// Signals sent by `stop` (number, name): an exit code of 128+number is reported as that
    /// signal, as the embedded runtime does.
    sent: Mutex<Vec<(i32, &'static str)>>,
}

impl DockerInner {
    fn remove(&self) -> Result<(), RuntimeError> {
        if self.done.swap(true, Ordering::SeqCst) {
            // Another thread is removing it: wait (bounded) for that to finish, so that a
            // Ctrl-C exit does not cut an in-flight removal short and leave the container.
            let t = Instant::now();
            while !self.removed.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return Ok(());
        }
        let sh = &self.shared;
        let r = sh.run(async {
            let opts = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match sh.docker.remove_container(&self.id, Some(opts)).await {
                Ok(()) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(derr(&format!("remove container {}", self.name), e)),
            }
        });
        self.removed.store(true, Ordering::SeqCst);
        // Deregistered only now: a Ctrl-C during the request still finds it, and waits above.
        if let Some(k) = self
            .reg_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            cleanup::deregister(k);
        }
        r
    }

    /// The exit status when the container is no longer running.
    fn poll_exit(&self) -> Result<Option<ExitInfo>, RuntimeError> {
        if let Some(e) = self.exit.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(Some(e));
        }
        let sh = &self.shared;
        let info = sh
            .run(sh.docker.inspect_container(&self.id, None))
            .map_err(|e| derr(&format!("inspect container {}", self.name), e))?;
        let state = info.state.unwrap_or_default();
        if state.running.unwrap_or(false) || state.restarting.unwrap_or(false) {
            return Ok(None);
        }
        let code = state.exit_code.unwrap_or(-1) as i32;
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let signal = sent
            .iter()
            .find(|(n, _)| code == 128 + n)
            .map(|(_, name)| name.to_string());
        let exit = ExitInfo { code, signal };
        *self.exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit.clone());
        Ok(Some(exit))
    }

    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.poll_exit()? {
                return Ok(Some(e));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(25)));
        }
    }

    fn kill(&self, signal: &'static str, number: i32) -> Result<(), RuntimeError> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((number, signal));
        let sh = &self.shared;
        sh.run(async {
            let opts = KillContainerOptionsBuilder::new().signal(signal).build();
            match sh.docker.kill_container(&self.id, Some(opts)).await {
                Ok(()) => Ok(()),
                // 409: not running any more.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409 | 404,
                    ..
                }) => Ok(()),
                Err(e) => Err(derr(&format!("kill {signal} container {}", self.name), e)),
            }
        })
    }
}

/// A container whose create request is in flight (see `start_container`).
struct PendingCreate {
    shared: Arc<Shared>,
    name: String,
    in_flight: AtomicBool,
}

impl Teardown for PendingCreate {
    fn teardown(&self) {
        // Wait (bounded) for the daemon's answer, then remove whatever it made under the name.
        let t = Instant::now();
        while self.in_flight.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let sh = &self.shared;
        let _ = sh.run(async {
            let opts = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            sh.docker.remove_container(&self.name, Some(opts)).await
        });
    }
}

impl Teardown for DockerInner {
    fn teardown(&self) {
        let _ = self.remove();
    }
}

/// The container's own address on its first network with one (a local daemon's bridge is
/// routable from the host, no proxy in between).
fn container_ip(net: &bollard::models::NetworkSettings) -> Option<IpAddr> {
    net.networks
        .iter()
        .flat_map(|m| m.values())
        .filter_map(|n| n.ip_address.as_deref())
        .find_map(|ip| ip.parse::<IpAddr>().ok())
}

const DIRECT_UNKNOWN: u8 = 0;
const DIRECT_YES: u8 = 1;
const DIRECT_NO: u8 = 2;

/// A container started by [`DockerRuntime`].
pub struct DockerContainer {
    inner: Arc<DockerInner>,
    endpoints: HashMap<u16, SocketAddr>,
    /// The container's own IP (local daemon only), for [`Container::listening`].
    direct: Option<IpAddr>,
    /// Whether that IP answered from here: unknown until the first try; an address that
    /// neither accepts nor refuses (rootless docker, another netns) is not tried again.
    direct_works: AtomicU8,
}

impl DockerContainer {
    /// The daemon's container ID.
    pub fn id(&self) -> &str {
        &self.inner.id
    }
}

impl Container for DockerContainer {
    fn endpoint(&self, port: u16) -> Option<SocketAddr> {
        self.endpoints.get(&port).copied()
    }

    fn listening(&self, port: u16) -> Option<bool> {
        let ip = self.direct?;
        let state = self.direct_works.load(Ordering::Relaxed);
        if state == DIRECT_NO {
            return None;
        }
        // A routable container answers a connect at once: accepted or refused (RST). A connect
        // that times out is tried again before it counts: right after a container starts, or
        // while the host still holds a stale neighbour entry for a reused address, the first
        // SYNs can be lost, and the fallback (a connect through docker's proxy) cannot tell a
        // closed port from a slow proxy. Only an address that never answered is given up on.
        let (tries, timeout) = if state == DIRECT_YES {
            (3, Duration::from_millis(1000))
        } else {
            (6, Duration::from_millis(400))
        };
        let addr = SocketAddr::new(ip, port);
        let answer = (0..tries).find_map(|_| {
            match std::net::TcpStream::connect_timeout(&addr, timeout) {
                Ok(_) => Some(Some(true)),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(Some(false)),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => None,
                // Unreachable network or host: not routable from here, no use retrying.
                Err(_) => Some(None),
            }
        });
        let answer = answer.flatten();
        if answer.is_some() {
            self.direct_works.store(DIRECT_YES, Ordering::Relaxed);
        } else if state != DIRECT_YES {
            self.direct_works.store(DIRECT_NO, Ordering::Relaxed);
        }
        answer
    }

    fn exec(&self, argv: &[String], timeout: Duration) -> Result<ExecOutput, RuntimeError> {
        let inner = &self.inner;
        let sh = &inner.shared;
        let name = &inner.name;
        sh.run(async {
            let opts = CreateExecOptions::<String> {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(argv.to_vec()),
                ..Default::default()
            };
            let created = sh
                .docker
                .create_exec(&inner.id, opts)
                .await
                .map_err(|e| derr(&format!("exec in {name}"), e))?;
            let collect = async {
                let mut out = ExecOutput::default();
                match sh
                    .docker
                    .start_exec(&created.id, None)
                    .await
                    .map_err(|e| derr(&format!("exec in {name}"), e))?
                {
                    StartExecResults::Attached { mut output, .. } => {
                        while let Some(chunk) = output.next().await {
                            match chunk.map_err(|e| derr(&format!("exec output in {name}"), e))? {
                                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                                    out.stdout.extend_from_slice(&message)
                                }
                                LogOutput::StdErr { message } => {
                                    out.stderr.extend_from_slice(&message)
                                }
                                LogOutput::StdIn { .. } => {}
                            }
                        }
                    }
                    StartExecResults::Detached => {}
                }
                // The stream ends when the process exits; the exit code may lag a moment.
                for _ in 0..200 {
                    let i = sh
                        .docker
                        .inspect_exec(&created.id)
                        .await
                        .map_err(|e| derr(&format!("exec in {name}"), e))?;
                    if !i.running.unwrap_or(false) {
                        out.exit_code = i.exit_code.unwrap_or(-1) as i32;
                        return Ok(out);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(RuntimeError::Docker {
                    message: format!("exec in {name}: no exit code after output ended"),
                })
            };
            match tokio::time::timeout(timeout, collect).await {
                Ok(r) => r,
                Err(_) => {
                    // Docker has no "kill exec": with a local daemon the exec's host pid is ours
                    // to kill; otherwise it runs on until the container is removed.
                    if daemon_is_local() {
                        if let Ok(i) = sh.docker.inspect_exec(&created.id).await {
                            if let Some(pid) =
                                i.pid.filter(|&p| p > 1).and_then(|p| i32::try_from(p).ok())
                            {
                                let _ = nix::sys::signal::kill(
                                    nix::unistd::Pid::from_raw(pid),
                                    nix::sys::signal::Signal::SIGKILL,
                                );
                            }
                        }
                    }
                    Err(RuntimeError::Docker {
                        message: format!(
                            "exec {:?} in {name}: timed out after {timeout:?}",
                            argv.join(" ")
                        ),
                    })
                }
            }
        })
    }

    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        self.inner.wait(timeout)
    }

    fn stop(&self, grace: Duration) -> Result<ExitInfo, RuntimeError> {
        if let Some(e) = self.inner.poll_exit()? {
            return Ok(e);
        }
        self.inner.kill("SIGTERM", 15)?;
        if let Some(e) = self.inner.wait(grace)? {
            return Ok(e);
        }
        self.inner.kill("SIGKILL", 9)?;
        self.inner
            .wait(Duration::from_secs(30))?
            .ok_or_else(|| RuntimeError::Docker {
                message: format!(
                    "container {} still running 30s after SIGKILL",
                    self.inner.name
                ),
            })
    }

    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
        let inner = &self.inner;
        let sh = &inner.shared;
        sh.run(async {
            let opts = LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(false)
                .build();
            let mut stream = sh.docker.logs(&inner.id, Some(opts));
            let (mut out, mut err) = (Vec::new(), Vec::new());
            while let Some(chunk) = stream.next().await {
                match chunk.map_err(|e| derr(&format!("logs of {}", inner.name), e))? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        out.extend_from_slice(&message)
                    }
                    LogOutput::StdErr { message } => err.extend_from_slice(&message),
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok((out, err))
        })
    }

    fn cleanup(&self) -> Result<(), RuntimeError> {
        self.inner.remove()
    }
}

impl Drop for DockerContainer {
    fn drop(&mut self) {
        let _ = self.inner.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SensorSpec;

    fn spec() -> RunSpec {
        RunSpec {
            daemon_image: Some("img".into()),
            rootfs: None,
            command: vec!["python3".into(), "-m".into(), "http.server".into()],
            env: vec!["A=1".into()],
            user: "app".into(),
            workdir: "/srv".into(),
            ports: vec![8000],
            sensor: None,
            hostname: "h".into(),
        }
    }

    #[test]
    fn port_binding_parsing() {
        let mut m: PortMap = HashMap::new();
        m.insert(
            "8000/tcp".into(),
            Some(vec![
                PortBinding {
                    host_ip: Some("::".into()),
                    host_port: Some("49154".into()),
                },
                PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some("49153".into()),
                },
            ]),
        );
        m.insert("9000/tcp".into(), None);
        m.insert(
            "9001/tcp".into(),
            Some(vec![PortBinding {
                host_ip: Some("0.0.0.0".into()),
                host_port: Some("4000".into()),
            }]),
        );
        m.insert(
            "9002/tcp".into(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("garbage".into()),
            }]),
        );
        assert_eq!(
            parse_port_binding(&m, 8000),
            Some("127.0.0.1:49153".parse().unwrap())
        );
        assert_eq!(parse_port_binding(&m, 9000), None);
        assert_eq!(
            parse_port_binding(&m, 9001),
            Some("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(parse_port_binding(&m, 9002), None);
        assert_eq!(parse_port_binding(&m, 1), None);
    }

    #[test]
    fn plain_run_keeps_image_user_and_default_security() {
        let b = create_body(&spec(), "img").unwrap();
        assert_eq!(b.entrypoint, Some(vec!["python3".to_string()]));
        assert_eq!(
            b.cmd,
            Some(vec!["-m".to_string(), "http.server".to_string()])
        );
        assert_eq!(b.user.as_deref(), Some("app"));
        assert_eq!(b.working_dir.as_deref(), Some("/srv"));
        assert_eq!(
            b.labels
                .as_ref()
                .unwrap()
                .get(RUN_LABEL)
                .map(String::as_str),
            Some("1")
        );
        let owner = b.labels.as_ref().unwrap().get(OWNER_LABEL).unwrap();
        assert_eq!(crate::owner_alive(owner), Some(true));
        let h = b.host_config.unwrap();
        assert_eq!(h.privileged, Some(false));
        assert!(h.cap_add.is_none() && h.security_opt.is_none() && h.binds.is_none());
        let pb = h.port_bindings.unwrap();
        let b8000 = pb.get("8000/tcp").unwrap().as_ref().unwrap();
        assert_eq!(b8000[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(b8000[0].host_port.as_deref(), Some(""));
    }

    #[test]
    fn sensor_run_is_root_with_explicit_caps_never_privileged() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("sensor");
        std::fs::write(&bin, b"x").unwrap();
        let mut s = spec();
        s.sensor = Some(SensorSpec {
            binary: bin.clone(),
            output_dir: dir.path().to_path_buf(),
            fanotify: false,
        });
        let b = create_body(&s, "img").unwrap();
        assert_eq!(b.user.as_deref(), Some("0"));
        assert_eq!(
            b.entrypoint.unwrap(),
            [
                SENSOR_PATH,
                "--output",
                OUTPUT_DIR,
                "--user",
                "app",
                "--workdir",
                "/srv",
                "--no-fanotify",
                // The image's ENV sets no HOME: the app gets its user's (issue 8).
                "--home-from-user",
                "--",
                "python3",
                "-m",
                "http.server"
            ]
        );
        assert_eq!(b.cmd, Some(vec![]));
        let h = b.host_config.unwrap();
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.cap_add, Some(vec!["SYS_PTRACE".to_string()]));
        assert_eq!(
            h.security_opt.unwrap(),
            ["seccomp=unconfined", "apparmor=unconfined"]
        );
        let binds = h.binds.unwrap();
        assert!(
            binds[0].ends_with(&format!("/sensor:{SENSOR_PATH}:ro")),
            "{binds:?}"
        );

        s.sensor.as_mut().unwrap().fanotify = true;
        let b = create_body(&s, "img").unwrap();
        assert!(!b.entrypoint.unwrap().contains(&"--no-fanotify".to_string()));
        assert_eq!(
            b.host_config.unwrap().cap_add.unwrap(),
            ["SYS_PTRACE", "SYS_ADMIN"]
        );
    }

    #[test]
    fn missing_sensor_binary_names_the_path() {
        let mut s = spec();
        s.sensor = Some(SensorSpec {
            binary: "/nonexistent/sensor".into(),
            output_dir: "/tmp".into(),
            fanotify: true,
        });
        let err = create_body(&s, "img").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/sensor"), "{err}");
    }
}
