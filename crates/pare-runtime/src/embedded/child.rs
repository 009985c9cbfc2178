//! What a forked child does last before `execve`: fds, caps, signals, umask, user, exec.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use super::DEFAULT_PATH;
use super::mount::mkdirs;
use super::protocol::{Channel, SetupError, SetupMsg, SetupOp};
use super::syscall::{Stdio, Syscall};

/// Closes every fd ≥ 3 except `keep` (in a forked child).
pub(super) fn close_fds_except(sys: &dyn Syscall, keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&f| f >= 3).collect();
    keep.sort_unstable();
    let mut lo: u32 = 3;
    for k in keep {
        let k = k as u32;
        if k > lo {
            sys.close_range(lo, k - 1, false);
        }
        lo = k + 1;
    }
    sys.close_range(lo, u32::MAX, false);
}

/// Marks every fd ≥ 3 close-on-exec (so the image never inherits fds of the caller).
pub(super) fn cloexec_all(sys: &dyn Syscall) {
    sys.close_range(3, u32::MAX, true);
}

/// Runs `body` in a forked child; its error (or panic) is sent on `ctl`, then exit 127.
pub(super) fn child_run(
    sys: &dyn Syscall,
    ctl: &Channel,
    body: impl FnOnce() -> Result<Infallible, SetupError>,
) -> ! {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let err = match r {
        Ok(Err(e)) => e,
        Ok(Ok(never)) => match never {},
        Err(_) => SetupError::Panicked,
    };
    let _ = ctl.send(&SetupMsg::Error(err));
    sys.exit(127)
}

/// stdin from /dev/null, stdout and stderr to the container's output pipes.
pub(super) fn redirect_stdio(
    sys: &dyn Syscall,
    out_w: &OwnedFd,
    serr_w: &OwnedFd,
) -> Result<(), SetupError> {
    let devnull = sys
        .open_read("/dev/null")
        .map_err(SetupError::io(SetupOp::OpenRead, "/dev/null"))?;
    for (fd, to, n) in [
        (devnull.as_fd(), Stdio::In, 0),
        (out_w.as_fd(), Stdio::Out, 1),
        (serr_w.as_fd(), Stdio::Err, 2),
    ] {
        sys.dup2_stdio(fd, to)
            .map_err(SetupError::sys(SetupOp::Dup2(n), None))?;
    }
    Ok(())
}

/// Drops every capability outside `keep` from the bounding set: after execve a root process
/// gets exactly the bounding set (inheritable is empty), so this is the container's cap set.
pub(super) fn limit_caps(sys: &dyn Syscall, keep: &[u32]) -> Result<(), SetupError> {
    for cap in 0..64u32 {
        if keep.contains(&cap) {
            continue;
        }
        match sys.capbset_drop(cap) {
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(errno) => {
                return Err(SetupError::Sys {
                    op: SetupOp::DropCapability(cap),
                    path: None,
                    errno,
                });
            }
        }
    }
    Ok(())
}

/// The last steps before exec, shared by init and `exec`: default signal dispositions and an
/// empty mask (Rust ignores SIGPIPE), docker's umask (runc's default 022, whatever the
/// caller's), and every inherited fd ≥ 3 close-on-exec.
pub(super) fn pre_exec(sys: &dyn Syscall) {
    sys.reset_signals();
    sys.umask(0o022);
    cloexec_all(sys);
}

/// Drops to the image user (as resolved from the container's own /etc/passwd) and enters the
/// working directory. Returns HOME. Must run after pivot_root / setns(mnt).
pub(super) fn become_user(
    sys: &dyn Syscall,
    user: &str,
    workdir: &str,
) -> Result<String, SetupError> {
    let passwd = sys.read_to_string("/etc/passwd").unwrap_or_default();
    let group = sys.read_to_string("/etc/group").unwrap_or_default();
    let u = pare_user::resolve(user, &passwd, &group).map_err(|e| SetupError::User {
        user: user.to_string(),
        reason: e.to_string(),
    })?;
    enter_workdir(sys, workdir)?;
    let groups: Vec<Gid> = u.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    sys.setgroups(&groups)
        .map_err(SetupError::sys(SetupOp::SetGroups, None))?;
    sys.setgid(Gid::from_raw(u.gid))
        .map_err(SetupError::sys(SetupOp::SetGid(u.gid), None))?;
    sys.setuid(Uid::from_raw(u.uid))
        .map_err(SetupError::sys(SetupOp::SetUid(u.uid), None))?;
    Ok(u.home)
}

/// Enters WORKDIR (made when missing, like docker), or `/` when it is empty.
pub(super) fn enter_workdir(sys: &dyn Syscall, workdir: &str) -> Result<(), SetupError> {
    let wd = if workdir.is_empty() { "/" } else { workdir };
    mkdirs(sys, wd)?;
    sys.chdir(wd)
        .map_err(SetupError::sys(SetupOp::Chdir, Some(wd)))
}

/// execvpe with PATH from the container env (looked up inside the container root).
pub(super) fn exec_argv(
    sys: &dyn Syscall,
    argv: &[CString],
    env: &[String],
) -> Result<Infallible, SetupError> {
    let Some(arg0) = argv.first() else {
        return Err(SetupError::EmptyCommand);
    };
    let envc: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_str()).ok())
        .collect();
    let a0 = arg0.to_bytes();
    let candidates: Vec<CString> = if a0.contains(&b'/') {
        vec![arg0.clone()]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .map(|d| if d.is_empty() { "." } else { d })
            .filter_map(|d| {
                let mut p = d.as_bytes().to_vec();
                p.push(b'/');
                p.extend_from_slice(a0);
                CString::new(p).ok()
            })
            .collect()
    };
    let mut last = Errno::ENOENT;
    for c in &candidates {
        let e = sys.execve(c, argv, &envc);
        if e != Errno::ENOENT || last == Errno::ENOENT {
            last = e;
        }
    }
    Err(SetupError::Exec {
        program: String::from_utf8_lossy(a0).into_owned(),
        errno: last,
    })
}
