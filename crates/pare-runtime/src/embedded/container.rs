//! A running container: signals, wait, `exec`, removal.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::ForkResult;
use pare_trace::ExitInfo;

use super::child::{
    become_user, child_run, close_fds_except, enter_workdir, exec_argv, limit_caps, pre_exec,
    redirect_stdio,
};
use super::forward::{Forwarder, connect_loopback};
use super::process::{ContainerProc, pipe, signal_proc, wait_readable};
use super::protocol::{Channel, DecodeError, RecvError, SetupError, SetupMsg, SetupOp, SetupPhase};
use super::runtime::with_home;
use super::syscall::{LinuxSyscall, Syscall};
use super::{cstring, eerr, eerr_os, io_err, lock};
use crate::cleanup::{Registration, Teardown};
use crate::{Container, ExecOutput, RuntimeError};

pub(super) struct EmbeddedInner {
    pub(super) name: String,
    pub(super) tmp: PathBuf,
    pub(super) proc_: ContainerProc,
    pub(super) env: Vec<String>,
    /// The user `exec` runs as (`None` = root, for sensor runs, like the docker runtime).
    pub(super) exec_user: Option<String>,
    pub(super) workdir: String,
    pub(super) caps: Vec<u32>,
    pub(super) stdout: Arc<Mutex<Vec<u8>>>,
    pub(super) stderr: Arc<Mutex<Vec<u8>>>,
    pub(super) forwarders: Mutex<Vec<Forwarder>>,
    pub(super) done: AtomicBool,
    /// Set when the removal has finished.
    pub(super) removed: AtomicBool,
    /// Its entry in the runtime's `Cancel`, dropped (deregistered) once it is removed.
    pub(super) registration: Mutex<Option<Registration>>,
    pub(super) sent: Mutex<Vec<Signal>>,
}

impl EmbeddedInner {
    fn signal(&self, sig: Signal) {
        if lock(&self.proc_.exit.exit).is_none() {
            lock(&self.sent).push(sig);
            signal_proc(
                &LinuxSyscall,
                self.proc_.init_pidfd.as_ref(),
                self.proc_.init_pid,
                sig,
            );
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
        drop(lock(&self.registration).take());
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
        let sys: &dyn Syscall = &LinuxSyscall;
        let (out_r, out_w) = pipe(sys)?;
        let (serr_r, serr_w) = pipe(sys)?;
        let (err_r, err_w) = pipe(sys)?;
        let err_w = Channel::new(err_w);
        // The child only enters the namespaces and execs (or _exits); see spawn_container.
        let helper = match sys
            .fork()
            .map_err(|e| eerr_os(format!("{name}: fork"), e))?
        {
            ForkResult::Child => child_run(sys, &err_w, || {
                let _ = sys.setpgid_self();
                for (fd, kind) in &ns.others {
                    sys.setns(fd.as_fd(), *kind)
                        .map_err(SetupError::sys(SetupOp::SetNs(kind.bits()), None))?;
                }
                // Single-threaded child; the grandchild execs or _exits.
                match sys
                    .fork()
                    .map_err(SetupError::sys(SetupOp::ForkInPidNs, None))?
                {
                    ForkResult::Child => child_run(sys, &err_w, || {
                        let _ = sys.set_pdeathsig(Signal::SIGKILL);
                        redirect_stdio(sys, &out_w, &serr_w)?;
                        limit_caps(sys, &self.caps)?;
                        let env = match &self.exec_user {
                            Some(u) => with_home(&self.env, &become_user(sys, u, &self.workdir)?),
                            None => {
                                // Root, in WORKDIR like `docker exec` (the container's cwd).
                                enter_workdir(sys, &self.workdir)?;
                                with_home(&self.env, "/root")
                            }
                        };
                        pre_exec(sys);
                        exec_argv(sys, &argvc, &env)
                    }),
                    ForkResult::Parent { child } => {
                        close_fds_except(sys, &[]);
                        let code = match sys.waitpid(child, false) {
                            Ok(WaitStatus::Exited(_, c)) => c,
                            Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
                            _ => 255,
                        };
                        sys.exit(code)
                    }
                }
            }),
            ForkResult::Parent { child } => child,
        };
        drop((out_w, serr_w, err_w));
        let deadline = Instant::now() + timeout;
        let helper_fd = sys.pidfd_open(helper);
        let kill_helper = || {
            // The whole process group: the command's own children die too.
            let _ = sys.killpg(helper, Signal::SIGKILL);
            let _ = sys.kill(helper, Signal::SIGKILL);
            let _ = sys.waitpid(helper, false);
        };
        let mut errc = Channel::new(err_r);
        if !wait_readable(sys, &errc, timeout) {
            kill_helper();
            return Err(eerr(format!(
                "{name}: exec {argv:?} did not start within {timeout:?}"
            )));
        }
        // The pipe ends at the exec (close-on-exec) or carries the helper's error first.
        let failed = match errc.recv(sys, timeout) {
            Ok(SetupMsg::Error(e)) => Some(e),
            Ok(m) => Some(SetupError::Garbled(DecodeError::Unexpected(m.tag()))),
            Err(RecvError::Garbled(d)) => Some(SetupError::Garbled(d)),
            Err(RecvError::Closed | RecvError::TimedOut) => None,
        };
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
            Some(fd) => wait_readable(sys, fd, deadline.saturating_duration_since(Instant::now())),
            None => loop {
                match sys.waitpid(helper, true) {
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
        let code = match sys.waitpid(helper, false) {
            Ok(WaitStatus::Exited(_, c)) => c,
            Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
            // Already reaped by the fallback loop above: its status is lost; report 255.
            _ => 255,
        };
        if let Some(error) = failed {
            return Err(RuntimeError::Setup {
                container: name.clone(),
                during: SetupPhase::ContainerExec(argv.to_vec()),
                error,
            });
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

impl Teardown for EmbeddedInner {
    fn teardown(&self) {
        let _ = self.remove();
    }
}

/// A container started by [`EmbeddedRuntime`](super::EmbeddedRuntime).
pub struct EmbeddedContainer {
    pub(super) inner: Arc<EmbeddedInner>,
    pub(super) endpoints: HashMap<u16, SocketAddr>,
    pub(super) started_in: Duration,
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
                LinuxSyscall
                    .setns(net.as_fd(), CloneFlags::CLONE_NEWNET)
                    .ok()?;
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
