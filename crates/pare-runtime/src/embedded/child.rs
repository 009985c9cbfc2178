//! What a forked child does last before `execve`: fds, caps, signals, umask, user, exec.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use super::DEFAULT_PATH;
use super::mount::{ctx, mkdirs};
use super::process::write_all_fd;

/// Closes every fd ≥ 3 except `keep` (in a forked child).
pub(super) fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&f| f >= 3).collect();
    keep.sort_unstable();
    let mut lo: u32 = 3;
    for k in keep {
        let k = k as u32;
        if k > lo {
            // SAFETY: close_range on fds this single-threaded child owns; none of them is
            // referenced again (the kept ones are outside the range).
            unsafe { libc::syscall(libc::SYS_close_range, lo, k - 1, 0) };
        }
        lo = k + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, lo, u32::MAX, 0) };
}

/// Marks every fd ≥ 3 close-on-exec (so the image never inherits fds of the caller).
pub(super) fn cloexec_all() {
    // SAFETY: CLOSE_RANGE_CLOEXEC (4) only sets a flag on fds; nothing is closed.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32) };
}

/// Ends a forked child without running any destructor or atexit handler of the parent.
pub(super) fn child_exit(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// Runs `body` in a forked child; any error is written to `err` as `E<message>`, then exit.
pub(super) fn child_run(err: &OwnedFd, body: impl FnOnce() -> Result<Infallible, String>) -> ! {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let msg = match r {
        Ok(Err(m)) => m,
        Ok(Ok(never)) => match never {},
        Err(_) => "panic in sandbox child".to_string(),
    };
    let mut b = vec![b'E'];
    b.extend_from_slice(msg.as_bytes());
    write_all_fd(err, &b);
    child_exit(127)
}

/// Drops every capability outside `keep` from the bounding set: after execve a root process
/// gets exactly the bounding set (inheritable is empty), so this is the container's cap set.
pub(super) fn limit_caps(keep: &[u32]) -> Result<(), String> {
    for cap in 0..64u32 {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: prctl(PR_CAPBSET_DROP, cap) takes integers only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r < 0 && Errno::last() != Errno::EINVAL {
            return Err(format!("drop capability {cap}: {}", Errno::last()));
        }
    }
    Ok(())
}

/// Resets signal dispositions and the mask inherited from the caller (Rust ignores SIGPIPE).
pub(super) fn reset_signals() {
    /// The kernel's `struct sigaction` (x86_64 layout: handler, flags, restorer, mask).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // Every signal up to SIGRTMAX, through the raw syscall: glibc's signal() refuses the
    // real-time signals it keeps for itself (32, 33), which a caller may have ignored, and
    // ignored signals survive exec (docker starts every app with none ignored).
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid signal number, a pointer to a properly laid out
        // struct on the stack, no old-action pointer, and the kernel's sigset size (8).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    // SAFETY: an empty sigset initialised by sigemptyset, then installed as the mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The umask every docker container starts with (runc's default), whatever the caller's.
pub(super) fn docker_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
}

/// Drops to the image user (as resolved from the container's own /etc/passwd) and enters the
/// working directory. Returns HOME. Must run after pivot_root / setns(mnt).
pub(super) fn become_user(user: &str, workdir: &str) -> Result<String, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let u = pare_user::resolve(user, &passwd, &group).map_err(|e| e.to_string())?;
    if !workdir.is_empty() {
        mkdirs(workdir)?;
        nix::unistd::chdir(workdir).map_err(ctx(|| format!("chdir {workdir}")))?;
    } else {
        nix::unistd::chdir("/").map_err(ctx(|| "chdir /".to_string()))?;
    }
    let groups: Vec<Gid> = u.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    nix::unistd::setgroups(&groups).map_err(ctx(|| "setgroups".to_string()))?;
    nix::unistd::setgid(Gid::from_raw(u.gid)).map_err(ctx(|| format!("setgid {}", u.gid)))?;
    nix::unistd::setuid(Uid::from_raw(u.uid)).map_err(ctx(|| format!("setuid {}", u.uid)))?;
    Ok(u.home)
}

/// execvpe with PATH from the container env (looked up inside the container root).
pub(super) fn exec_argv(argv: &[CString], env: &[String]) -> Result<Infallible, String> {
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
        match nix::unistd::execve(c, argv, &envc) {
            Err(e) => {
                if e != Errno::ENOENT || last == Errno::ENOENT {
                    last = e;
                }
            }
            Ok(never) => match never {},
        }
    }
    Err(format!("exec {}: {last}", String::from_utf8_lossy(a0)))
}
