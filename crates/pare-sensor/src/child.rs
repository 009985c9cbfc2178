//! The traced child: everything it needs is prepared before fork ([`ChildPlan`]); after fork
//! it makes only raw, async-signal-safe syscalls: ask to be traced, stop for the tracer, install
//! the seccomp filter, drop the sensor's capabilities, switch to the image user, enter WORKDIR,
//! exec.

use std::ffi::CString;

use nix::sys::ptrace;
use nix::sys::signal::{self, SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use pare_user::ResolvedUser;

use crate::error::SensorError;
use crate::sys;

/// Everything the child needs, prepared before fork so that the child only makes raw syscalls.
pub(crate) struct ChildPlan {
    pub(crate) program: CString,
    pub(crate) argv: Vec<CString>,
    pub(crate) envp: Vec<CString>,
    pub(crate) creds: Option<ResolvedUser>,
    pub(crate) workdir: Option<CString>,
    /// Install this seccomp filter (see filter.rs), when there is one.
    pub(crate) seccomp: Option<Vec<libc::sock_filter>>,
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

    let child = sys::fork_traced_child(plan, &argv, &envp, &groups, &blocked_raw)
        .map_err(|e| SensorError::sys("fork", e))?;
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
