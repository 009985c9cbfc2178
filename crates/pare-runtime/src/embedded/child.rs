//! What a forked child does last before `execve`: fds, caps, signals, umask, user, exec.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use super::DEFAULT_PATH;
use super::mount::{ctx, mkdirs};
use super::process::write_all_fd;
use super::syscall::Syscall;

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

/// Runs `body` in a forked child; any error is written to `err` as `E<message>`, then exit.
pub(super) fn child_run(
    sys: &dyn Syscall,
    err: &OwnedFd,
    body: impl FnOnce() -> Result<Infallible, String>,
) -> ! {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let msg = match r {
        Ok(Err(m)) => m,
        Ok(Ok(never)) => match never {},
        Err(_) => "panic in sandbox child".to_string(),
    };
    let mut b = vec![b'E'];
    b.extend_from_slice(msg.as_bytes());
    write_all_fd(err, &b);
    sys.exit(127)
}

/// Drops every capability outside `keep` from the bounding set: after execve a root process
/// gets exactly the bounding set (inheritable is empty), so this is the container's cap set.
pub(super) fn limit_caps(sys: &dyn Syscall, keep: &[u32]) -> Result<(), String> {
    for cap in 0..64u32 {
        if keep.contains(&cap) {
            continue;
        }
        match sys.capbset_drop(cap) {
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(format!("drop capability {cap}: {e}")),
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
pub(super) fn become_user(sys: &dyn Syscall, user: &str, workdir: &str) -> Result<String, String> {
    let passwd = sys.read_to_string("/etc/passwd").unwrap_or_default();
    let group = sys.read_to_string("/etc/group").unwrap_or_default();
    let u = pare_user::resolve(user, &passwd, &group).map_err(|e| e.to_string())?;
    if !workdir.is_empty() {
        mkdirs(sys, workdir)?;
        sys.chdir(workdir)
            .map_err(ctx(|| format!("chdir {workdir}")))?;
    } else {
        sys.chdir("/").map_err(ctx(|| "chdir /".to_string()))?;
    }
    let groups: Vec<Gid> = u.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    sys.setgroups(&groups)
        .map_err(ctx(|| "setgroups".to_string()))?;
    sys.setgid(Gid::from_raw(u.gid))
        .map_err(ctx(|| format!("setgid {}", u.gid)))?;
    sys.setuid(Uid::from_raw(u.uid))
        .map_err(ctx(|| format!("setuid {}", u.uid)))?;
    Ok(u.home)
}

/// execvpe with PATH from the container env (looked up inside the container root).
pub(super) fn exec_argv(
    sys: &dyn Syscall,
    argv: &[CString],
    env: &[String],
) -> Result<Infallible, String> {
    let Some(arg0) = argv.first() else {
        return Err("empty command".into());
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
    Err(format!("exec {}: {last}", String::from_utf8_lossy(a0)))
}
