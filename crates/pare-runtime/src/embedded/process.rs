//! Process plumbing on the caller's side: pipes, pidfds, forking the keeper, the waiter.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};
use pare_trace::ExitInfo;

use super::keeper::keeper_main;
use super::protocol::{Channel, DecodeError, RecvError, SetupError, SetupMsg, SetupPhase};
use super::runtime::Plan;
use super::syscall::Syscall;
use super::{eerr, eerr_os, lock};
use crate::RuntimeError;

/// Bytes of stdout (and of stderr) kept per container; the rest is read and dropped.
const LOG_CAP: usize = 64 << 20;
/// How long namespace setup may take before the start is declared failed.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Namespace handles of a running container, opened right after setup (before exec).
pub(super) struct NsFds {
    pub(super) net: Arc<OwnedFd>,
    pub(super) others: Vec<(OwnedFd, CloneFlags)>,
}

/// The exit slot filled by the waiter thread.
#[derive(Default)]
pub(super) struct ExitSlot {
    pub(super) exit: Mutex<Option<ExitInfo>>,
    pub(super) cv: Condvar,
}

impl ExitSlot {
    pub(super) fn wait(&self, timeout: Duration) -> Option<ExitInfo> {
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

pub(super) struct ContainerProc {
    pub(super) init_pid: Pid,
    pub(super) init_pidfd: Option<OwnedFd>,
    /// Dropped by cleanup, which frees the namespaces (and the sandbox's mounts) at once.
    pub(super) ns: Mutex<Option<Arc<NsFds>>>,
    pub(super) lifeline: Mutex<Option<OwnedFd>>,
    pub(super) exit: Arc<ExitSlot>,
    pub(super) waiter: Mutex<Option<JoinHandle<()>>>,
}

pub(super) type Streams = (Arc<Mutex<Vec<u8>>>, Arc<Mutex<Vec<u8>>>);

pub(super) fn exit_info(status: WaitStatus) -> ExitInfo {
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
pub(super) fn exit_from_raw(raw: i32) -> ExitInfo {
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

pub(super) fn signal_proc(sys: &dyn Syscall, pidfd: Option<&OwnedFd>, pid: Pid, sig: Signal) {
    if let Some(fd) = pidfd {
        match sys.pidfd_send_signal(fd.as_fd(), sig) {
            Ok(()) | Err(Errno::ESRCH) => return,
            Err(_) => {}
        }
    }
    let _ = sys.kill(pid, sig);
}

/// Waits until `fd` is readable (or hung up), at most `timeout`. Returns false on timeout.
pub(super) fn wait_readable(sys: &dyn Syscall, fd: &impl AsRawFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        match sys.poll(&[(fd.as_raw_fd(), libc::POLLIN)], ms) {
            Ok(r) if r.iter().any(|&e| e != 0) => return true,
            Ok(_) => return false,
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}

pub(super) fn pipe(sys: &dyn Syscall) -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    sys.pipe().map_err(|e| eerr_os("pipe", e))
}

/// Reader thread collecting a pipe into a shared buffer.
pub(super) fn collect(fd: OwnedFd, buf: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
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

/// The fds the sandbox side holds, made by the caller before it forks the keeper.
pub(super) struct SandboxEnds {
    /// The setup channel, shared by keeper and init.
    pub(super) ctl: Channel,
    /// The lifeline's read end: the keeper kills init when the caller's end closes.
    pub(super) life_r: OwnedFd,
    /// init's close-on-exec end of the exec pipe: its closing tells the caller init exec'd.
    /// Never read: only held open.
    pub(super) _exec_w: OwnedFd,
    pub(super) out_w: OwnedFd,
    pub(super) serr_w: OwnedFd,
}

/// The caller's ends of the same channel and pipes.
pub(super) struct CallerEnds {
    pub(super) ctl: Channel,
    pub(super) life_w: OwnedFd,
    pub(super) exec_r: OwnedFd,
    pub(super) out_r: OwnedFd,
    pub(super) serr_r: OwnedFd,
}

/// The setup channel and the pipes of one container, both sides.
pub(super) fn make_ends(sys: &dyn Syscall) -> Result<(SandboxEnds, CallerEnds), RuntimeError> {
    let (ctl, ctl_child) = sys.socketpair().map_err(|e| eerr_os("socketpair", e))?;
    let (life_r, life_w) = pipe(sys)?;
    let (exec_r, exec_w) = pipe(sys)?;
    let (out_r, out_w) = pipe(sys)?;
    let (serr_r, serr_w) = pipe(sys)?;
    Ok((
        SandboxEnds {
            ctl: Channel::new(ctl_child),
            life_r,
            _exec_w: exec_w,
            out_w,
            serr_w,
        },
        CallerEnds {
            ctl: Channel::new(ctl),
            life_w,
            exec_r,
            out_r,
            serr_r,
        },
    ))
}

/// Forks keeper and init, waits for init's setup, opens the namespace handles, lets init exec.
pub(super) fn spawn_container(
    sys: &'static dyn Syscall,
    plan: &Plan,
    name: &str,
) -> Result<(ContainerProc, Streams), RuntimeError> {
    let (ends, mine) = make_ends(sys)?;
    let CallerEnds {
        mut ctl,
        life_w,
        exec_r,
        out_r,
        serr_r,
    } = mine;
    // The child only runs the sandbox setup and always leaves through _exit or execve.
    let keeper = match sys
        .fork()
        .map_err(|e| eerr_os(format!("{name}: fork"), e))?
    {
        ForkResult::Child => keeper_main(sys, plan, &ends),
        ForkResult::Parent { child } => child,
    };
    drop(ends);
    let streams: Streams = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let readers = [
        collect(out_r, streams.0.clone()),
        collect(serr_r, streams.1.clone()),
    ];
    let fail = |during: SetupPhase, why: Failure, init: Option<Pid>| {
        if let Some(p) = init {
            let _ = sys.kill(p, Signal::SIGKILL);
        }
        let _ = sys.kill(keeper, Signal::SIGKILL);
        let _ = sys.waitpid(keeper, false);
        why.into_error(name, during)
    };
    let init = match await_ready(sys, &mut ctl, SETUP_TIMEOUT) {
        Ok(v) => v,
        Err((why, init)) => return Err(fail(SetupPhase::Sandbox, why, init)),
    };
    let init_pidfd = sys.pidfd_open(init);
    let ns = open_ns(init).map_err(|e| fail(SetupPhase::Exec, Failure::Other(e), Some(init)))?;
    // Let init exec; then its end of the exec pipe closes (CLOEXEC), after an Error if the
    // exec failed.
    if ctl.send(&SetupMsg::Go).is_err() {
        return Err(fail(
            SetupPhase::Exec,
            Failure::Other("sandbox init vanished before exec".into()),
            Some(init),
        ));
    }
    if !wait_readable(sys, &exec_r, SETUP_TIMEOUT) {
        return Err(fail(
            SetupPhase::Exec,
            Failure::Other("exec did not happen in time".into()),
            Some(init),
        ));
    }
    drop(exec_r);
    // An exec error is queued before init exits; an Exited may follow (or be all there is,
    // when the command ran and ended already): keep that one for the waiter.
    let mut early_exit = None;
    loop {
        match ctl.recv(sys, Duration::ZERO) {
            Ok(SetupMsg::Error(e)) => {
                return Err(fail(SetupPhase::Exec, Failure::Child(e), Some(init)));
            }
            Ok(SetupMsg::Exited(raw)) => early_exit = Some(raw),
            Ok(_) => {}
            Err(_) => break,
        }
        if early_exit.is_some() {
            break;
        }
    }

    let exit = Arc::new(ExitSlot::default());
    let slot = exit.clone();
    let waiter = std::thread::spawn(move || {
        let raw = early_exit.or_else(|| {
            loop {
                match ctl.recv_blocking(sys) {
                    Ok(SetupMsg::Exited(raw)) => break Some(raw),
                    Ok(_) => {}
                    Err(_) => break None,
                }
            }
        });
        let keeper_status = loop {
            match sys.waitpid(keeper, false) {
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

/// Why a start failed, before it becomes a [`RuntimeError`].
#[derive(Debug)]
pub(super) enum Failure {
    /// A sandbox child reported this.
    Child(SetupError),
    /// The caller's own finding (time-out, closed channel, /proc).
    Other(String),
}

impl Failure {
    fn into_error(self, name: &str, during: SetupPhase) -> RuntimeError {
        match (self, during) {
            (Failure::Child(error), during) => RuntimeError::Setup {
                container: name.to_string(),
                during,
                error,
            },
            (Failure::Other(msg), _) => eerr(format!("{name}: {msg}")),
        }
    }
}

/// Reads the channel until the keeper has sent init's pid and init is ready (in either
/// order): returns init's pid. On failure, what went wrong and init's pid if known.
pub(super) fn await_ready(
    sys: &dyn Syscall,
    ctl: &mut Channel,
    timeout: Duration,
) -> Result<Pid, (Failure, Option<Pid>)> {
    let deadline = Instant::now() + timeout;
    let mut init = None;
    let mut ready = false;
    loop {
        if let (Some(pid), true) = (init, ready) {
            return Ok(pid);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match ctl.recv(sys, left) {
            Ok(SetupMsg::Pid(p)) => init = Some(Pid::from_raw(p)),
            Ok(SetupMsg::Ready) => ready = true,
            Ok(SetupMsg::Error(e)) => return Err((Failure::Child(e), init)),
            Ok(SetupMsg::Exited(_)) | Err(RecvError::Closed) => {
                let why = if init.is_some() {
                    "sandbox init exited during setup"
                } else {
                    "sandbox setup failed: the sandbox exited before it started init"
                };
                return Err((Failure::Other(why.into()), init));
            }
            Ok(m @ SetupMsg::Go) => {
                let e = SetupError::Garbled(DecodeError::Unexpected(m.tag()));
                return Err((Failure::Child(e), init));
            }
            Err(RecvError::TimedOut) => {
                return Err((
                    Failure::Other(format!("sandbox setup did not finish within {timeout:?}")),
                    init,
                ));
            }
            Err(RecvError::Garbled(d)) => {
                return Err((Failure::Child(SetupError::Garbled(d)), init));
            }
        }
    }
}

pub(super) fn open_ns(pid: Pid) -> Result<NsFds, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
