//! Runtimes run an image, usually with the pare sensor as PID 1, and give the probes a way in.
//!
//! Two implementations sit behind [`Runtime`]: `docker` (bollard; explicit caps, never
//! `--privileged`) and `embedded` (new namespaces on this host, no daemon). Both hand the caller
//! host-side [`SocketAddr`]s for container ports, so probes never care which one runs.
//!
//! The sensor contract (see `pare-sensor`): the static binary is mounted read-only at
//! [`SENSOR_PATH`], the output directory at [`OUTPUT_DIR`], and the container runs
//! `SENSOR_PATH --output OUTPUT_DIR [--user USER] [--workdir DIR] [--no-fanotify]
//! [--home-from-user] -- CMD...`
//! with the image's ENV. On SIGTERM the sensor forwards it to the app, waits, and writes
//! `OUTPUT_DIR/sensor.json` before exiting with the app's code.
//!
//! Using it:
//! * [`detect`]`(None, &cancel)` picks docker when a daemon answers within 1.5 s, else
//!   embedded; `Some(`[`RuntimeKind`]`)` forces one (the CLI's `--runtime`). Every runtime is
//!   made with the program's [`Cancel`] and registers its containers on it.
//! * [`RunSpec::env`] should be the image's full ENV: docker merges it over the image's, the
//!   embedded runtime uses exactly it (plus Docker's defaults PATH, HOSTNAME, HOME).
//! * Both runtimes behave alike: same exit codes (128+N with the signal's name when `stop`
//!   sent N), `exec` runs as root under the sensor and as the image user otherwise, ports are
//!   reached through 127.0.0.1 endpoints. `tests/examples.rs` checks that the sensor records
//!   the same files in both on the `pare-example/*` images.
//! * Cleanup: every container is removed on `cleanup()`/Drop. The library installs no signal
//!   handler and never exits: the program owns the signals and, on Ctrl-C, calls
//!   [`Cancel::cleanup`] (its registered hooks, the live containers, temp dirs) on the
//!   [`Cancel`] it passed down: every runtime is made with that token and registers its
//!   containers on it, so no table of containers is process-wide. After a
//!   SIGKILL, embedded sandboxes die with the process (lifeline pipe) and
//!   [`EmbeddedRuntime::remove_stale`] (run by `new`) / [`DockerRuntime::remove_stale`] sweep
//!   what dead pare processes left.
//!
//! Tests needing root or dockerd are `#[ignore]`d: `cargo test -p pare-runtime -- --ignored
//! --test-threads 1` (set `PARE_SENSOR` to a static `pare-sensor` build for the sensor runs).

#![deny(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pare_trace::ExitInfo;

mod cancel;
mod cleanup;
pub mod deferred;
pub mod docker;
pub mod embedded;
mod stale;

pub use cancel::{Cancel, CancelHook, ProceedWait, TempDir};
pub use docker::{
    Attach, CreatedContainer, DockerContainer, DockerRuntime, Health, Healthcheck, OWNER_LABEL,
    RUN_LABEL,
};
pub use embedded::{EmbeddedContainer, EmbeddedRuntime};
pub use stale::{OWNER_FILE, mark_owned, remove_stale_dirs};

/// Where the sensor binary is mounted inside the container.
pub const SENSOR_PATH: &str = "/.pare/sensor";
/// Where the sensor writes `sensor.json` inside the container.
pub const OUTPUT_DIR: &str = "/.pare/out";

/// The sensor's command line inside a container:
/// `SENSOR_PATH --output OUTPUT [--user USER] [--workdir DIR] [--no-fanotify]
/// [--home-from-user] -- CMD...`. Empty `user`/`workdir` are left out; `--home-from-user`
/// is added when `env` (the image's ENV) sets no HOME, so that the app gets the HOME of its
/// user as under `docker run`, not the root's HOME the sensor was started with. One place
/// for the sensor's CLI: the runtimes start the app with it, and `pare profile` wraps exec
/// probes in it.
pub fn sensor_command(
    output: &str,
    user: &str,
    workdir: &str,
    fanotify: bool,
    env: &[String],
    cmd: &[String],
) -> Vec<String> {
    let mut argv = vec![
        SENSOR_PATH.to_string(),
        "--output".to_string(),
        output.to_string(),
    ];
    if !user.is_empty() {
        argv.extend(["--user".to_string(), user.to_string()]);
    }
    if !workdir.is_empty() {
        argv.extend(["--workdir".to_string(), workdir.to_string()]);
    }
    if !fanotify {
        argv.push("--no-fanotify".to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        argv.push("--home-from-user".to_string());
    }
    argv.push("--".to_string());
    argv.extend(cmd.iter().cloned());
    argv
}

/// What a container starts from. Each runtime runs one kind and refuses the other with
/// [`RuntimeError::UnsupportedSource`]: the caller picks the kind for the runtime it chose
/// (by [`Runtime::name`]), so a spec never carries a source that no runtime reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSource {
    /// For the docker runtime: the image name or ID as the daemon knows it.
    Daemon(String),
    /// For the embedded runtime: a directory holding the image's extracted root filesystem.
    /// The runtime never writes into it (it mounts an overlay or copies as needed).
    Rootfs(PathBuf),
}

impl RunSource {
    /// `daemon image` or `root filesystem`: the kind, as errors name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Daemon(_) => "daemon image",
            Self::Rootfs(_) => "root filesystem",
        }
    }
}

impl std::fmt::Display for RunSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Daemon(name) => write!(f, "{} {name}", self.kind()),
            Self::Rootfs(dir) => write!(f, "{} {}", self.kind(), dir.display()),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The image to start from: a daemon image (docker) or a root filesystem (embedded).
    pub source: RunSource,
    /// ENTRYPOINT + CMD, already combined.
    pub command: Vec<String>,
    /// `KEY=VALUE` environment.
    pub env: Vec<String>,
    /// The image's USER (name, uid, or uid:gid); empty for root.
    pub user: String,
    /// The image's WORKDIR; empty for `/`.
    pub workdir: String,
    /// Container TCP ports to make reachable.
    pub ports: Vec<u16>,
    /// Run under the sensor (`Some`) or plainly (`None`, used by verification).
    pub sensor: Option<SensorSpec>,
    /// Container hostname.
    pub hostname: String,
}

/// How to run the sensor.
#[derive(Debug, Clone)]
pub struct SensorSpec {
    /// Host path of the static `pare-sensor` binary.
    pub binary: PathBuf,
    /// Host directory that receives `sensor.json`.
    pub output_dir: PathBuf,
    /// Try fanotify in addition to ptrace (needs CAP_SYS_ADMIN).
    pub fanotify: bool,
}

/// Output of a command run inside the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// The command's exit status; 128+N when killed by signal N, -1 (docker) or 255
    /// (embedded) when the runtime could not learn it. A timeout is an error, not a code.
    pub exit_code: i32,
    /// Everything the command wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the command wrote to stderr.
    pub stderr: Vec<u8>,
}

/// Errors from a runtime. Variants name the container, image or path involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The Docker daemon answered a request with an error (image missing, create/start
    /// refused, exec failed), or a container spec could not be turned into a request.
    #[error("docker: {message}")]
    Docker {
        /// What is wrong, in words, naming the container or path (`exec in NAME: no exit
        /// code after output ended`).
        message: String,
    },
    /// A request to the Docker daemon failed (image missing, create/start refused, exec
    /// failed) while the daemon itself still answers.
    #[error("docker: {context}")]
    DockerApi {
        /// What was being done (`create container NAME`).
        context: String,
        /// The daemon's or client's error.
        #[source]
        source: pare_docker::bollard::errors::Error,
    },
    /// The Docker daemon went away or stopped answering mid-run (connection refused or
    /// reset, timeout); its containers are swept by the next run's `remove_stale`.
    #[error(
        "the docker daemon at {host} stopped answering during {context} ({cause}); is dockerd running? Containers pare started there are removed by its next run"
    )]
    DaemonLost {
        /// The daemon's address, as `DOCKER_HOST` or the default socket.
        host: String,
        /// What was being done when it stopped answering.
        context: String,
        /// The transport's innermost error, on one line.
        cause: String,
    },
    /// A host file or directory the runtime needs (rootfs, sensor binary, output or temp
    /// dir, a bind-mount source) could not be read, created or resolved.
    #[error("{path}")]
    Io {
        /// The host path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The embedded runtime refused or failed a step on the host side: a spec it cannot run
    /// (empty command, overlay options it cannot express), fork/pipe, a port
    /// forwarder, an exec into an exited container or past its timeout, a sandbox that
    /// survives SIGKILL, or an interrupt. Failures inside a sandbox process are
    /// [`RuntimeError::Setup`].
    #[error("embedded runtime: {message}")]
    Embedded {
        /// What failed, in words, naming the container (`NAME: fork`).
        message: String,
        /// The operating system's error, when a system call failed.
        #[source]
        source: Option<std::io::Error>,
    },
    /// A sandbox process of the embedded runtime (keeper, init, exec helper) failed.
    #[error("embedded runtime: {container}: {during}{error}")]
    Setup {
        /// The sandbox's name.
        container: String,
        /// The step that was running (namespace set-up, mounts, exec of the command…).
        during: embedded::SetupPhase,
        /// The failing call and its errno, as reported back over the setup pipe.
        error: embedded::SetupError,
    },
    /// The spec's [`RunSource`] is of the kind this runtime does not run: docker runs
    /// daemon images, the embedded runtime root filesystems.
    #[error("the {runtime} runtime cannot run a {given}")]
    UnsupportedSource {
        /// `docker` or `embedded`.
        runtime: &'static str,
        /// The source it was given.
        given: RunSource,
    },
    /// The chosen runtime cannot run here: no Docker daemon answered the ping, the embedded
    /// runtime lacks root or kernel features, or `--runtime` named neither.
    #[error("runtime {runtime} is not available: {reason}")]
    Unavailable {
        /// `docker`, `embedded`, or `unknown` for an unrecognised name.
        runtime: &'static str,
        /// Why, including the other runtime's reason when [`detect`] tried both.
        reason: String,
    },
}

/// A runtime that can start containers.
pub trait Runtime: Send + Sync {
    /// `docker` or `embedded`.
    fn name(&self) -> &'static str;
    /// Starts `spec` and returns once the main process runs (under the sensor when
    /// `spec.sensor` is set) and the requested ports have host endpoints. The container is
    /// registered on the runtime's [`Cancel`] until it is cleaned up.
    fn start(&self, spec: &RunSpec) -> Result<Box<dyn Container>, RuntimeError>;
}

/// A started container. Dropping it must clean up (container, mounts, namespaces, temp dirs).
pub trait Container: Send + Sync {
    /// The host address that reaches container port `port`, if it was requested in the spec.
    fn endpoint(&self, port: u16) -> Option<SocketAddr>;
    /// Whether something in the container accepts connections on `port`, asked without a
    /// proxy in between (docker: the container's own address; embedded: from inside its
    /// network namespace), so a refused connection answers at once. `None` when the runtime
    /// cannot ask that way (a remote daemon, an unroutable network): callers then connect to
    /// [`endpoint`](Self::endpoint) and watch whether the proxy hangs up.
    fn listening(&self, _port: u16) -> Option<bool> {
        None
    }
    /// Runs a command inside the container (not traced).
    fn exec(&self, argv: &[String], timeout: Duration) -> Result<ExecOutput, RuntimeError>;
    /// Waits up to `timeout` for the main process to exit by itself.
    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError>;
    /// Sends SIGTERM (then SIGKILL after `grace`) and waits for the exit.
    fn stop(&self, grace: Duration) -> Result<ExitInfo, RuntimeError>;
    /// stdout and stderr of the main process so far.
    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError>;
    /// Removes everything; idempotent. Called by Drop too.
    fn cleanup(&self) -> Result<(), RuntimeError>;
}

/// A shared runtime handle.
pub type SharedRuntime = Arc<dyn Runtime>;

/// Which runtime to use (the CLI's `--runtime docker|embedded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeKind {
    /// The Docker daemon ([`DockerRuntime`]).
    Docker,
    /// New namespaces on this host, no daemon ([`EmbeddedRuntime`]).
    Embedded,
}

impl RuntimeKind {
    /// `docker` or `embedded`, as [`Runtime::name`] says it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Embedded => "embedded",
        }
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = RuntimeError;

    fn from_str(name: &str) -> Result<Self, RuntimeError> {
        match name {
            "docker" => Ok(Self::Docker),
            "embedded" => Ok(Self::Embedded),
            other => Err(RuntimeError::Unavailable {
                runtime: "unknown",
                reason: format!("no runtime named {other:?} (use docker or embedded)"),
            }),
        }
    }
}

/// Picks a runtime: `Some(kind)` forces one; `None` takes docker when a daemon answers a ping
/// within 1.5 s, else embedded. Its containers are registered on `cancel`.
pub fn detect(choice: Option<RuntimeKind>, cancel: &Cancel) -> Result<SharedRuntime, RuntimeError> {
    let ping = Duration::from_millis(1500);
    match choice {
        Some(RuntimeKind::Docker) => Ok(Arc::new(DockerRuntime::connect(ping, cancel)?)),
        Some(RuntimeKind::Embedded) => Ok(Arc::new(embedded::EmbeddedRuntime::new(cancel)?)),
        None => match DockerRuntime::connect(ping, cancel) {
            Ok(d) => Ok(Arc::new(d)),
            Err(docker_err) => embedded::EmbeddedRuntime::new(cancel)
                .map(|e| Arc::new(e) as SharedRuntime)
                .map_err(|e| RuntimeError::Unavailable {
                    runtime: "embedded",
                    reason: format!(
                        "{}; and docker: {}",
                        pare_progress::chain(&e),
                        pare_progress::chain(&docker_err)
                    ),
                }),
        },
    }
}

/// Identifies this process across pid reuse: `HOST/PIDNS:PID:STARTTIME`. Written into every
/// container's label / temp dir so that `remove_stale` only removes what dead processes left.
pub(crate) fn owner_token() -> String {
    let pid = std::process::id();
    format!(
        "{}:{pid}:{}",
        pid_namespace_id(),
        process_start_time(pid).unwrap_or(0)
    )
}

/// This host and pid namespace: pids are only comparable within one.
fn pid_namespace_id() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ns: String = ns.chars().filter(char::is_ascii_digit).collect();
    format!("{host}/{ns}").replace(':', "_")
}

/// Whether the process named by an [`owner_token`] still runs: `None` when the token is from
/// another host or pid namespace (or malformed) and nothing can be said.
pub(crate) fn owner_alive(token: &str) -> Option<bool> {
    let mut it = token.rsplitn(3, ':');
    let start: u64 = it.next()?.parse().ok().filter(|&s| s != 0)?;
    let pid: u32 = it.next()?.parse().ok()?;
    if it.next()? != pid_namespace_id() {
        return None;
    }
    Some(process_start_time(pid) == Some(start))
}

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot).
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// `n` random hex digits from the kernel's CSPRNG (names of containers and temp dirs).
pub(crate) fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n.div_ceil(2)];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_ok();
    if !filled {
        // Still unique per process and call: pid, time and a counter.
        static CTR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let v = t
            ^ (u64::from(std::process::id()) << 32)
            ^ CTR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (v >> ((i % 8) * 8)) as u8;
        }
    }
    let mut s: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    s.truncate(n);
    s
}

#[cfg(test)]
mod owner_tests {
    use super::*;

    #[test]
    fn runtime_kinds_read_and_print_their_names() {
        for kind in [RuntimeKind::Docker, RuntimeKind::Embedded] {
            assert_eq!(kind.name().parse::<RuntimeKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.name());
        }
        let err = "podman".parse::<RuntimeKind>().unwrap_err().to_string();
        assert!(err.contains("no runtime named \"podman\""), "{err}");
    }

    #[test]
    fn owner_tokens_tell_live_from_dead() {
        let me = owner_token();
        assert_eq!(owner_alive(&me), Some(true));
        let (rest, start) = me.rsplit_once(':').unwrap();
        let other_start: u64 = start.parse::<u64>().unwrap() + 1;
        assert_eq!(
            owner_alive(&format!("{rest}:{other_start}")),
            Some(false),
            "pid reused by another process"
        );
        assert_eq!(owner_alive("some-other-host/4026531836:1:1"), None);
        assert_eq!(
            owner_alive(&format!("{rest}:0")),
            None,
            "unknown start time"
        );
        assert_eq!(owner_alive("garbage"), None);
        assert_eq!(random_hex(12).len(), 12);
        assert_ne!(random_hex(12), random_hex(12));
    }
}
