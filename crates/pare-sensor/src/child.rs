//! The traced child: everything it needs is prepared before fork ([`ChildPlan`]); after fork
//! it makes only raw, async-signal-safe syscalls: ask to be traced, stop for the tracer, install
//! the seccomp filter, drop the sensor's capabilities, switch to the image user, enter WORKDIR,
//! exec.

use std::ffi::CString;

use nix::sys::ptrace;
use nix::sys::signal::{self, SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use pare_user::ResolvedUser;

use crate::FORWARDED;
use crate::error::SensorError;

/// Everything the child needs, prepared before fork so that the child only makes raw syscalls.
pub(crate) struct ChildPlan {
    pub(crate) program: CString,
    pub(crate) argv: Vec<CString>,
    pub(crate) envp: Vec<CString>,
    pub(crate) creds: Option<ResolvedUser>,
    pub(crate) workdir: Option<CString>,
    /// Install the trace-everything seccomp filter (see tracer.rs).
    pub(crate) seccomp: bool,
}

/// Forks the app process: it asks to be traced, stops itself so that the tracer can set its
/// options, then drops to the image user, enters WORKDIR and execs.
pub(crate) fn start_child(plan: &ChildPlan, blocked: &SigSet) -> Result<Pid, SensorError> {
    let mut argv: Vec<*const libc::c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.envp.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let groups: Vec<libc::gid_t> = plan
        .creds
        .as_ref()
        .map(|c| c.groups.clone())
        .unwrap_or_default();
    let blocked_raw: libc::sigset_t = *blocked.as_ref();

    // SAFETY: after fork the child only calls async-signal-safe raw syscalls (child_main) on
    // memory prepared before the fork, and never returns.
    match unsafe { nix::unistd::fork() }.map_err(|e| SensorError::sys("fork", e))? {
        ForkResult::Child => child_main(plan, &argv, &envp, &groups, &blocked_raw),
        ForkResult::Parent { child } => {
            match waitpid(child, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
                Ok(WaitStatus::Exited(_, code)) => {
                    return Err(SensorError::Command {
                        command: plan.program.to_string_lossy().into_owned(),
                        reason: format!("exited with {code} before exec"),
                        code: 2,
                    });
                }
                Ok(other) => {
                    return Err(SensorError::Usage(format!(
                        "unexpected child state {other:?}"
                    )));
                }
                Err(e) => return Err(SensorError::sys("waitpid", e)),
            }
            let opts = ptrace::Options::PTRACE_O_TRACESYSGOOD
                | ptrace::Options::PTRACE_O_TRACEFORK
                | ptrace::Options::PTRACE_O_TRACEVFORK
                | ptrace::Options::PTRACE_O_TRACECLONE
                | ptrace::Options::PTRACE_O_TRACEEXEC
                | ptrace::Options::PTRACE_O_TRACESECCOMP
                | ptrace::Options::PTRACE_O_EXITKILL;
            if let Err(e) = ptrace::setoptions(child, opts) {
                let _ = signal::kill(child, Signal::SIGKILL);
                return Err(SensorError::sys("ptrace(SETOPTIONS)", e));
            }
            ptrace::syscall(child, None).map_err(|e| SensorError::sys("ptrace(SYSCALL)", e))?;
            Ok(child)
        }
    }
}

/// Capabilities the runtimes add for the sensor only (ptrace, fanotify and the seccomp
/// filter): `docker run` gives the app neither, so the app must not have them either.
pub(crate) const SENSOR_CAPS: [u32; 2] =
    [19 /* CAP_SYS_PTRACE */, 21 /* CAP_SYS_ADMIN */];

/// In the app's process, before it drops to the image user and execs: removes the sensor's
/// extra capabilities from the bounding set (so no exec can regain them) and from the
/// effective, permitted and inheritable sets (a root app keeps the rest of the container's
/// set, exactly what `docker run` gives it), and clears the ambient set.
pub(crate) fn drop_sensor_caps() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    // SAFETY: raw prctl/capget/capset syscalls (async-signal-safe) on stack memory owned by
    // this function; failures only leave the caps as they were.
    unsafe {
        for cap in SENSOR_CAPS {
            libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        let mut hdr = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) != 0 {
            return;
        }
        for cap in SENSOR_CAPS {
            let (i, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
            data[i].effective &= !bit;
            data[i].permitted &= !bit;
            data[i].inheritable &= !bit;
        }
        hdr.version = VERSION_3;
        hdr.pid = 0;
        libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr());
    }
}

pub(crate) fn child_fail(msg: &[u8], code: i32) -> ! {
    // SAFETY: write(2) and _exit(2) are async-signal-safe; msg is a valid slice.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(code)
    }
}

pub(crate) fn child_main(
    plan: &ChildPlan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    groups: &[libc::gid_t],
    blocked: &libc::sigset_t,
) -> ! {
    // SAFETY: each call below is a raw async-signal-safe syscall wrapper; all pointers point into
    // CStrings and vectors owned by the parent's stack frame, which the forked child still has.
    unsafe {
        if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
            child_fail(b"pare-sensor: ptrace(PTRACE_TRACEME) failed (is ptrace allowed? add CAP_SYS_PTRACE)\n", 2);
        }
        libc::raise(libc::SIGSTOP);
        if plan.seccomp {
            // One instruction: SECCOMP_RET_TRACE for every syscall. No no_new_privs: without
            // CAP_SYS_ADMIN this fails (EACCES), the tracer sees that and traces every stop.
            let filter = [libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_TRACE,
            }];
            let prog = libc::sock_fprog {
                len: 1,
                filter: filter.as_ptr().cast_mut(),
            };
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            );
        }
        drop_sensor_caps();
        if let Some(c) = &plan.creds {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                child_fail(b"pare-sensor: setgroups failed\n", 2);
            }
            if libc::setgid(c.gid) != 0 {
                child_fail(b"pare-sensor: setgid failed\n", 2);
            }
            if libc::setuid(c.uid) != 0 {
                child_fail(b"pare-sensor: setuid failed\n", 2);
            }
        }
        if let Some(w) = &plan.workdir {
            if libc::chdir(w.as_ptr()) != 0 {
                child_fail(b"pare-sensor: chdir to WORKDIR failed\n", 2);
            }
        }
        for s in FORWARDED {
            libc::signal(s as libc::c_int, libc::SIG_DFL);
        }
        // Rust's runtime ignores SIGPIPE, and ignored signals survive exec: undo it for the app.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, blocked, std::ptr::null_mut());
        libc::execve(plan.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
        let errno = *libc::__errno_location();
        if errno == libc::ENOENT {
            child_fail(
                b"pare-sensor: exec failed: no such file or directory\n",
                127,
            )
        }
        child_fail(
            b"pare-sensor: exec failed: permission denied or bad format\n",
            126,
        )
    }
}
