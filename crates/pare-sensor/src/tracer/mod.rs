//! The ptrace loop: follows every process and thread of the app, decodes the path arguments of
//! file syscalls at entry, and records their results at exit.
//!
//! Two modes, both with `PTRACE_GET_SYSCALL_INFO`:
//! - **seccomp** (default when the sensor has `CAP_SYS_ADMIN`): the app's first process installs a
//!   seccomp-bpf filter (`filter.rs`): `SECCOMP_RET_TRACE` for every syscall but the frequent
//!   path-less ones of `pare_trace::UNTRACED_SYSCALLS`, which it allows. So each other syscall
//!   stops once (`PTRACE_EVENT_SECCOMP`, which still gives its name for the seccomp profile);
//!   only file syscalls are resumed with `PTRACE_SYSCALL` to see their result, all others
//!   with `PTRACE_CONT`. The filter is installed without `no_new_privs`, so setuid programs in the
//!   image keep working; that needs `CAP_SYS_ADMIN`.
//! - **syscall**: plain `PTRACE_SYSCALL` stops at entry and exit of every syscall. Used when the
//!   filter cannot be installed (no `CAP_SYS_ADMIN`) or with `--no-seccomp`. The untraced
//!   calls stop here too but are not recorded, so that both modes report the same names.
//!
//! The tracer learns which mode it is in by watching the child's `seccomp(2)` call succeed.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::{self, Signal};
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use pare_trace::{AccessKind, ExecRecord, ExitInfo};

use crate::paths::{join_normalize, lossy};
use crate::recorder::{Outcome, Recorder};
use crate::sys::{
    self, PTRACE_SYSCALL_INFO_ENTRY, PTRACE_SYSCALL_INFO_EXIT, PTRACE_SYSCALL_INFO_SECCOMP,
};
use crate::syscalls;

mod decode;
#[allow(clippy::wildcard_imports)]
use decode::*;

const MAX_PATH: usize = 4096;
const MAX_ARGS: usize = 4096;

/// One path argument decoded at syscall entry.
#[derive(Debug)]
struct PathArg {
    path: Vec<u8>,
    kinds: Vec<AccessKind>,
    /// Added when the syscall succeeds (e.g. Create for mkdir).
    on_success: Option<AccessKind>,
    follow: bool,
    /// For O_CREAT opens: did the path exist before the call?
    existed: Option<bool>,
    /// For symlink/symlinkat: the link text.
    link_text: Option<Vec<u8>>,
}

impl PathArg {
    fn new(path: Vec<u8>, kind: AccessKind, follow: bool) -> Self {
        PathArg {
            path,
            kinds: vec![kind],
            on_success: None,
            follow,
            existed: None,
            link_text: None,
        }
    }
    fn creates(mut self) -> Self {
        self.on_success = Some(AccessKind::Create);
        self
    }
}

#[derive(Debug)]
struct Pending {
    nr: u64,
    paths: Vec<PathArg>,
    exec: Option<(Vec<u8>, Vec<String>)>,
}

#[derive(Debug, Default)]
struct Proc {
    exe: String,
    pending: Option<Pending>,
    /// Auto-attached child whose initial SIGSTOP has not been seen yet.
    fresh: bool,
    /// Has exec'ed the app (before that it is the sensor's own setup code).
    started: bool,
}

/// Shared with the signal thread and the fanotify thread.
#[derive(Debug, Default)]
pub struct Shared {
    pub main_pid: AtomicI32,
    pub main_alive: AtomicBool,
    /// A forwarded signal that arrived before the app was started.
    pub early_signal: AtomicI32,
    /// Every pid ever traced (fanotify filter when the sensor is not PID 1).
    pub pids: Mutex<HashSet<i32>>,
    /// Grows whenever the app does something new (a new path, syscall name or exec): the
    /// live activity the readiness wait reads (see `pare_trace::SensorActivity`).
    pub novelty: AtomicU64,
    /// `listen()` calls so far.
    pub listens: AtomicU64,
}

pub struct Tracer {
    pub rec: Recorder,
    pub execs: Vec<ExecRecord>,
    syscalls: HashSet<u64>,
    /// `pare_trace::UNTRACED_SYSCALLS`' numbers, sorted: never recorded.
    untraced: Vec<u64>,
    procs: HashMap<i32, Proc>,
    main_pid: i32,
    shared: Arc<Shared>,
    pub stops: u64,
    pub processes: u64,
    pub notices: Vec<String>,
    foreign_arch: bool,
    /// The seccomp filter is in place: resume with PTRACE_CONT unless a result is awaited.
    pub seccomp: bool,
}

impl Tracer {
    pub fn new(main_pid: i32, shared: Arc<Shared>) -> Self {
        let mut procs = HashMap::new();
        procs.insert(
            main_pid,
            Proc {
                exe: String::new(),
                ..Proc::default()
            },
        );
        if let Ok(mut p) = shared.pids.lock() {
            p.insert(main_pid);
        }
        Tracer {
            rec: Recorder::default(),
            execs: Vec::new(),
            syscalls: HashSet::new(),
            untraced: crate::filter::untraced_numbers(),
            procs,
            main_pid,
            shared,
            stops: 0,
            processes: 1,
            notices: Vec::new(),
            foreign_arch: false,
            seccomp: false,
        }
    }

    /// Updates the live novelty count (paths + syscall names + execs: all only grow).
    fn publish(&self) {
        let n = self.rec.files.len() + self.syscalls.len() + self.execs.len();
        self.shared.novelty.store(n as u64, Ordering::Relaxed);
    }

    /// Names of the syscalls seen, sorted by the caller.
    pub fn syscall_names(&self) -> impl Iterator<Item = String> + '_ {
        self.syscalls
            .iter()
            .map(|nr| syscalls::name(*nr).into_owned())
    }

    /// Runs until the main process has exited and every other traced process is gone.
    pub fn run(&mut self) -> ExitInfo {
        let mut main_exit: Option<ExitInfo> = None;
        let mut deadline: Option<Instant> = None;
        loop {
            let flags = if main_exit.is_some() {
                WaitPidFlag::__WALL | WaitPidFlag::WNOHANG
            } else {
                WaitPidFlag::__WALL
            };
            let status = match waitpid(None::<Pid>, Some(flags)) {
                Ok(s) => s,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => break,
                Err(e) => {
                    self.notices.push(format!("waitpid: {e}"));
                    break;
                }
            };
            match status {
                WaitStatus::StillAlive => {
                    // Only untraced processes (e.g. re-parented `docker exec` orphans) may be
                    // left: the kernel ends them with PID 1; nothing more to record.
                    if self.procs.is_empty() {
                        break;
                    }
                    if deadline.is_some_and(|d| Instant::now() > d) {
                        self.notices.push(format!(
                            "{} traced processes still running 3 s after the app exited",
                            self.procs.len()
                        ));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                WaitStatus::PtraceSyscall(pid) => {
                    self.stops += 1;
                    self.on_syscall(pid);
                    self.publish();
                    self.resume(pid, None);
                }
                WaitStatus::PtraceEvent(pid, _sig, libc::PTRACE_EVENT_SECCOMP) => {
                    self.stops += 1;
                    self.on_syscall(pid);
                    self.publish();
                    self.resume(pid, None);
                }
                WaitStatus::PtraceEvent(pid, _sig, event) => {
                    self.on_event(pid, event);
                    self.resume(pid, None);
                }
                WaitStatus::Stopped(pid, sig) => self.on_signal_stop(pid, sig),
                WaitStatus::Exited(pid, code) => {
                    if self.on_exit(pid) {
                        main_exit = Some(ExitInfo { code, signal: None });
                    }
                }
                WaitStatus::Signaled(pid, sig, _core) => {
                    if self.on_exit(pid) {
                        main_exit = Some(ExitInfo {
                            code: 128 + sig as i32,
                            signal: Some(sig.as_str().to_string()),
                        });
                    }
                }
                WaitStatus::Continued(_) => {}
            }
            if main_exit.is_some() && deadline.is_none() {
                // The app is done: like a container's init, take everything else down with it.
                self.shared.main_alive.store(false, Ordering::SeqCst);
                for pid in self.procs.keys() {
                    let _ = signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
                }
                deadline = Some(Instant::now() + Duration::from_secs(3));
            }
        }
        if self.foreign_arch {
            self.notices
                .push("a process made non-native (32-bit) syscalls; those were not decoded".into());
        }
        main_exit.unwrap_or(ExitInfo {
            code: 2,
            signal: None,
        })
    }

    /// Resumes a stopped tracee: to its next syscall stop, or (seccomp mode, no result awaited)
    /// until the filter stops it again.
    fn resume(&self, pid: Pid, sig: Option<Signal>) {
        let awaiting = self
            .procs
            .get(&pid.as_raw())
            .is_some_and(|p| p.pending.is_some());
        // ESRCH: the tracee was killed meanwhile; its exit is reported by waitpid.
        if self.seccomp && !awaiting {
            let _ = ptrace::cont(pid, sig);
        } else {
            let _ = ptrace::syscall(pid, sig);
        }
    }

    fn on_exit(&mut self, pid: Pid) -> bool {
        self.procs.remove(&pid.as_raw());
        pid.as_raw() == self.main_pid
    }

    fn on_signal_stop(&mut self, pid: Pid, sig: Signal) {
        let raw = pid.as_raw();
        match self.procs.get_mut(&raw) {
            None if sig == Signal::SIGSTOP => {
                // A new child whose fork event has not been seen yet.
                let exe = proc_exe(raw);
                self.add_proc(
                    raw,
                    Proc {
                        exe,
                        started: true,
                        ..Proc::default()
                    },
                );
                self.resume(pid, None);
            }
            Some(p) if p.fresh && sig == Signal::SIGSTOP => {
                p.fresh = false;
                self.resume(pid, None);
            }
            _ => {
                // Group-stop (no siginfo) is resumed; real signals are delivered.
                if ptrace::getsiginfo(pid).is_err() {
                    self.resume(pid, None);
                } else {
                    self.resume(pid, Some(sig));
                }
            }
        }
    }

    fn add_proc(&mut self, pid: i32, p: Proc) {
        self.processes += 1;
        self.procs.insert(pid, p);
        if let Ok(mut s) = self.shared.pids.lock() {
            s.insert(pid);
        }
    }

    fn on_event(&mut self, pid: Pid, event: i32) {
        let raw = pid.as_raw();
        match event {
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                let Ok(new) = ptrace::getevent(pid) else {
                    return;
                };
                let new = new as i32;
                let (exe, started) = self
                    .procs
                    .get(&raw)
                    .map(|p| (p.exe.clone(), p.started))
                    .unwrap_or_default();
                match self.procs.get_mut(&new) {
                    Some(p) => {
                        p.exe = exe;
                        p.started = started;
                    }
                    None => self.add_proc(
                        new,
                        Proc {
                            exe,
                            started,
                            fresh: true,
                            pending: None,
                        },
                    ),
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                let former = ptrace::getevent(pid).map(|f| f as i32).unwrap_or(raw);
                if former != raw {
                    if let Some(old) = self.procs.remove(&former) {
                        let p = self.procs.entry(raw).or_default();
                        p.pending = old.pending;
                    }
                }
                self.on_exec(raw);
            }
            _ => {}
        }
    }

    fn on_exec(&mut self, pid: i32) {
        let exe = proc_exe(pid);
        let pending = self.procs.get_mut(&pid).and_then(|p| {
            p.exe = exe.clone();
            p.started = true;
            p.pending.take()
        });
        let name = syscalls::name(
            pending
                .as_ref()
                .map(|p| p.nr)
                .unwrap_or(libc::SYS_execve as u64),
        )
        .into_owned();
        if let Some(nr) = pending.as_ref().map(|p| p.nr) {
            self.syscalls.insert(nr);
        }
        if let Some((path, argv)) = pending.and_then(|p| p.exec) {
            self.execs.push(ExecRecord {
                pid,
                path: lossy(&path),
                argv,
            });
            self.rec.record(
                &path,
                &[AccessKind::Exec],
                &name,
                &exe,
                Outcome::Found,
                true,
            );
            if let Some(interp) = shebang(&path) {
                self.rec.record(
                    &interp,
                    &[AccessKind::Exec],
                    &name,
                    &exe,
                    Outcome::Found,
                    true,
                );
            }
        }
        // A memfd or deleted binary is not a file of the image.
        if exe.starts_with('/') && !exe.ends_with(" (deleted)") {
            self.rec.record(
                exe.as_bytes(),
                &[AccessKind::Exec],
                &name,
                &exe,
                Outcome::Found,
                true,
            );
            if let Some(interp) = elf_interp(exe.as_bytes()) {
                self.rec.record(
                    &interp,
                    &[AccessKind::Exec],
                    &name,
                    &exe,
                    Outcome::Found,
                    true,
                );
            }
        }
    }

    fn on_syscall(&mut self, pid: Pid) {
        let raw = pid.as_raw();
        let info = match ptrace::syscall_info(pid) {
            Ok(i) => i,
            Err(_) => return,
        };
        match info.op {
            PTRACE_SYSCALL_INFO_ENTRY | PTRACE_SYSCALL_INFO_SECCOMP => {
                if info.arch != syscalls::NATIVE_ARCH {
                    self.foreign_arch = true;
                    return;
                }
                let Some((nr, args)) = sys::syscall_entry(&info) else {
                    return;
                };
                let awaiting = self
                    .procs
                    .get(&raw)
                    .and_then(|p| p.pending.as_ref())
                    .map(|q| q.nr);
                if info.op == PTRACE_SYSCALL_INFO_ENTRY && awaiting == Some(nr) {
                    // Kernels before 4.8 report syscall-entry after the seccomp stop: same call.
                    return;
                }
                let started = self.procs.get(&raw).is_none_or(|p| p.started);
                let is_exec = nr == libc::SYS_execve as u64 || nr == libc::SYS_execveat as u64;
                if !started {
                    // The sensor's own setup code in the child: only its seccomp(2) (to learn
                    // the mode) and the exec of the app matter.
                    if nr == libc::SYS_seccomp as u64 {
                        if let Some(p) = self.procs.get_mut(&raw) {
                            p.pending = Some(Pending {
                                nr,
                                paths: Vec::new(),
                                exec: None,
                            });
                        }
                        return;
                    }
                    if !is_exec {
                        return;
                    }
                }
                if started && self.untraced.binary_search(&nr).is_err() {
                    self.syscalls.insert(nr);
                    if nr == libc::SYS_listen as u64 {
                        self.shared.listens.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let mut pending = decode(raw, nr, &args);
                if let Some(errno) = pending.as_ref().and_then(bound_to_fail) {
                    // Recorded now, without waiting for the exit stop: an Erlang VM's code
                    // path search opens tens of thousands of absent files, a JVM's realpath()
                    // reads as many links that are none.
                    let exe = match self.procs.get(&raw) {
                        Some(p) => p.exe.clone(),
                        None => proc_exe(raw),
                    };
                    if let Some(p) = pending.take() {
                        self.on_result(&exe, p, true, -i64::from(errno));
                    }
                }
                if let Some(p) = self.procs.get_mut(&raw) {
                    p.pending = pending;
                } else if let Some(pending) = pending {
                    let exe = proc_exe(raw);
                    self.add_proc(
                        raw,
                        Proc {
                            exe,
                            started: true,
                            pending: Some(pending),
                            fresh: false,
                        },
                    );
                }
            }
            PTRACE_SYSCALL_INFO_EXIT => {
                let Some(p) = self.procs.get_mut(&raw) else {
                    return;
                };
                let Some(pending) = p.pending.take() else {
                    return;
                };
                let exe = p.exe.clone();
                let started = p.started;
                let Some((is_error, sval)) = sys::syscall_exit(&info) else {
                    return;
                };
                if !started && pending.nr == libc::SYS_seccomp as u64 {
                    if !is_error {
                        self.seccomp = true;
                    } else {
                        self.notices.push(format!(
                            "seccomp filter not installed (errno {}); tracing every syscall entry and exit",
                            -sval
                        ));
                    }
                    return;
                }
                self.on_result(&exe, pending, is_error, sval);
            }
            _ => {}
        }
    }

    fn on_result(&mut self, exe: &str, pending: Pending, is_error: bool, sval: i64) {
        let outcome = if !is_error {
            Outcome::Found
        } else if sval == -(libc::ENOENT as i64) || sval == -(libc::ENOTDIR as i64) {
            Outcome::Missing
        } else if sval == -(libc::EEXIST as i64) {
            Outcome::Found
        } else {
            Outcome::Unknown
        };
        let name = syscalls::name(pending.nr);
        let renames = pending.nr == libc::SYS_renameat2 as u64 || is_rename(pending.nr);
        if renames && !is_error {
            self.rec.invalidate_all();
        }
        for mut arg in pending.paths {
            if !is_error {
                if let Some(k) = arg.on_success {
                    if k != AccessKind::Create || arg.existed != Some(true) {
                        arg.kinds.push(k);
                    }
                    self.rec.invalidate(&arg.path);
                }
            }
            if arg.kinds.is_empty() {
                // A create-type call that failed still probed the path.
                arg.kinds.push(AccessKind::Stat);
            }
            self.rec
                .record(&arg.path, &arg.kinds, &name, exe, outcome, arg.follow);
            if let (false, Some(t)) = (is_error, &arg.link_text) {
                self.rec.set_symlink(&arg.path, t);
            }
        }
        // A failed exec: the path was tried (PATH search) and is recorded with its outcome.
        if let Some((path, _)) = pending.exec {
            self.rec
                .record(&path, &[AccessKind::Exec], &name, exe, outcome, true);
        }
    }
}
