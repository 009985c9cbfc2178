//! The one place of pare-sensor where `unsafe` code is allowed (the crate denies it
//! elsewhere): the raw syscalls the sensor makes. After `fork` the traced child may only make
//! async-signal-safe syscalls on memory prepared before the fork, so its whole sequence (ask to
//! be traced, stop, seccomp filter, drop the sensor's capabilities, switch user, chdir, exec)
//! lives here; so do the subreaper and signal-disposition calls of the sensor's main thread and
//! the reads of the kernel's `ptrace_syscall_info` union. Every block carries a `// SAFETY:`.

use nix::sys::signal::{self, SigHandler, Signal};
use nix::unistd::{ForkResult, Pid};

use crate::FORWARDED;
use crate::child::ChildPlan;

/// Forks the app process. In the child it runs the traced-child sequence and never returns;
/// in the parent it returns the child's pid.
pub(crate) fn fork_traced_child(
    plan: &ChildPlan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    groups: &[libc::gid_t],
    blocked: &libc::sigset_t,
) -> nix::Result<Pid> {
    // SAFETY: after fork the child only calls async-signal-safe raw syscalls (child_main) on
    // memory prepared before the fork, and never returns.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => child_main(plan, argv, envp, groups, blocked),
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Makes this process the subreaper of its descendants (`PR_SET_CHILD_SUBREAPER`), so the
/// app's orphans re-parent to the sensor as they would to a container's PID 1.
pub(crate) fn become_subreaper() -> nix::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    nix::errno::Errno::result(rc).map(drop)
}

/// Gives `sig` a handler that does nothing. The sensor keeps the forwarded signals blocked (a
/// sigwait thread takes them), so it never runs; its presence keeps PID 1 from dropping them.
pub(crate) fn keep_with_noop_handler(sig: Signal) {
    extern "C" fn noop(_: libc::c_int) {}
    // SAFETY: `noop` is async-signal-safe (does nothing).
    let _ = unsafe { signal::signal(sig, SigHandler::Handler(noop)) };
}

/// Restores the default disposition of `sig` (waitpid needs SIGCHLD not ignored).
pub(crate) fn default_disposition(sig: Signal) {
    // SAFETY: restoring the default disposition installs no handler code.
    let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
}

/// `op` of a syscall-entry stop in `ptrace_syscall_info`.
pub(crate) const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
/// `op` of a syscall-exit stop.
pub(crate) const PTRACE_SYSCALL_INFO_EXIT: u8 = 2;
/// `op` of a seccomp stop (`SECCOMP_RET_TRACE`).
pub(crate) const PTRACE_SYSCALL_INFO_SECCOMP: u8 = 3;

/// The number and arguments of the syscall at an entry or seccomp stop; `None` at other stops.
pub(crate) fn syscall_entry(info: &libc::ptrace_syscall_info) -> Option<(u64, [u64; 6])> {
    match info.op {
        PTRACE_SYSCALL_INFO_ENTRY => {
            // SAFETY: op == ENTRY, so the kernel filled the `entry` member of the union.
            let e = unsafe { info.u.entry };
            Some((e.nr, e.args))
        }
        PTRACE_SYSCALL_INFO_SECCOMP => {
            // SAFETY: op == SECCOMP, so the kernel filled the `seccomp` member.
            let e = unsafe { info.u.seccomp };
            Some((e.nr, e.args))
        }
        _ => None,
    }
}

/// The result of the syscall at an exit stop, as `(is_error, value)`; `None` at other stops.
pub(crate) fn syscall_exit(info: &libc::ptrace_syscall_info) -> Option<(bool, i64)> {
    if info.op != PTRACE_SYSCALL_INFO_EXIT {
        return None;
    }
    // SAFETY: op == EXIT, so the kernel filled the `exit` member of the union.
    let exit = unsafe { info.u.exit };
    Some((exit.is_error != 0, exit.sval))
}

/// Capabilities the runtimes add for the sensor only (ptrace, fanotify and the seccomp
/// filter): `docker run` gives the app neither, so the app must not have them either.
const SENSOR_CAPS: [u32; 2] = [19 /* CAP_SYS_PTRACE */, 21 /* CAP_SYS_ADMIN */];

/// In the app's process, before it drops to the image user and execs: removes the sensor's
/// extra capabilities from the bounding set (so no exec can regain them) and from the
/// effective, permitted and inheritable sets (a root app keeps the rest of the container's
/// set, exactly what `docker run` gives it), and clears the ambient set.
fn drop_sensor_caps() {
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

fn child_fail(msg: &[u8], code: i32) -> ! {
    // SAFETY: write(2) and _exit(2) are async-signal-safe; msg is a valid slice.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(code)
    }
}

fn child_main(
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
        if let Some(filter) = &plan.seccomp {
            // No no_new_privs: without CAP_SYS_ADMIN this fails (EACCES), the tracer sees
            // that and traces every stop.
            let prog = libc::sock_fprog {
                len: filter.len() as libc::c_ushort,
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
