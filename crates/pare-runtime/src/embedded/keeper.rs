//! The keeper process: unshares the namespaces, forks init, reports its exit.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::ForkResult;

use super::child::{child_run, close_fds_except};
use super::init::init_main;
use super::process::SandboxEnds;
use super::protocol::{SetupError, SetupMsg, SetupOp};
use super::runtime::Plan;
use super::syscall::Syscall;

/// The namespaces of a container: its own mounts, pids, hostname, IPC and network.
pub(super) const NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWNS
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWNET);

/// The keeper: unshares the namespaces, forks init (PID 1), reports its pid and exit status.
pub(super) fn keeper_main(sys: &dyn Syscall, plan: &Plan, ends: &SandboxEnds) -> ! {
    // Own process group: a terminal's Ctrl-C reaches the caller (whose handler tears the
    // container down), not the sandbox processes directly.
    let _ = sys.setpgid_self();
    if let Err(e) = sys.unshare(NAMESPACES) {
        child_run(sys, &ends.ctl, || {
            Err(SetupError::Sys {
                op: SetupOp::Unshare,
                path: None,
                errno: e,
            })
        });
    }
    // This keeper process is single-threaded (forked); the child runs init_main and leaves
    // only through execve or _exit.
    let init = match sys.fork() {
        Ok(ForkResult::Child) => child_run(sys, &ends.ctl, || init_main(sys, plan, ends)),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => child_run(sys, &ends.ctl, || {
            Err(SetupError::Sys {
                op: SetupOp::ForkInit,
                path: None,
                errno: e,
            })
        }),
    };
    close_fds_except(sys, &[ends.ctl.as_raw_fd(), ends.life_r.as_raw_fd()]);
    let _ = ends.ctl.send(&SetupMsg::Pid(init.as_raw()));
    let pidfd = sys.pidfd_open(init);
    let mut lifeline_open = true;
    loop {
        let fds = [
            (pidfd.as_ref().map_or(-1, AsRawFd::as_raw_fd), libc::POLLIN),
            (
                if lifeline_open {
                    ends.life_r.as_raw_fd()
                } else {
                    -1
                },
                libc::POLLIN,
            ),
        ];
        let timeout = if pidfd.is_some() { -1 } else { 50 };
        let revents = sys.poll(&fds, timeout).unwrap_or_default();
        if lifeline_open && revents.get(1).is_some_and(|&r| r != 0) {
            // The caller is gone (or tore us down): take the whole pid namespace with us.
            lifeline_open = false;
            let _ = sys.kill(init, Signal::SIGKILL);
        }
        match sys.waitpid_raw(init, true) {
            Ok(Some(status)) => {
                let _ = ends.ctl.send(&SetupMsg::Exited(status));
                sys.exit(0);
            }
            Ok(None) | Err(Errno::EINTR) => {}
            Err(_) => sys.exit(1),
        }
    }
}
