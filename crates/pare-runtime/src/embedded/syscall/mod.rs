//! The one seam between the embedded runtime and the kernel.
//!
//! Every raw system call of the sandbox (fork, namespaces, mounts, pivot_root, credentials,
//! capabilities, signals, pipes, polling, exec) and every file operation of the container
//! setup goes through [`Syscall`]. [`LinuxSyscall`] is the real implementation and holds
//! every `unsafe` block of this crate; `test::RecordingSyscall` records the calls in order,
//! so the mount order and the setup protocol are unit-tested without root. The model is
//! youki's `libcontainer::syscall` (a trait, a Linux implementation, a test helper).

// The only place of pare-runtime where unsafe code is allowed (the crate denies it).
#[allow(unsafe_code)]
mod linux;
#[cfg(test)]
pub(super) mod test;

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Gid, Pid, Uid};

pub(crate) use linux::LinuxSyscall;

/// What a path names, for the setup's "create it unless something is there" decisions
/// (`lstat`: a symlink is not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Dir,
    Other,
}

/// The step of [`Syscall::loopback_up`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoopbackStep {
    Socket,
    GetFlags,
    SetUp,
}

/// One of the three standard streams, for [`Syscall::dup2_stdio`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdio {
    In,
    Out,
    Err,
}

/// The kernel as the embedded runtime uses it. `Sync` so one instance serves every thread.
pub(crate) trait Syscall: Sync {
    // --- processes ---
    /// `fork(2)`. The child must leave only through [`exit`](Self::exit) or `execve`.
    fn fork(&self) -> nix::Result<ForkResult>;
    /// `_exit(2)`: ends a forked child without running the parent's destructors.
    fn exit(&self, code: i32) -> !;
    /// A pidfd for `pid`, when the kernel has pidfds.
    fn pidfd_open(&self, pid: Pid) -> Option<OwnedFd>;
    /// `pidfd_send_signal(2)`.
    fn pidfd_send_signal(&self, pidfd: BorrowedFd<'_>, sig: Signal) -> nix::Result<()>;
    fn kill(&self, pid: Pid, sig: Signal) -> nix::Result<()>;
    fn killpg(&self, pgrp: Pid, sig: Signal) -> nix::Result<()>;
    /// `waitpid(2)`, decoded; `nohang` gives `StillAlive` for a running child.
    fn waitpid(&self, pid: Pid, nohang: bool) -> nix::Result<WaitStatus>;
    /// `waitpid(2)` returning the raw status (`None`: still running, with `nohang`).
    fn waitpid_raw(&self, pid: Pid, nohang: bool) -> nix::Result<Option<i32>>;
    /// `poll(2)` on `(fd, events)` pairs (a negative fd is skipped); returns the revents.
    fn poll(&self, fds: &[(RawFd, i16)], timeout_ms: i32) -> nix::Result<Vec<i16>>;
    /// A close-on-exec pipe: (read end, write end).
    fn pipe(&self) -> nix::Result<(OwnedFd, OwnedFd)>;
    /// A close-on-exec `AF_UNIX` `SOCK_SEQPACKET` socket pair (message boundaries kept).
    fn socketpair(&self) -> nix::Result<(OwnedFd, OwnedFd)>;
    /// `close_range(first, last)`, or with `cloexec` only marks them close-on-exec.
    fn close_range(&self, first: u32, last: u32, cloexec: bool);
    /// Puts the calling process into a new process group of its own.
    fn setpgid_self(&self) -> nix::Result<()>;
    /// `PR_SET_PDEATHSIG`: the calling process gets `sig` when its parent dies.
    fn set_pdeathsig(&self, sig: Signal) -> nix::Result<()>;

    // --- namespaces ---
    fn unshare(&self, flags: CloneFlags) -> nix::Result<()>;
    /// `setns(2)`; for a net ns only the calling thread moves.
    fn setns(&self, fd: BorrowedFd<'_>, kind: CloneFlags) -> nix::Result<()>;
    fn sethostname(&self, name: &str) -> nix::Result<()>;
    /// Brings up `lo` in the calling thread's net ns; the error names the failing step.
    fn loopback_up(&self) -> Result<(), (LoopbackStep, Errno)>;

    // --- mounts ---
    fn mount(
        &self,
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&CStr>,
    ) -> nix::Result<()>;
    /// `umount2(target, MNT_DETACH)`.
    fn umount_detach(&self, target: &str) -> nix::Result<()>;
    fn pivot_root(&self, new_root: &str, put_old: &str) -> nix::Result<()>;
    fn chdir(&self, dir: &str) -> nix::Result<()>;

    // --- credentials, capabilities, signals, exec ---
    fn setgroups(&self, groups: &[Gid]) -> nix::Result<()>;
    fn setgid(&self, gid: Gid) -> nix::Result<()>;
    fn setuid(&self, uid: Uid) -> nix::Result<()>;
    /// `PR_CAPBSET_DROP` for one capability number.
    fn capbset_drop(&self, cap: u32) -> nix::Result<()>;
    /// Every signal back to its default disposition and an empty signal mask.
    fn reset_signals(&self);
    fn umask(&self, mode: u32);
    fn dup2_stdio(&self, fd: BorrowedFd<'_>, to: Stdio) -> nix::Result<()>;
    /// `execve(2)`: returns only on failure.
    fn execve(&self, path: &CStr, argv: &[CString], env: &[CString]) -> Errno;

    // --- files of the container setup ---
    /// `lstat`: what `path` is, `None` when nothing is there.
    fn file_kind(&self, path: &str) -> Option<FileKind>;
    /// Whether `path` is a directory with no entries, or missing/unreadable.
    fn dir_is_empty(&self, path: &str) -> bool;
    fn mkdir(&self, path: &str, mode: u32) -> io::Result<()>;
    fn mkdir_all(&self, path: &str) -> io::Result<()>;
    fn remove_dir(&self, path: &str) -> io::Result<()>;
    fn remove_file(&self, path: &str) -> io::Result<()>;
    /// Creates an empty file (mode 0644) unless something exists.
    fn create_file(&self, path: &str) -> io::Result<()>;
    /// Creates `path` (it must not exist, mode 0644) holding `content`.
    fn write_new_file(&self, path: &str, content: &[u8]) -> io::Result<()>;
    fn symlink(&self, target: &str, link: &str) -> io::Result<()>;
    fn read_to_string(&self, path: &str) -> io::Result<String>;
    /// An `O_PATH` fd (for a later bind from `/proc/self/fd/N`).
    fn open_path(&self, path: &Path) -> io::Result<OwnedFd>;
    /// A read-only fd (e.g. `/dev/null` for stdin).
    fn open_read(&self, path: &str) -> io::Result<OwnedFd>;
}
