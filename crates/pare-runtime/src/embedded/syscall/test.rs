//! `RecordingSyscall`: a fake kernel for unit tests. It records every call in order (one
//! list, so the order across kinds, e.g. mounts around `pivot_root`, is visible), changes
//! nothing on the host, and answers from what the test configured.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::{FileKind, LinuxSyscall, LoopbackStep, Stdio, Syscall};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Fork,
    Kill(i32, Signal),
    WaitPid(i32),
    Pipe,
    SocketPair,
    CloseRange {
        first: u32,
        last: u32,
        cloexec: bool,
    },
    SetPgid,
    PdeathSig(Signal),
    Unshare(CloneFlags),
    SetNs(CloneFlags),
    Hostname(String),
    LoopbackUp,
    Mount {
        source: Option<String>,
        target: String,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    UmountDetach(String),
    PivotRoot(String, String),
    Chdir(String),
    SetGroups(Vec<u32>),
    SetGid(u32),
    SetUid(u32),
    CapDrop(u32),
    ResetSignals,
    Umask(u32),
    Dup2(Stdio),
    Execve(String, Vec<String>),
    Mkdir(String),
    RemoveDir(String),
    RemoveFile(String),
    CreateFile(String),
    WriteFile(String, String),
    Symlink(String, String),
    OpenPath(String),
}

/// The fake. `fork` answers "parent of pid 4242", `waitpid_raw` "exited 0", `execve` ENOENT;
/// `poll`, `pipe` and `socketpair` are real (they change nothing outside the test process).
#[derive(Default)]
pub(crate) struct RecordingSyscall {
    calls: Mutex<Vec<Call>>,
    /// Contents `read_to_string` returns; other paths are missing.
    pub files: HashMap<String, String>,
    /// Paths `file_kind` reports as directories; others are missing.
    pub dirs: Vec<String>,
}

pub(crate) const FAKE_CHILD: i32 = 4242;

impl RecordingSyscall {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn rec(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
    }

    /// A harmless real fd to hand out where the trait returns one.
    fn some_fd() -> io::Result<OwnedFd> {
        std::fs::File::open("/dev/null").map(OwnedFd::from)
    }
}

impl Syscall for RecordingSyscall {
    fn fork(&self) -> nix::Result<ForkResult> {
        self.rec(Call::Fork);
        Ok(ForkResult::Parent {
            child: Pid::from_raw(FAKE_CHILD),
        })
    }
    fn exit(&self, code: i32) -> ! {
        panic!("RecordingSyscall: exit({code})")
    }
    fn pidfd_open(&self, _pid: Pid) -> Option<OwnedFd> {
        None
    }
    fn pidfd_send_signal(&self, _pidfd: BorrowedFd<'_>, _sig: Signal) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }
    fn kill(&self, pid: Pid, sig: Signal) -> nix::Result<()> {
        self.rec(Call::Kill(pid.as_raw(), sig));
        Ok(())
    }
    fn killpg(&self, pgrp: Pid, sig: Signal) -> nix::Result<()> {
        self.rec(Call::Kill(-pgrp.as_raw(), sig));
        Ok(())
    }
    fn waitpid(&self, pid: Pid, _nohang: bool) -> nix::Result<WaitStatus> {
        self.rec(Call::WaitPid(pid.as_raw()));
        Ok(WaitStatus::Exited(pid, 0))
    }
    fn waitpid_raw(&self, pid: Pid, _nohang: bool) -> nix::Result<Option<i32>> {
        self.rec(Call::WaitPid(pid.as_raw()));
        Ok(Some(0))
    }
    fn poll(&self, fds: &[(RawFd, i16)], timeout_ms: i32) -> nix::Result<Vec<i16>> {
        // Real: tests poll real pipes and sockets, and nothing changes on the host.
        LinuxSyscall.poll(fds, timeout_ms)
    }
    fn pipe(&self) -> nix::Result<(OwnedFd, OwnedFd)> {
        self.rec(Call::Pipe);
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
    }
    fn socketpair(&self) -> nix::Result<(OwnedFd, OwnedFd)> {
        self.rec(Call::SocketPair);
        LinuxSyscall.socketpair()
    }
    fn close_range(&self, first: u32, last: u32, cloexec: bool) {
        self.rec(Call::CloseRange {
            first,
            last,
            cloexec,
        });
    }
    fn setpgid_self(&self) -> nix::Result<()> {
        self.rec(Call::SetPgid);
        Ok(())
    }
    fn set_pdeathsig(&self, sig: Signal) -> nix::Result<()> {
        self.rec(Call::PdeathSig(sig));
        Ok(())
    }
    fn unshare(&self, flags: CloneFlags) -> nix::Result<()> {
        self.rec(Call::Unshare(flags));
        Ok(())
    }
    fn setns(&self, _fd: BorrowedFd<'_>, kind: CloneFlags) -> nix::Result<()> {
        self.rec(Call::SetNs(kind));
        Ok(())
    }
    fn sethostname(&self, name: &str) -> nix::Result<()> {
        self.rec(Call::Hostname(name.into()));
        Ok(())
    }
    fn loopback_up(&self) -> Result<(), (LoopbackStep, Errno)> {
        self.rec(Call::LoopbackUp);
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
        self.rec(Call::Mount {
            source: source.map(Into::into),
            target: target.into(),
            fstype: fstype.map(Into::into),
            flags,
            data: data.map(|d| d.to_string_lossy().into_owned()),
        });
        Ok(())
    }
    fn umount_detach(&self, target: &str) -> nix::Result<()> {
        self.rec(Call::UmountDetach(target.into()));
        Ok(())
    }
    fn pivot_root(&self, new_root: &str, put_old: &str) -> nix::Result<()> {
        self.rec(Call::PivotRoot(new_root.into(), put_old.into()));
        Ok(())
    }
    fn chdir(&self, dir: &str) -> nix::Result<()> {
        self.rec(Call::Chdir(dir.into()));
        Ok(())
    }
    fn setgroups(&self, groups: &[Gid]) -> nix::Result<()> {
        self.rec(Call::SetGroups(groups.iter().map(|g| g.as_raw()).collect()));
        Ok(())
    }
    fn setgid(&self, gid: Gid) -> nix::Result<()> {
        self.rec(Call::SetGid(gid.as_raw()));
        Ok(())
    }
    fn setuid(&self, uid: Uid) -> nix::Result<()> {
        self.rec(Call::SetUid(uid.as_raw()));
        Ok(())
    }
    fn capbset_drop(&self, cap: u32) -> nix::Result<()> {
        self.rec(Call::CapDrop(cap));
        // Like a kernel with 41 capabilities: higher numbers are EINVAL.
        if cap > 40 { Err(Errno::EINVAL) } else { Ok(()) }
    }
    fn reset_signals(&self) {
        self.rec(Call::ResetSignals);
    }
    fn umask(&self, mode: u32) {
        self.rec(Call::Umask(mode));
    }
    fn dup2_stdio(&self, _fd: BorrowedFd<'_>, to: Stdio) -> nix::Result<()> {
        self.rec(Call::Dup2(to));
        Ok(())
    }
    fn execve(&self, path: &CStr, argv: &[CString], _env: &[CString]) -> Errno {
        self.rec(Call::Execve(
            path.to_string_lossy().into_owned(),
            argv.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        ));
        Errno::ENOENT
    }
    fn file_kind(&self, path: &str) -> Option<FileKind> {
        self.dirs.iter().any(|d| d == path).then_some(FileKind::Dir)
    }
    fn dir_is_empty(&self, _path: &str) -> bool {
        true
    }
    fn mkdir(&self, path: &str, _mode: u32) -> io::Result<()> {
        self.rec(Call::Mkdir(path.into()));
        Ok(())
    }
    fn mkdir_all(&self, path: &str) -> io::Result<()> {
        self.rec(Call::Mkdir(path.into()));
        Ok(())
    }
    fn remove_dir(&self, path: &str) -> io::Result<()> {
        self.rec(Call::RemoveDir(path.into()));
        Ok(())
    }
    fn remove_file(&self, path: &str) -> io::Result<()> {
        self.rec(Call::RemoveFile(path.into()));
        Ok(())
    }
    fn create_file(&self, path: &str) -> io::Result<()> {
        self.rec(Call::CreateFile(path.into()));
        Ok(())
    }
    fn write_new_file(&self, path: &str, content: &[u8]) -> io::Result<()> {
        self.rec(Call::WriteFile(
            path.into(),
            String::from_utf8_lossy(content).into_owned(),
        ));
        Ok(())
    }
    fn symlink(&self, target: &str, link: &str) -> io::Result<()> {
        self.rec(Call::Symlink(target.into(), link.into()));
        Ok(())
    }
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn open_path(&self, path: &Path) -> io::Result<OwnedFd> {
        self.rec(Call::OpenPath(path.display().to_string()));
        Self::some_fd()
    }
    fn open_read(&self, _path: &str) -> io::Result<OwnedFd> {
        Self::some_fd()
    }
}
