//! The runtime: checks, the plan of one container, and `start_layers`.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::container::{EmbeddedContainer, EmbeddedInner};
use super::forward::Forwarder;
use super::mount::{overlay_options, overlay_safe};
use super::process::spawn_container;
use super::syscall::LinuxSyscall;
use super::{DEFAULT_PATH, cstring, eerr, eerr_os, io_err, lock};
use crate::cleanup::{Registration, Teardown};
use crate::{Cancel, Container, RunSource, RunSpec, Runtime, RuntimeError};

/// Docker's default capability set (by number): CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
/// SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
const DEFAULT_CAPS: &[u32] = &[0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;

/// The daemonless runtime.
#[derive(Debug, Clone)]
pub struct EmbeddedRuntime {
    pub(super) temp_root: PathBuf,
    /// Where its containers are registered for a Ctrl-C.
    cancel: Cancel,
}

impl EmbeddedRuntime {
    /// Needs root (mount and namespace creation) and /proc. Its containers are registered on
    /// `cancel`.
    pub fn new(cancel: &Cancel) -> Result<Self, RuntimeError> {
        Self::with_temp_root(std::env::temp_dir(), cancel)
    }

    /// Like [`new`](Self::new) with per-run temp dirs under `temp_root`.
    pub fn with_temp_root(
        temp_root: impl Into<PathBuf>,
        cancel: &Cancel,
    ) -> Result<Self, RuntimeError> {
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
            cancel: cancel.clone(),
        };
        rt.remove_stale();
        Ok(rt)
    }

    /// Removes per-run temp dirs left by pare processes that died without cleaning up (e.g.
    /// SIGKILL; their sandboxes die with them through the lifeline). Dirs of live processes
    /// are kept. Returns how many were removed.
    pub fn remove_stale(&self) -> usize {
        crate::remove_stale_dirs(&self.temp_root, "pare-run-")
    }
}

/// Everything the child processes need, prepared before `fork` (no parsing after it).
pub(super) struct Plan {
    pub(super) tmp: PathBuf,
    /// Name of the directory (in the new root) that holds the old root during setup.
    pub(super) oldroot: String,
    pub(super) overlay_opts: CString,
    pub(super) hostname: String,
    pub(super) argv: Vec<CString>,
    pub(super) env: Vec<String>,
    /// `Some(user)` when the runtime itself drops to the image user (no sensor).
    pub(super) user: Option<String>,
    pub(super) workdir: String,
    pub(super) sensor: Option<(PathBuf, PathBuf)>,
    pub(super) caps: Vec<u32>,
}

/// The environment for the container: the image's plus Docker's defaults (PATH, HOSTNAME).
pub(super) fn container_env(spec_env: &[String], hostname: &str) -> Vec<String> {
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

pub(super) fn with_home(env: &[String], home: &str) -> Vec<String> {
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
        let RunSource::Rootfs(rootfs) = &spec.source else {
            return Err(RuntimeError::UnsupportedSource {
                runtime: self.name(),
                given: spec.source.clone(),
            });
        };
        Ok(Box::new(
            self.start_layers(spec, std::slice::from_ref(rootfs))?,
        ))
    }
}

impl EmbeddedRuntime {
    /// Like [`Runtime::start`] with the root filesystem given as overlayfs lower layers, top
    /// first, instead of `spec.source` (which is not read): e.g. Docker's overlay2 `diff` dirs of a local image
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
        let overlay_opts = overlay_options(
            format!("lowerdir={lower},upperdir={tmp_s}/upper,workdir={tmp_s}/work"),
            layers.len(),
        )?;
        std::fs::create_dir_all(&self.temp_root).map_err(|e| io_err(&self.temp_root, e))?;
        // A Ctrl-C while this container is being set up (before it is registered below) must
        // not leave its temp dir: a pending entry removes it once the start has returned.
        let pending = Arc::new(PendingRun {
            tmp: tmp.clone(),
            in_flight: AtomicBool::new(true),
        });
        let pending_td: Arc<dyn Teardown> = pending.clone();
        let _pending = PendingGuard {
            pending: pending.clone(),
            registration: Some(self.cancel.register(&pending_td)),
        };
        if self.cancel.is_cancelled() {
            return Err(eerr(format!("interrupted: not starting container {name}")));
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        // Visible on the host only: the sandbox mounts a tmpfs over this dir in its own ns.
        if let Err(e) = crate::mark_owned(&tmp) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io_err(&tmp.join(crate::OWNER_FILE), e));
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
        let started = spawn_container(&LinuxSyscall, &plan, &name);
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
            registration: Mutex::new(None),
            sent: Mutex::new(Vec::new()),
        });
        let td: Arc<dyn Teardown> = inner.clone();
        *lock(&inner.registration) = Some(self.cancel.register(&td));
        // Ctrl-C clean-up began while this one started: it may already have drained the
        // registry, so tear this container down here rather than leave it behind.
        if self.cancel.is_cancelled() {
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
                    .map_err(|e| eerr_os(format!("{name}: port forwarder for {port}"), e))?;
                container.endpoints.insert(port, fwd.addr);
                lock(&container.inner.forwarders).push(fwd);
            }
        }
        Ok(container)
    }
}

/// A container whose start is in progress (see `start_layers`).
pub(super) struct PendingRun {
    pub(super) tmp: PathBuf,
    pub(super) in_flight: AtomicBool,
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
pub(super) struct PendingGuard {
    pub(super) pending: Arc<PendingRun>,
    pub(super) registration: Option<Registration>,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        drop(self.registration.take());
        self.pending.in_flight.store(false, Ordering::SeqCst);
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
}
