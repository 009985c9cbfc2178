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
use super::runtime::Plan;
use super::syscall::Syscall;
use super::{eerr, lock};
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

pub(super) fn write_all_fd(fd: &OwnedFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

pub(super) fn pipe(sys: &dyn Syscall) -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    sys.pipe().map_err(|e| eerr(format!("pipe: {e}")))
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

/// Forks keeper and init, waits for init's setup, opens the namespace handles, lets init exec.
pub(super) fn spawn_container(
    sys: &'static dyn Syscall,
    plan: &Plan,
    name: &str,
) -> Result<(ContainerProc, Streams), RuntimeError> {
    let (info_r, info_w) = pipe(sys)?;
    let (err_r, err_w) = pipe(sys)?;
    let (go_r, go_w) = pipe(sys)?;
    let (life_r, life_w) = pipe(sys)?;
    let (out_r, out_w) = pipe(sys)?;
    let (serr_r, serr_w) = pipe(sys)?;

    // The child only runs the sandbox setup and always leaves through _exit or execve.
    let keeper = match sys.fork().map_err(|e| eerr(format!("{name}: fork: {e}")))? {
        ForkResult::Child => {
            keeper_main(sys, plan, &info_w, &err_w, &go_r, &life_r, &out_w, &serr_w)
        }
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
            let _ = sys.kill(p, Signal::SIGKILL);
        }
        let _ = sys.kill(keeper, Signal::SIGKILL);
        let _ = sys.waitpid(keeper, false);
        eerr(format!("{name}: {msg}"))
    };
    let mut pidb = [0u8; 4];
    if !wait_readable(sys, &info, SETUP_TIMEOUT) || info.read_exact(&mut pidb).is_err() {
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
    if !wait_readable(sys, &errf, SETUP_TIMEOUT) {
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
    let init_pidfd = sys.pidfd_open(init);
    let ns = open_ns(init).map_err(|e| fail(e, Some(init)))?;
    // Let init exec; then the error pipe closes (CLOEXEC) or carries the exec error.
    if nix::unistd::write(&go_w, b"g").is_err() {
        return Err(fail("sandbox init vanished before exec".into(), Some(init)));
    }
    drop(go_w);
    let mut rest = Vec::new();
    if !wait_readable(sys, &errf, SETUP_TIMEOUT) {
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
