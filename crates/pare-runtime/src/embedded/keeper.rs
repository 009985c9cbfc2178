//! The keeper process: unshares the namespaces, forks init, reports its exit.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid, fork};

use super::child::{child_exit, child_run, close_fds_except};
use super::init::init_main;
use super::process::{pidfd_open, write_all_fd};
use super::runtime::Plan;

/// The keeper: unshares the namespaces, forks init (PID 1), reports its pid and exit status.
pub(super) fn keeper_main(
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
