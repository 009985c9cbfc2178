//! The `embedded` runtime: no daemon, just Linux namespaces on this host (needs root).
//!
//! Why hand-rolled `nix`/`libc` code and not youki's `libcontainer` 0.7: libcontainer pulls in
//! a large dependency graph (oci-spec runtime, libseccomp's C library, cgroups managers,
//! procfs, …) that would double this crate's build time on a 2-core machine, and needs
//! libseccomp-dev on every build host. pare needs a small subset (namespaces, an overlay root,
//! a few mounts, loopback, dropping the capability bounding set) that fits in one file.
//!
//! Process layout for one container:
//!
//! ```text
//! caller ──fork──> keeper (host pid ns; new mnt/uts/ipc/net ns, unshared pid ns)
//!                     └─fork──> init = PID 1 in the new pid ns: mounts, pivot_root, exec
//! ```
//!
//! * The keeper waits for init and reports its wait status on a pipe. It also watches a
//!   "lifeline" pipe whose only writer is the caller: if the caller dies (even SIGKILL), the
//!   keeper kills init, and the kernel kills every other process of the pid namespace.
//! * All mounts happen inside the new mount namespace (made `rprivate` first): a tmpfs over
//!   the per-run temp dir holds the overlay's upper and work dirs, the overlay
//!   (lower = the image rootfs, never written) becomes the new root via `pivot_root`, and the
//!   old root is detached. The host never sees any of these mounts; they vanish with the
//!   namespace when the last process in it exits.
//! * Bind sources (sensor binary, output dir, /dev nodes) are opened as `O_PATH` fds before
//!   `pivot_root` and bound from `/proc/self/fd/N` afterwards, so every path *inside* the
//!   image is resolved inside the new root and absolute symlinks in the image cannot point
//!   mounts or writes at the host.
//! * Probes reach container ports through a forwarder thread on 127.0.0.1:random in the host
//!   net ns that opens the upstream socket from a thread that `setns`ed into the container's
//!   net ns (setns of a net ns only affects the calling thread).

use std::collections::HashMap;
use std::convert::Infallible;
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, pipe2};
use pare_trace::ExitInfo;

use crate::cleanup::{self, Teardown};
use crate::{Container, ExecOutput, OUTPUT_DIR, RunSpec, Runtime, RuntimeError, SENSOR_PATH};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Bytes of stdout (and of stderr) kept per container; the rest is read and dropped.
const LOG_CAP: usize = 64 << 20;
/// How long namespace setup may take before the start is declared failed.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Docker's default capability set (by number): CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
/// SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
const DEFAULT_CAPS: &[u32] = &[0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;

fn eerr(message: impl Into<String>) -> RuntimeError {
    RuntimeError::Embedded {
        message: message.into(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> RuntimeError {
    RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn cstring(what: &str, s: impl Into<Vec<u8>>) -> Result<CString, RuntimeError> {
    CString::new(s).map_err(|_| eerr(format!("{what} contains a NUL byte")))
}

/// The daemonless runtime.
#[derive(Debug, Clone)]
pub struct EmbeddedRuntime {
    temp_root: PathBuf,
}

impl EmbeddedRuntime {
    /// Needs root (mount and namespace creation) and /proc.
    pub fn new() -> Result<Self, RuntimeError> {
        Self::with_temp_root(std::env::temp_dir())
    }

    /// Like [`new`](Self::new) with per-run temp dirs under `temp_root`.
    pub fn with_temp_root(temp_root: impl Into<PathBuf>) -> Result<Self, RuntimeError> {
        let unavailable = |reason: String| RuntimeError::Unavailable {
            runtime: "embedded",
            reason,
        };
        if !nix::unistd::geteuid().is_root() {
            return Err(unavailable(
                "needs root (namespaces and mounts); use --runtime docker".into(),
            ));
        }
        if !Path::new("/proc/self/ns/mnt").exists() {
            return Err(unavailable(
                "/proc/self/ns is missing (no namespace support or no /proc)".into(),
            ));
        }
        let rt = Self {
            temp_root: temp_root.into(),
        };
        rt.remove_stale();
        Ok(rt)
    }

    /// Removes per-run temp dirs left by pare processes that died without cleaning up (e.g.
    /// SIGKILL; their sandboxes die with them through the lifeline). Dirs of live processes
    /// are kept. Returns how many were removed.
    pub fn remove_stale(&self) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.temp_root) else {
            return 0;
        };
        let mut n = 0;
        for e in rd.flatten() {
            if !e.file_name().to_string_lossy().starts_with("pare-run-") {
                continue;
            }
            let owner = std::fs::read_to_string(e.path().join(OWNER_FILE)).unwrap_or_default();
            if crate::owner_alive(owner.trim()) == Some(false)
                && std::fs::remove_dir_all(e.path()).is_ok()
            {
                n += 1;
            }
        }
        n
    }
}

/// File in each per-run temp dir naming the owning process (see `owner_token`).
const OWNER_FILE: &str = "owner";

/// Everything the child processes need, prepared before `fork` (no parsing after it).
struct Plan {
    tmp: PathBuf,
    /// Name of the directory (in the new root) that holds the old root during setup.
    oldroot: String,
    overlay_opts: CString,
    hostname: String,
    argv: Vec<CString>,
    env: Vec<String>,
    /// `Some(user)` when the runtime itself drops to the image user (no sensor).
    user: Option<String>,
    workdir: String,
    sensor: Option<(PathBuf, PathBuf)>,
    caps: Vec<u32>,
}

/// The environment for the container: the image's plus Docker's defaults (PATH, HOSTNAME).
fn container_env(spec_env: &[String], hostname: &str) -> Vec<String> {
    let mut env: Vec<String> = spec_env
        .iter()
        .filter(|e| e.contains('='))
        .cloned()
        .collect();
    let has = |env: &[String], k: &str| {
        env.iter()
            .any(|e| e.split_once('=').is_some_and(|(n, _)| n == k))
    };
    if !has(&env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    env
}

fn with_home(env: &[String], home: &str) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

impl Runtime for EmbeddedRuntime {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn start(&self, spec: &RunSpec) -> Result<Box<dyn Container>, RuntimeError> {
        let rootfs = spec
            .rootfs
            .as_deref()
            .ok_or_else(|| eerr("the embedded runtime needs RunSpec.rootfs"))?;
        Ok(Box::new(self.start_layers(spec, &[rootfs.to_path_buf()])?))
    }
}

impl EmbeddedRuntime {
    /// Like [`Runtime::start`] with the root filesystem given as overlayfs lower layers, top
    /// first, instead of `spec.rootfs`: e.g. Docker's overlay2 `diff` dirs of a local image
    /// (`UpperDir` then `LowerDir` of `docker image inspect`), so nothing is extracted or
    /// copied. Layers must use overlayfs whiteouts (0/0 char devices, `trusted.overlay.opaque`),
    /// not the `.wh.` files of layer tarballs. None of them is ever written.
    pub fn start_layers(
        &self,
        spec: &RunSpec,
        layers: &[PathBuf],
    ) -> Result<EmbeddedContainer, RuntimeError> {
        let t0 = Instant::now();
        if layers.is_empty() {
            return Err(eerr("no root filesystem layers given"));
        }
        let mut lowers = Vec::new();
        for l in layers {
            let dir = std::fs::canonicalize(l).map_err(|e| io_err(l, e))?;
            if !dir.is_dir() {
                return Err(io_err(
                    &dir,
                    std::io::Error::other("root filesystem is not a directory"),
                ));
            }
            let s = overlay_safe(&dir, "layer path")?;
            lowers.push(s.to_string());
        }
        let lower = lowers.join(":");
        let id = crate::random_hex(12);
        let name = format!("pare-{id}");
        let hostname = if spec.hostname.is_empty() {
            name.clone()
        } else {
            spec.hostname.clone()
        };
        let command = match &spec.sensor {
            Some(_) => crate::docker::sensor_argv(spec),
            None => spec.command.clone(),
        };
        if command.is_empty() {
            return Err(eerr(format!(
                "{name}: empty command (no ENTRYPOINT or CMD)"
            )));
        }
        let argv = command
            .iter()
            .map(|a| cstring("command", a.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let sensor = match &spec.sensor {
            Some(s) => {
                let bin = std::fs::canonicalize(&s.binary).map_err(|e| io_err(&s.binary, e))?;
                let out =
                    std::fs::canonicalize(&s.output_dir).map_err(|e| io_err(&s.output_dir, e))?;
                Some((bin, out))
            }
            None => None,
        };
        let mut caps = DEFAULT_CAPS.to_vec();
        if let Some(s) = &spec.sensor {
            caps.push(CAP_SYS_PTRACE);
            if s.fanotify {
                caps.push(CAP_SYS_ADMIN);
            }
        }
        // Everything that only needs the temp dir's path is checked before it exists, so a
        // failure leaves nothing to remove.
        let tmp = self.temp_root.join(format!("pare-run-{id}"));
        let tmp_s = overlay_safe(&tmp, "temp path")?;
        let opts = format!("lowerdir={lower},upperdir={tmp_s}/upper,workdir={tmp_s}/work");
        if opts.len() >= 4000 {
            return Err(eerr(format!(
                "{} layers: overlay options exceed a page ({} bytes); use shorter paths or fewer layers",
                layers.len(),
                opts.len()
            )));
        }
        let overlay_opts = cstring("overlay options", opts)?;
        std::fs::create_dir_all(&self.temp_root).map_err(|e| io_err(&self.temp_root, e))?;
        // A Ctrl-C while this container is being set up (before it is registered below) must
        // not leave its temp dir: a pending entry removes it once the start has returned.
        let pending = Arc::new(PendingRun {
            tmp: tmp.clone(),
            in_flight: AtomicBool::new(true),
        });
        let pending_td: Arc<dyn Teardown> = pending.clone();
        let pending_key = cleanup::register(&pending_td);
        let _pending = PendingGuard {
            pending: pending.clone(),
            key: pending_key,
        };
        if cleanup::closing() {
            return Err(eerr(format!("interrupted: not starting container {name}")));
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        // Visible on the host only: the sandbox mounts a tmpfs over this dir in its own ns.
        if let Err(e) = std::fs::write(tmp.join(OWNER_FILE), crate::owner_token()) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io_err(&tmp.join(OWNER_FILE), e));
        }
        let mut env = container_env(&spec.env, &hostname);
        if spec.sensor.is_some() {
            env = with_home(&env, "/root");
        }
        let plan = Plan {
            tmp: tmp.clone(),
            oldroot: format!(".pare-oldroot-{}", crate::random_hex(8)),
            overlay_opts,
            hostname,
            argv,
            env: env.clone(),
            user: if spec.sensor.is_none() {
                Some(spec.user.clone())
            } else {
                None
            },
            workdir: spec.workdir.clone(),
            sensor,
            caps: caps.clone(),
        };
        let exec_user = plan.user.clone();
        let started = spawn_container(&plan, &name);
        let (proc_, streams) = match started {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let inner = Arc::new(EmbeddedInner {
            name: name.clone(),
            tmp,
            proc_,
            env,
            exec_user,
            workdir: spec.workdir.clone(),
            caps,
            stdout: streams.0,
            stderr: streams.1,
            forwarders: Mutex::new(Vec::new()),
            done: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            reg_key: Mutex::new(None),
            sent: Mutex::new(Vec::new()),
        });
        let td: Arc<dyn Teardown> = inner.clone();
        *lock(&inner.reg_key) = Some(cleanup::register(&td));
        // Ctrl-C clean-up began while this one started: it may already have drained the
        // registry, so tear this container down here rather than leave it behind.
        if cleanup::closing() {
            td.teardown();
            return Err(eerr(format!("interrupted: container {name} torn down")));
        }
        let mut container = EmbeddedContainer {
            inner,
            endpoints: HashMap::new(),
            started_in: t0.elapsed(),
        };
        let net = lock(&container.inner.proc_.ns)
            .as_ref()
            .map(|ns| ns.net.clone());
        if let Some(net) = net {
            for &port in &spec.ports {
                let fwd = Forwarder::spawn(net.clone(), port)
                    .map_err(|e| eerr(format!("{name}: port forwarder for {port}: {e}")))?;
                container.endpoints.insert(port, fwd.addr);
                lock(&container.inner.forwarders).push(fwd);
            }
        }
        Ok(container)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Namespace handles of a running container, opened right after setup (before exec).
struct NsFds {
    net: Arc<OwnedFd>,
    others: Vec<(OwnedFd, CloneFlags)>,
}

/// The exit slot filled by the waiter thread.
#[derive(Default)]
struct ExitSlot {
    exit: Mutex<Option<ExitInfo>>,
    cv: Condvar,
}

impl ExitSlot {
    fn wait(&self, timeout: Duration) -> Option<ExitInfo> {
        let deadline = Instant::now() + timeout;
        let mut g = lock(&self.exit);
        loop {
            if let Some(e) = g.clone() {
                return Some(e);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = self
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

struct ContainerProc {
    init_pid: Pid,
    init_pidfd: Option<OwnedFd>,
    /// Dropped by cleanup, which frees the namespaces (and the sandbox's mounts) at once.
    ns: Mutex<Option<Arc<NsFds>>>,
    lifeline: Mutex<Option<OwnedFd>>,
    exit: Arc<ExitSlot>,
    waiter: Mutex<Option<JoinHandle<()>>>,
}

type Streams = (Arc<Mutex<Vec<u8>>>, Arc<Mutex<Vec<u8>>>);

fn exit_info(status: WaitStatus) -> ExitInfo {
    match status {
        WaitStatus::Exited(_, code) => ExitInfo { code, signal: None },
        WaitStatus::Signaled(_, sig, _) => ExitInfo {
            code: 128 + sig as i32,
            signal: Some(sig.as_str().to_string()),
        },
        other => ExitInfo {
            code: -1,
            signal: Some(format!("{other:?}")),
        },
    }
}

/// Decodes a raw `wait` status as written by the keeper.
fn exit_from_raw(raw: i32) -> ExitInfo {
    if libc::WIFEXITED(raw) {
        ExitInfo {
            code: libc::WEXITSTATUS(raw),
            signal: None,
        }
    } else if libc::WIFSIGNALED(raw) {
        let sig = libc::WTERMSIG(raw);
        let name = Signal::try_from(sig)
            .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string());
        ExitInfo {
            code: 128 + sig,
            signal: Some(name),
        }
    } else {
        ExitInfo {
            code: -1,
            signal: Some(format!("wait status {raw:#x}")),
        }
    }
}

fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory involved.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn signal_proc(pidfd: Option<&OwnedFd>, pid: Pid, sig: Signal) {
    if let Some(fd) = pidfd {
        // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, a null siginfo and no
        // flags; the kernel reads no memory from us.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig as i32,
                std::ptr::null::<u8>(),
                0,
            )
        };
        if r == 0 || Errno::last() == Errno::ESRCH {
            return;
        }
    }
    let _ = kill(pid, sig);
}

/// Waits until `fd` is readable (or hung up), at most `timeout`. Returns false on timeout.
fn wait_readable(fd: &impl AsRawFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd on the stack, count 1.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            return true;
        }
        if r == 0 || (r < 0 && Errno::last() != Errno::EINTR) {
            return false;
        }
    }
}

/// Closes every fd ≥ 3 except `keep` (in a forked child).
fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&f| f >= 3).collect();
    keep.sort_unstable();
    let mut lo: u32 = 3;
    for k in keep {
        let k = k as u32;
        if k > lo {
            // SAFETY: close_range on fds this single-threaded child owns; none of them is
            // referenced again (the kept ones are outside the range).
            unsafe { libc::syscall(libc::SYS_close_range, lo, k - 1, 0) };
        }
        lo = k + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, lo, u32::MAX, 0) };
}

/// Marks every fd ≥ 3 close-on-exec (so the image never inherits fds of the caller).
fn cloexec_all() {
    // SAFETY: CLOSE_RANGE_CLOEXEC (4) only sets a flag on fds; nothing is closed.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32) };
}

fn write_all_fd(fd: &OwnedFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Ends a forked child without running any destructor or atexit handler of the parent.
fn child_exit(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// Runs `body` in a forked child; any error is written to `err` as `E<message>`, then exit.
fn child_run(err: &OwnedFd, body: impl FnOnce() -> Result<Infallible, String>) -> ! {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let msg = match r {
        Ok(Err(m)) => m,
        Ok(Ok(never)) => match never {},
        Err(_) => "panic in sandbox child".to_string(),
    };
    let mut b = vec![b'E'];
    b.extend_from_slice(msg.as_bytes());
    write_all_fd(err, &b);
    child_exit(127)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| eerr(format!("pipe: {e}")))
}

/// Reader thread collecting a pipe into a shared buffer.
fn collect(fd: OwnedFd, buf: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(fd);
        let mut chunk = [0u8; 16384];
        loop {
            match f.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    // Keep reading past the cap so the app never blocks on a full pipe.
                    let mut b = lock(&buf);
                    let room = LOG_CAP.saturating_sub(b.len());
                    b.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    })
}

/// Forks keeper and init, waits for init's setup, opens the namespace handles, lets init exec.
fn spawn_container(plan: &Plan, name: &str) -> Result<(ContainerProc, Streams), RuntimeError> {
    let (info_r, info_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let (life_r, life_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (serr_r, serr_w) = pipe()?;

    // SAFETY: the child only runs the sandbox setup below and always leaves through _exit
    // (child_exit) or execve; it never returns into the caller's code, so no destructor of
    // the parent's state runs twice. Allocation after fork is safe with glibc, which resets
    // its malloc locks in the child; no other lock of the caller is taken.
    let keeper = match unsafe { fork() }.map_err(|e| eerr(format!("{name}: fork: {e}")))? {
        ForkResult::Child => keeper_main(plan, &info_w, &err_w, &go_r, &life_r, &out_w, &serr_w),
        ForkResult::Parent { child } => child,
    };
    drop((info_w, err_w, go_r, life_r, out_w, serr_w));
    let streams: Streams = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let readers = [
        collect(out_r, streams.0.clone()),
        collect(serr_r, streams.1.clone()),
    ];

    let mut info = std::fs::File::from(info_r);
    let mut errf = std::fs::File::from(err_r);
    let fail = |msg: String, init: Option<Pid>| {
        if let Some(p) = init {
            let _ = kill(p, Signal::SIGKILL);
        }
        let _ = kill(keeper, Signal::SIGKILL);
        let _ = waitpid(keeper, None);
        eerr(format!("{name}: {msg}"))
    };
    let mut pidb = [0u8; 4];
    if !wait_readable(&info, SETUP_TIMEOUT) || info.read_exact(&mut pidb).is_err() {
        let mut m = String::new();
        let _ = errf.read_to_string(&mut m);
        return Err(fail(
            format!("sandbox setup failed: {}", m.trim_start_matches('E')),
            None,
        ));
    }
    let init = Pid::from_raw(i32::from_le_bytes(pidb));
    // First byte from init: R (ready) or E<message>.
    let mut first = [0u8; 1];
    if !wait_readable(&errf, SETUP_TIMEOUT) {
        return Err(fail(
            format!("sandbox setup did not finish within {SETUP_TIMEOUT:?}"),
            Some(init),
        ));
    }
    match errf.read(&mut first) {
        Ok(1) if first[0] == b'R' => {}
        Ok(1) => {
            let mut m = String::new();
            let _ = errf.read_to_string(&mut m);
            return Err(fail(format!("sandbox setup failed: {m}"), Some(init)));
        }
        _ => return Err(fail("sandbox init exited during setup".into(), Some(init))),
    }
    let init_pidfd = pidfd_open(init);
    let ns = open_ns(init).map_err(|e| fail(e, Some(init)))?;
    // Let init exec; then the error pipe closes (CLOEXEC) or carries the exec error.
    if nix::unistd::write(&go_w, b"g").is_err() {
        return Err(fail("sandbox init vanished before exec".into(), Some(init)));
    }
    drop(go_w);
    let mut rest = Vec::new();
    if !wait_readable(&errf, SETUP_TIMEOUT) {
        return Err(fail("exec did not happen in time".into(), Some(init)));
    }
    let _ = errf.read_to_end(&mut rest);
    if !rest.is_empty() {
        let msg = String::from_utf8_lossy(rest.strip_prefix(b"E").unwrap_or(&rest)).into_owned();
        return Err(fail(msg, Some(init)));
    }

    let exit = Arc::new(ExitSlot::default());
    let slot = exit.clone();
    let waiter = std::thread::spawn(move || {
        let mut st = [0u8; 4];
        let raw = info
            .read_exact(&mut st)
            .ok()
            .map(|()| i32::from_le_bytes(st));
        let keeper_status = loop {
            match waitpid(keeper, None) {
                Err(Errno::EINTR) => continue,
                r => break r,
            }
        };
        let e = match (raw, keeper_status) {
            (Some(raw), _) => exit_from_raw(raw),
            (None, Ok(st)) => exit_info(st),
            (None, Err(e)) => ExitInfo {
                code: -1,
                signal: Some(format!("waitpid: {e}")),
            },
        };
        // All processes of the pid ns are gone with init, so the output pipes reach EOF now:
        // let the readers drain them before the exit is published, so that logs() after
        // wait() is complete. Bounded, in case an fd leaked into a foreign process.
        let drain_deadline = Instant::now() + Duration::from_secs(2);
        while readers.iter().any(|r| !r.is_finished()) && Instant::now() < drain_deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        *lock(&slot.exit) = Some(e);
        slot.cv.notify_all();
    });
    Ok((
        ContainerProc {
            init_pid: init,
            init_pidfd,
            ns: Mutex::new(Some(Arc::new(ns))),
            lifeline: Mutex::new(Some(life_w)),
            exit,
            waiter: Mutex::new(Some(waiter)),
        },
        streams,
    ))
}

fn open_ns(pid: Pid) -> Result<NsFds, String> {
    let open = |ns: &str| {
        let p = format!("/proc/{}/ns/{ns}", pid.as_raw());
        std::fs::File::open(&p)
            .map(OwnedFd::from)
            .map_err(|e| format!("{p}: {e}"))
    };
    let net = Arc::new(open("net")?);
    // Order matters for exec: ipc, uts, net, pid, then mnt last.
    let others = vec![
        (open("ipc")?, CloneFlags::CLONE_NEWIPC),
        (open("uts")?, CloneFlags::CLONE_NEWUTS),
        (open("net")?, CloneFlags::CLONE_NEWNET),
        (open("pid")?, CloneFlags::CLONE_NEWPID),
        (open("mnt")?, CloneFlags::CLONE_NEWNS),
    ];
    Ok(NsFds { net, others })
}

/// The keeper: unshares the namespaces, forks init (PID 1), reports its pid and exit status.
fn keeper_main(
    plan: &Plan,
    info_w: &OwnedFd,
    err_w: &OwnedFd,
    go_r: &OwnedFd,
    life_r: &OwnedFd,
    out_w: &OwnedFd,
    serr_w: &OwnedFd,
) -> ! {
    // Own process group: a terminal's Ctrl-C reaches the caller (whose handler tears the
    // container down), not the sandbox processes directly.
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    if let Err(e) = unshare(flags) {
        child_run(err_w, || {
            Err(format!("unshare(mnt, pid, uts, ipc, net): {e}"))
        });
    }
    // SAFETY: this keeper process is single-threaded (forked); the child runs init_main and
    // leaves only through execve or _exit.
    let init = match unsafe { fork() } {
        Ok(ForkResult::Child) => child_run(err_w, || init_main(plan, err_w, go_r, out_w, serr_w)),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => child_run(err_w, || Err(format!("fork init: {e}"))),
    };
    close_fds_except(&[info_w.as_raw_fd(), life_r.as_raw_fd()]);
    write_all_fd(info_w, &init.as_raw().to_le_bytes());
    let pidfd = pidfd_open(init);
    let mut lifeline_open = true;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pidfd.as_ref().map_or(-1, AsRawFd::as_raw_fd),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if lifeline_open {
                    life_r.as_raw_fd()
                } else {
                    -1
                },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let timeout = if pidfd.is_some() { -1 } else { 50 };
        // SAFETY: two valid pollfds on the stack (negative fds are ignored by poll).
        unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if lifeline_open && fds[1].revents != 0 {
            // The caller is gone (or tore us down): take the whole pid namespace with us.
            lifeline_open = false;
            let _ = kill(init, Signal::SIGKILL);
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid out pointer.
        let r = unsafe { libc::waitpid(init.as_raw(), &mut status, libc::WNOHANG) };
        if r == init.as_raw() {
            write_all_fd(info_w, &status.to_le_bytes());
            child_exit(0);
        }
        if r < 0 && Errno::last() != Errno::EINTR {
            child_exit(1);
        }
    }
}

fn ctx<E: std::fmt::Display>(what: impl FnOnce() -> String) -> impl FnOnce(E) -> String {
    move |e| format!("{}: {e}", what())
}

fn open_path(p: &Path) -> Result<OwnedFd, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(p)
        .map(OwnedFd::from)
        .map_err(|e| format!("{}: {e}", p.display()))
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `p` as a string that can go into overlay mount options: UTF-8 without `,` `:` `\`.
fn overlay_safe<'a>(p: &'a Path, what: &str) -> Result<&'a str, RuntimeError> {
    p.to_str()
        .filter(|s| !s.contains([',', ':', '\\']))
        .ok_or_else(|| {
            eerr(format!(
                "{}: {what} must be UTF-8 without ',' ':' '\\' (overlay options)",
                p.display()
            ))
        })
}

/// Creates an empty regular file as a bind-mount target (no-op when something exists).
fn touch(p: &str) -> Result<(), String> {
    match std::fs::symlink_metadata(p) {
        Ok(_) => Ok(()),
        Err(_) => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(p)
            .map(drop)
            .map_err(|e| format!("create {p}: {e}")),
    }
}

fn bind(src: &OwnedFd, target: &str, readonly: bool) -> Result<(), String> {
    mount(
        Some(fd_path(src).as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind mount onto {target}: {e}"))?;
    if readonly {
        let fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
        mount(None::<&str>, target, None::<&str>, fl, None::<&str>)
            .map_err(|e| format!("remount {target} read-only: {e}"))?;
    }
    Ok(())
}

fn mkdirs(p: &str) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("mkdir {p}: {e}"))
}

/// Replaces `path` in the container (after pivot_root, so symlinks resolve inside it).
fn write_etc(path: &str, content: &str) -> Result<(), String> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.is_dir() {
            return Ok(());
        }
        std::fs::remove_file(path).map_err(|e| format!("replace {path}: {e}"))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .map_err(|e| format!("write {path}: {e}"))
}

fn loopback_up() -> Result<(), String> {
    // SAFETY: socket() with constant arguments; returns an fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", Errno::last()));
    }
    // SAFETY: the fd was just created and is owned only here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is a plain C struct/union for which all-zero bytes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the interface name and writes ifru_flags in our ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } < 0 {
        return Err(format!("SIOCGIFFLAGS lo: {}", Errno::last()));
    }
    // SAFETY: ifru_flags is the union member SIOCGIFFLAGS just filled in.
    unsafe { ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads our ifreq (name + flags).
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } < 0 {
        return Err(format!("SIOCSIFFLAGS lo up: {}", Errno::last()));
    }
    Ok(())
}

/// Drops every capability outside `keep` from the bounding set: after execve a root process
/// gets exactly the bounding set (inheritable is empty), so this is the container's cap set.
fn limit_caps(keep: &[u32]) -> Result<(), String> {
    for cap in 0..64u32 {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: prctl(PR_CAPBSET_DROP, cap) takes integers only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r < 0 && Errno::last() != Errno::EINVAL {
            return Err(format!("drop capability {cap}: {}", Errno::last()));
        }
    }
    Ok(())
}

/// Resets signal dispositions and the mask inherited from the caller (Rust ignores SIGPIPE).
fn reset_signals() {
    /// The kernel's `struct sigaction` (x86_64 layout: handler, flags, restorer, mask).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // Every signal up to SIGRTMAX, through the raw syscall: glibc's signal() refuses the
    // real-time signals it keeps for itself (32, 33), which a caller may have ignored, and
    // ignored signals survive exec (docker starts every app with none ignored).
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid signal number, a pointer to a properly laid out
        // struct on the stack, no old-action pointer, and the kernel's sigset size (8).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    // SAFETY: an empty sigset initialised by sigemptyset, then installed as the mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The umask every docker container starts with (runc's default), whatever the caller's.
fn docker_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
}

/// Drops to the image user (as resolved from the container's own /etc/passwd) and enters the
/// working directory. Returns HOME. Must run after pivot_root / setns(mnt).
fn become_user(user: &str, workdir: &str) -> Result<String, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let u = pare_user::resolve(user, &passwd, &group).map_err(|e| e.to_string())?;
    if !workdir.is_empty() {
        mkdirs(workdir)?;
        nix::unistd::chdir(workdir).map_err(ctx(|| format!("chdir {workdir}")))?;
    } else {
        nix::unistd::chdir("/").map_err(ctx(|| "chdir /".to_string()))?;
    }
    let groups: Vec<Gid> = u.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    nix::unistd::setgroups(&groups).map_err(ctx(|| "setgroups".to_string()))?;
    nix::unistd::setgid(Gid::from_raw(u.gid)).map_err(ctx(|| format!("setgid {}", u.gid)))?;
    nix::unistd::setuid(Uid::from_raw(u.uid)).map_err(ctx(|| format!("setuid {}", u.uid)))?;
    Ok(u.home)
}

/// execvpe with PATH from the container env (looked up inside the container root).
fn exec_argv(argv: &[CString], env: &[String]) -> Result<Infallible, String> {
    let Some(arg0) = argv.first() else {
        return Err("empty command".into());
    };
    let envc: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_str()).ok())
        .collect();
    let a0 = arg0.to_bytes();
    let candidates: Vec<CString> = if a0.contains(&b'/') {
        vec![arg0.clone()]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .map(|d| if d.is_empty() { "." } else { d })
            .filter_map(|d| {
                let mut p = d.as_bytes().to_vec();
                p.push(b'/');
                p.extend_from_slice(a0);
                CString::new(p).ok()
            })
            .collect()
    };
    let mut last = Errno::ENOENT;
    for c in &candidates {
        match nix::unistd::execve(c, argv, &envc) {
            Err(e) => {
                if e != Errno::ENOENT || last == Errno::ENOENT {
                    last = e;
                }
            }
            Ok(never) => match never {},
        }
    }
    Err(format!("exec {}: {last}", String::from_utf8_lossy(a0)))
}

/// PID 1 of the container: builds the root, then waits for the go signal and execs.
fn init_main(
    plan: &Plan,
    err_w: &OwnedFd,
    go_r: &OwnedFd,
    out_w: &OwnedFd,
    serr_w: &OwnedFd,
) -> Result<Infallible, String> {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(ctx(|| "make / rprivate".into()))?;
    let tmp = plan.tmp.to_str().ok_or("temp path is not UTF-8")?;
    mount(
        Some("tmpfs"),
        tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0700"),
    )
    .map_err(ctx(|| format!("mount tmpfs on {tmp}")))?;
    let root = format!("{tmp}/root");
    for d in ["upper", "work", "root"] {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(format!("{tmp}/{d}"))
            .map_err(ctx(|| format!("mkdir {tmp}/{d}")))?;
    }
    mount(
        Some("overlay"),
        root.as_str(),
        Some("overlay"),
        MsFlags::empty(),
        Some(plan.overlay_opts.as_c_str()),
    )
    .map_err(ctx(|| {
        format!("mount overlay ({})", plan.overlay_opts.to_string_lossy())
    }))?;

    // Host-side sources, opened before the host root disappears.
    let devs = ["null", "zero", "full", "random", "urandom", "tty"];
    let mut dev_fds = Vec::new();
    for d in devs {
        dev_fds.push((d, open_path(Path::new(&format!("/dev/{d}")))?));
    }
    let sensor_fds = match &plan.sensor {
        Some((bin, out)) => Some((open_path(bin)?, open_path(out)?)),
        None => None,
    };

    // The old root stays attached under a random name until the binds are done: bind mounts
    // need their source mount in this namespace.
    nix::unistd::chdir(root.as_str()).map_err(ctx(|| format!("chdir {root}")))?;
    let oldroot = format!("/{}", plan.oldroot);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&plan.oldroot)
        .map_err(ctx(|| format!("mkdir {oldroot}")))?;
    nix::unistd::pivot_root(".", plan.oldroot.as_str()).map_err(ctx(|| "pivot_root".into()))?;
    nix::unistd::chdir("/").map_err(ctx(|| "chdir /".into()))?;

    let nsd = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mkdirs("/proc")?;
    mount(Some("proc"), "/proc", Some("proc"), nsd, none).map_err(ctx(|| "mount /proc".into()))?;
    mkdirs("/dev")?;
    mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0755,size=65536k"),
    )
    .map_err(ctx(|| "mount /dev".into()))?;
    for (d, fd) in &dev_fds {
        let t = format!("/dev/{d}");
        touch(&t)?;
        bind(fd, &t, false)?;
    }
    mkdirs("/dev/pts")?;
    mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(ctx(|| "mount /dev/pts".into()))?;
    mkdirs("/dev/shm")?;
    mount(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        nsd,
        Some("mode=1777,size=65536k"),
    )
    .map_err(ctx(|| "mount /dev/shm".into()))?;
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, link).map_err(ctx(|| format!("symlink {link}")))?;
    }
    // /sys read-only when the kernel allows it in this net ns; not essential.
    if mkdirs("/sys").is_ok() {
        let _ = mount(
            Some("sysfs"),
            "/sys",
            Some("sysfs"),
            nsd | MsFlags::MS_RDONLY,
            none,
        );
    }
    // /tmp: a tmpfs unless the image ships files there (Docker would show them).
    let tmp_empty = std::fs::read_dir("/tmp").map_or(true, |mut d| d.next().is_none());
    if tmp_empty && std::fs::symlink_metadata("/tmp").map_or(true, |m| m.is_dir()) {
        mkdirs("/tmp")?;
        mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        )
        .map_err(ctx(|| "mount /tmp".into()))?;
    }
    if let Some((bin, out)) = &sensor_fds {
        mkdirs(OUTPUT_DIR)?;
        touch(SENSOR_PATH)?;
        bind(bin, SENSOR_PATH, true)?;
        bind(out, OUTPUT_DIR, false)?;
    }
    drop(sensor_fds);
    drop(dev_fds);
    umount2(oldroot.as_str(), MntFlags::MNT_DETACH).map_err(ctx(|| "detach old root".into()))?;
    std::fs::remove_dir(&oldroot).map_err(ctx(|| format!("rmdir {oldroot}")))?;
    mkdirs("/etc")?;
    write_etc("/etc/hostname", &format!("{}\n", plan.hostname))?;
    // Docker's /etc/hosts, with the hostname on loopback (the sandbox has no other address).
    write_etc(
        "/etc/hosts",
        &format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{}\n",
            plan.hostname
        ),
    )?;
    write_etc(
        "/etc/resolv.conf",
        "# pare embedded runtime: the sandbox has no network beyond loopback\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )?;
    nix::unistd::sethostname(&plan.hostname).map_err(ctx(|| "sethostname".into()))?;
    loopback_up()?;
    limit_caps(&plan.caps)?;

    let devnull = std::fs::File::open("/dev/null").map_err(ctx(|| "open /dev/null".into()))?;
    nix::unistd::dup2_stdin(&devnull).map_err(ctx(|| "dup2 stdin".into()))?;
    nix::unistd::dup2_stdout(out_w).map_err(ctx(|| "dup2 stdout".into()))?;
    nix::unistd::dup2_stderr(serr_w).map_err(ctx(|| "dup2 stderr".into()))?;
    let env = match &plan.user {
        Some(user) => {
            let home = become_user(user, &plan.workdir)?;
            with_home(&plan.env, &home)
        }
        None => plan.env.clone(),
    };
    reset_signals();
    docker_umask();
    cloexec_all();
    // Ready; wait for the caller to open our namespaces, then exec.
    write_all_fd(err_w, b"R");
    let mut go = [0u8; 1];
    loop {
        match nix::unistd::read(go_r, &mut go) {
            Ok(1) => break,
            Err(Errno::EINTR) => {}
            _ => child_exit(125),
        }
    }
    exec_argv(&plan.argv, &env)
}

/// A TCP forwarder: 127.0.0.1:random on the host → 127.0.0.1:port in the container net ns.
struct Forwarder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    fn spawn(netns: Arc<OwnedFd>, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pare-fwd-{port}"))
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    if !wait_readable(&listener, Duration::from_millis(100)) {
                        continue;
                    }
                    let Ok((client, _)) = listener.accept() else {
                        continue;
                    };
                    let ns = netns.clone();
                    let _ = std::thread::Builder::new()
                        .name(format!("pare-fwd-{port}-conn"))
                        .spawn(move || forward_conn(client, &ns, port));
                }
            })?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects to `port` on loopback in the calling thread's net ns: 127.0.0.1, then ::1. When
/// both fail, the IPv4 error (a refusal there means nothing listens; ::1 may not exist).
fn connect_loopback(port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout).or_else(
        |v4| {
            TcpStream::connect_timeout(&SocketAddr::from((Ipv6Addr::LOCALHOST, port)), timeout)
                .map_err(|_| v4)
        },
    )
}

fn forward_conn(client: TcpStream, netns: &OwnedFd, port: u16) {
    // Only this thread enters the container's net ns; the socket created here lives there.
    if setns(netns.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
        return;
    }
    // Nothing listening yet: close the client, like docker-proxy does.
    let Ok(up) = connect_loopback(port, Duration::from_secs(5)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (Ok(mut c_read), Ok(mut u_write)) = (client.try_clone(), up.try_clone()) else {
        return;
    };
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (up, client);
    let _ = std::io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = upstream.join();
}

struct EmbeddedInner {
    name: String,
    tmp: PathBuf,
    proc_: ContainerProc,
    env: Vec<String>,
    /// The user `exec` runs as (`None` = root, for sensor runs, like the docker runtime).
    exec_user: Option<String>,
    workdir: String,
    caps: Vec<u32>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    forwarders: Mutex<Vec<Forwarder>>,
    done: AtomicBool,
    /// Set when the removal has finished.
    removed: AtomicBool,
    reg_key: Mutex<Option<u64>>,
    sent: Mutex<Vec<Signal>>,
}

impl EmbeddedInner {
    fn signal(&self, sig: Signal) {
        if lock(&self.proc_.exit.exit).is_none() {
            lock(&self.sent).push(sig);
            signal_proc(self.proc_.init_pidfd.as_ref(), self.proc_.init_pid, sig);
        }
    }

    /// Exit status, with an exit code of 128+N reported as signal N when `stop` sent N (the
    /// sensor exits with 128+N when its app died of N), like the docker runtime does.
    fn wait(&self, timeout: Duration) -> Option<ExitInfo> {
        let mut e = self.proc_.exit.wait(timeout)?;
        if e.signal.is_none() {
            if let Some(sig) = lock(&self.sent).iter().find(|s| e.code == 128 + **s as i32) {
                e.signal = Some(sig.as_str().to_string());
            }
        }
        Some(e)
    }

    fn remove(&self) -> Result<(), RuntimeError> {
        if self.done.swap(true, Ordering::SeqCst) {
            // Another thread is removing it: wait (bounded) for that to finish, so that a
            // Ctrl-C exit does not cut the removal short and leave the temp dir.
            let t = Instant::now();
            while !self.removed.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(15) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return Ok(());
        }
        let r = self.remove_now();
        self.removed.store(true, Ordering::SeqCst);
        // Deregistered only now: a Ctrl-C during the removal still finds it, and waits above.
        if let Some(k) = lock(&self.reg_key).take() {
            cleanup::deregister(k);
        }
        r
    }

    fn remove_now(&self) -> Result<(), RuntimeError> {
        for f in lock(&self.forwarders).iter_mut() {
            f.shutdown();
        }
        self.signal(Signal::SIGKILL);
        // Closing the lifeline makes the keeper kill init too, should the signal have failed.
        drop(lock(&self.proc_.lifeline).take());
        let exited = self.proc_.exit.wait(Duration::from_secs(10)).is_some();
        if let Some(w) = lock(&self.proc_.waiter).take() {
            if exited {
                let _ = w.join();
            }
        }
        if !exited {
            return Err(eerr(format!(
                "{}: sandbox processes did not exit after SIGKILL",
                self.name
            )));
        }
        drop(lock(&self.proc_.ns).take());
        match std::fs::remove_dir_all(&self.tmp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.tmp, e)),
        }
    }

    fn exec(&self, argv: &[String], timeout: Duration) -> Result<ExecOutput, RuntimeError> {
        let name = &self.name;
        let ns = lock(&self.proc_.ns).clone().ok_or_else(|| {
            eerr(format!(
                "{name}: container was cleaned up; cannot exec {argv:?}"
            ))
        })?;
        if lock(&self.proc_.exit.exit).is_some() {
            return Err(eerr(format!(
                "{name}: container has exited; cannot exec {argv:?}"
            )));
        }
        let argvc = argv
            .iter()
            .map(|a| cstring("exec argument", a.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        if argvc.is_empty() {
            return Err(eerr(format!("{name}: exec of an empty command")));
        }
        let (out_r, out_w) = pipe()?;
        let (serr_r, serr_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // SAFETY: the child only enters the namespaces and execs (or _exits); see spawn_container.
        let helper = match unsafe { fork() }.map_err(|e| eerr(format!("{name}: fork: {e}")))? {
            ForkResult::Child => child_run(&err_w, || {
                let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
                for (fd, kind) in &ns.others {
                    setns(fd.as_fd(), *kind).map_err(ctx(|| format!("setns {kind:?}")))?;
                }
                // SAFETY: single-threaded child; the grandchild execs or _exits.
                match unsafe { fork() }.map_err(ctx(|| "fork in container pid ns".into()))? {
                    ForkResult::Child => child_run(&err_w, || {
                        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
                        let devnull = std::fs::File::open("/dev/null")
                            .map_err(ctx(|| "open /dev/null".into()))?;
                        nix::unistd::dup2_stdin(&devnull).map_err(ctx(|| "dup2 stdin".into()))?;
                        nix::unistd::dup2_stdout(&out_w).map_err(ctx(|| "dup2 stdout".into()))?;
                        nix::unistd::dup2_stderr(&serr_w).map_err(ctx(|| "dup2 stderr".into()))?;
                        limit_caps(&self.caps)?;
                        let env = match &self.exec_user {
                            Some(u) => with_home(&self.env, &become_user(u, &self.workdir)?),
                            None => {
                                // Root, in WORKDIR like `docker exec` (the container's cwd).
                                let wd = if self.workdir.is_empty() {
                                    "/"
                                } else {
                                    self.workdir.as_str()
                                };
                                mkdirs(wd)?;
                                nix::unistd::chdir(wd).map_err(ctx(|| format!("chdir {wd}")))?;
                                with_home(&self.env, "/root")
                            }
                        };
                        reset_signals();
                        docker_umask();
                        cloexec_all();
                        exec_argv(&argvc, &env)
                    }),
                    ForkResult::Parent { child } => {
                        close_fds_except(&[]);
                        let code = match waitpid(child, None) {
                            Ok(WaitStatus::Exited(_, c)) => c,
                            Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
                            _ => 255,
                        };
                        child_exit(code)
                    }
                }
            }),
            ForkResult::Parent { child } => child,
        };
        drop((out_w, serr_w, err_w));
        let deadline = Instant::now() + timeout;
        let helper_fd = pidfd_open(helper);
        let kill_helper = || {
            // The whole process group: the command's own children die too.
            let _ = nix::sys::signal::killpg(helper, Signal::SIGKILL);
            let _ = kill(helper, Signal::SIGKILL);
            let _ = waitpid(helper, None);
        };
        let mut errf = std::fs::File::from(err_r);
        if !wait_readable(&errf, timeout) {
            kill_helper();
            return Err(eerr(format!(
                "{name}: exec {argv:?} did not start within {timeout:?}"
            )));
        }
        let mut msg = Vec::new();
        let _ = errf.read_to_end(&mut msg);
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, fd) in [(0usize, out_r), (1, serr_r)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = std::fs::File::from(fd).read_to_end(&mut v);
                let _ = tx.send((i, v));
            });
        }
        drop(tx);
        let exited = match &helper_fd {
            Some(fd) => wait_readable(fd, deadline.saturating_duration_since(Instant::now())),
            None => loop {
                match waitpid(helper, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Ok(WaitStatus::StillAlive) => break false,
                    _ => break true,
                }
            },
        };
        if !exited {
            kill_helper();
            return Err(eerr(format!(
                "{name}: exec {argv:?} timed out after {timeout:?}"
            )));
        }
        let code = match waitpid(helper, None) {
            Ok(WaitStatus::Exited(_, c)) => c,
            Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
            // Already reaped by the fallback loop above: its status is lost; report 255.
            _ => 255,
        };
        if !msg.is_empty() {
            let m = String::from_utf8_lossy(msg.strip_prefix(b"E").unwrap_or(&msg)).into_owned();
            return Err(eerr(format!("{name}: exec {argv:?}: {m}")));
        }
        let mut out = ExecOutput {
            exit_code: code,
            ..Default::default()
        };
        for _ in 0..2 {
            // Output pipes stay open while a background child of the command keeps them.
            match rx.recv_timeout(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(100)),
            ) {
                Ok((0, v)) => out.stdout = v,
                Ok((_, v)) => out.stderr = v,
                Err(_) => break,
            }
        }
        Ok(out)
    }
}

/// A container whose start is in progress (see `start_layers`).
struct PendingRun {
    tmp: PathBuf,
    in_flight: AtomicBool,
}

impl Teardown for PendingRun {
    fn teardown(&self) {
        let t = Instant::now();
        while self.in_flight.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// Ends the pending entry when the start returns, whichever way.
struct PendingGuard {
    pending: Arc<PendingRun>,
    key: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        cleanup::deregister(self.key);
        self.pending.in_flight.store(false, Ordering::SeqCst);
    }
}

impl Teardown for EmbeddedInner {
    fn teardown(&self) {
        let _ = self.remove();
    }
}

/// A container started by [`EmbeddedRuntime`].
pub struct EmbeddedContainer {
    inner: Arc<EmbeddedInner>,
    endpoints: HashMap<u16, SocketAddr>,
    started_in: Duration,
}

impl EmbeddedContainer {
    /// Host pid of the container's PID 1.
    pub fn init_pid(&self) -> i32 {
        self.inner.proc_.init_pid.as_raw()
    }

    /// How long `start` took until the command was exec'd.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The per-run temp dir on the host (removed by cleanup).
    pub fn temp_dir(&self) -> &Path {
        &self.inner.tmp
    }
}

impl Container for EmbeddedContainer {
    fn endpoint(&self, port: u16) -> Option<SocketAddr> {
        self.endpoints.get(&port).copied()
    }

    fn listening(&self, port: u16) -> Option<bool> {
        let net = lock(&self.inner.proc_.ns)
            .as_ref()
            .map(|ns| ns.net.clone())?;
        // Asked from inside the container's net ns, like the forwarder connects: loopback
        // refuses at once when nothing listens.
        std::thread::Builder::new()
            .name(format!("pare-listen-{port}"))
            .spawn(move || {
                setns(net.as_fd(), CloneFlags::CLONE_NEWNET).ok()?;
                match connect_loopback(port, Duration::from_secs(1)) {
                    Ok(_) => Some(true),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(false),
                    Err(_) => None,
                }
            })
            .ok()?
            .join()
            .ok()
            .flatten()
    }

    fn exec(&self, argv: &[String], timeout: Duration) -> Result<ExecOutput, RuntimeError> {
        self.inner.exec(argv, timeout)
    }

    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        Ok(self.inner.wait(timeout))
    }

    fn stop(&self, grace: Duration) -> Result<ExitInfo, RuntimeError> {
        if let Some(e) = self.inner.wait(Duration::ZERO) {
            return Ok(e);
        }
        self.inner.signal(Signal::SIGTERM);
        if let Some(e) = self.inner.wait(grace) {
            return Ok(e);
        }
        self.inner.signal(Signal::SIGKILL);
        self.inner.wait(Duration::from_secs(30)).ok_or_else(|| {
            eerr(format!(
                "{}: still running 30s after SIGKILL",
                self.inner.name
            ))
        })
    }

    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
        Ok((
            lock(&self.inner.stdout).clone(),
            lock(&self.inner.stderr).clone(),
        ))
    }

    fn cleanup(&self) -> Result<(), RuntimeError> {
        self.inner.remove()
    }
}

impl Drop for EmbeddedContainer {
    fn drop(&mut self) {
        let _ = self.inner.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_gets_docker_defaults_without_overriding() {
        let env = container_env(&["PATH=/app/bin".into(), "A=1".into(), "junk".into()], "h1");
        assert_eq!(env, ["PATH=/app/bin", "A=1", "HOSTNAME=h1"]);
        let env = container_env(&[], "h2");
        assert_eq!(
            env,
            [format!("PATH={DEFAULT_PATH}"), "HOSTNAME=h2".to_string()]
        );
        assert_eq!(
            with_home(&env, "/home/a").last().map(String::as_str),
            Some("HOME=/home/a")
        );
        let e2 = with_home(&["HOME=/x".to_string()], "/home/a");
        assert_eq!(e2, ["HOME=/x"]);
    }

    #[test]
    fn raw_wait_status_decoding() {
        assert_eq!(
            exit_from_raw(3 << 8),
            ExitInfo {
                code: 3,
                signal: None
            }
        );
        assert_eq!(
            exit_from_raw(9),
            ExitInfo {
                code: 137,
                signal: Some("SIGKILL".into())
            }
        );
        assert_eq!(
            exit_from_raw(15),
            ExitInfo {
                code: 143,
                signal: Some("SIGTERM".into())
            }
        );
    }
}
