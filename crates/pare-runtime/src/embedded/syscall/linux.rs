//! [`LinuxSyscall`]: the real kernel. Every `unsafe` block of pare-runtime is in this file.

use std::ffi::{CStr, CString};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::{FileKind, LoopbackStep, Stdio, Syscall};

/// The Linux kernel, through `nix` and (where nix has no wrapper) `libc`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn fork(&self) -> nix::Result<ForkResult> {
        // SAFETY: every caller's child only runs the sandbox setup and leaves through
        // `exit` (_exit) or execve; it never returns into the caller's code, so no destructor
        // of the parent's state runs twice. Allocation after fork is safe with glibc, which
        // resets its malloc locks in the child; no other lock of the caller is taken.
        unsafe { nix::unistd::fork() }
    }

    fn exit(&self, code: i32) -> ! {
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(code) }
    }

    fn pidfd_open(&self, pid: Pid) -> Option<OwnedFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory
        // involved.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this fd to us; nobody else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    fn pidfd_send_signal(&self, pidfd: BorrowedFd<'_>, sig: Signal) -> nix::Result<()> {
        // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, a null siginfo and
        // no flags; the kernel reads no memory from us.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                sig as i32,
                std::ptr::null::<u8>(),
                0,
            )
        };
        if r == 0 { Ok(()) } else { Err(Errno::last()) }
    }

    fn kill(&self, pid: Pid, sig: Signal) -> nix::Result<()> {
        nix::sys::signal::kill(pid, sig)
    }

    fn killpg(&self, pgrp: Pid, sig: Signal) -> nix::Result<()> {
        nix::sys::signal::killpg(pgrp, sig)
    }

    fn waitpid(&self, pid: Pid, nohang: bool) -> nix::Result<WaitStatus> {
        nix::sys::wait::waitpid(pid, nohang.then_some(WaitPidFlag::WNOHANG))
    }

    fn waitpid_raw(&self, pid: Pid, nohang: bool) -> nix::Result<Option<i32>> {
        let mut status = 0;
        let flags = if nohang { libc::WNOHANG } else { 0 };
        // SAFETY: waitpid on our own child with a valid out pointer.
        let r = unsafe { libc::waitpid(pid.as_raw(), &mut status, flags) };
        match r {
            r if r < 0 => Err(Errno::last()),
            0 => Ok(None),
            _ => Ok(Some(status)),
        }
    }

    fn poll(&self, fds: &[(RawFd, i16)], timeout_ms: i32) -> nix::Result<Vec<i16>> {
        let mut p: Vec<libc::pollfd> = fds
            .iter()
            .map(|&(fd, events)| libc::pollfd {
                fd,
                events,
                revents: 0,
            })
            .collect();
        // SAFETY: `p` is a valid array of `p.len()` pollfds (negative fds are ignored).
        let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
        if r < 0 {
            return Err(Errno::last());
        }
        Ok(p.iter().map(|p| p.revents).collect())
    }

    fn pipe(&self) -> nix::Result<(OwnedFd, OwnedFd)> {
        nix::unistd::pipe2(OFlag::O_CLOEXEC)
    }

    fn socketpair(&self) -> nix::Result<(OwnedFd, OwnedFd)> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType};
        nix::sys::socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
    }

    fn close_range(&self, first: u32, last: u32, cloexec: bool) {
        let flags: u32 = if cloexec { 4 } else { 0 }; // CLOSE_RANGE_CLOEXEC
        // SAFETY: close_range on fds of this single-threaded child, none of which is
        // referenced again (callers keep the fds they still use outside the range); with
        // CLOSE_RANGE_CLOEXEC only a flag is set and nothing is closed.
        unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    }

    fn setpgid_self(&self) -> nix::Result<()> {
        nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))
    }

    fn set_pdeathsig(&self, sig: Signal) -> nix::Result<()> {
        nix::sys::prctl::set_pdeathsig(sig)
    }

    fn unshare(&self, flags: CloneFlags) -> nix::Result<()> {
        nix::sched::unshare(flags)
    }

    fn setns(&self, fd: BorrowedFd<'_>, kind: CloneFlags) -> nix::Result<()> {
        nix::sched::setns(fd, kind)
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        nix::unistd::sethostname(name)
    }

    fn loopback_up(&self) -> Result<(), (LoopbackStep, Errno)> {
        // SAFETY: socket() with constant arguments; returns an fd or -1.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err((LoopbackStep::Socket, Errno::last()));
        }
        // SAFETY: the fd was just created and is owned only here.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifreq is a plain C struct/union for which all-zero bytes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads the interface name and writes ifru_flags in our ifreq.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } < 0 {
            return Err((LoopbackStep::GetFlags, Errno::last()));
        }
        // SAFETY: ifru_flags is the union member SIOCGIFFLAGS just filled in.
        unsafe { ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
        // SAFETY: SIOCSIFFLAGS reads our ifreq (name + flags).
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } < 0 {
            return Err((LoopbackStep::SetUp, Errno::last()));
        }
        Ok(())
    }

    fn mount(
        &self,
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&CStr>,
    ) -> nix::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount_detach(&self, target: &str) -> nix::Result<()> {
        nix::mount::umount2(target, MntFlags::MNT_DETACH)
    }

    fn pivot_root(&self, new_root: &str, put_old: &str) -> nix::Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn chdir(&self, dir: &str) -> nix::Result<()> {
        nix::unistd::chdir(dir)
    }

    fn setgroups(&self, groups: &[Gid]) -> nix::Result<()> {
        nix::unistd::setgroups(groups)
    }

    fn setgid(&self, gid: Gid) -> nix::Result<()> {
        nix::unistd::setgid(gid)
    }

    fn setuid(&self, uid: Uid) -> nix::Result<()> {
        nix::unistd::setuid(uid)
    }

    fn capbset_drop(&self, cap: u32) -> nix::Result<()> {
        // SAFETY: prctl(PR_CAPBSET_DROP, cap) takes integers only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r < 0 { Err(Errno::last()) } else { Ok(()) }
    }

    fn reset_signals(&self) {
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
            // SAFETY: rt_sigaction with a valid signal number, a pointer to a properly laid
            // out struct on the stack, no old-action pointer, and the kernel's sigset size (8).
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

    fn umask(&self, mode: u32) {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mode));
    }

    fn dup2_stdio(&self, fd: BorrowedFd<'_>, to: Stdio) -> nix::Result<()> {
        match to {
            Stdio::In => nix::unistd::dup2_stdin(fd),
            Stdio::Out => nix::unistd::dup2_stdout(fd),
            Stdio::Err => nix::unistd::dup2_stderr(fd),
        }
    }

    fn execve(&self, path: &CStr, argv: &[CString], env: &[CString]) -> Errno {
        match nix::unistd::execve(path, argv, env) {
            Err(e) => e,
            Ok(never) => match never {},
        }
    }

    fn file_kind(&self, path: &str) -> Option<FileKind> {
        std::fs::symlink_metadata(path).ok().map(|m| {
            if m.is_dir() {
                FileKind::Dir
            } else {
                FileKind::Other
            }
        })
    }

    fn dir_is_empty(&self, path: &str) -> bool {
        std::fs::read_dir(path).map_or(true, |mut d| d.next().is_none())
    }

    fn mkdir(&self, path: &str, mode: u32) -> io::Result<()> {
        std::fs::DirBuilder::new().mode(mode).create(path)
    }

    fn mkdir_all(&self, path: &str) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn remove_dir(&self, path: &str) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn remove_file(&self, path: &str) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn create_file(&self, path: &str) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map(drop)
    }

    fn write_new_file(&self, path: &str, content: &[u8]) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(path)
            .and_then(|mut f| f.write_all(content))
    }

    fn symlink(&self, target: &str, link: &str) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn read_to_string(&self, path: &str) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn open_path(&self, path: &Path) -> io::Result<OwnedFd> {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(path)
            .map(OwnedFd::from)
    }

    fn open_read(&self, path: &str) -> io::Result<OwnedFd> {
        std::fs::File::open(path).map(OwnedFd::from)
    }
}
