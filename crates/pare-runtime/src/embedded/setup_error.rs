//! What a sandbox child reports when its set-up fails: the step ([`SetupOp`]), the phase
//! it ended ([`SetupPhase`]) and the typed [`SetupError`] that the setup protocol carries
//! (see `protocol.rs` for the wire format).

use std::io;

use nix::errno::Errno;

use super::protocol::DecodeError;

/// What a sandbox child was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupOp {
    /// Marking every mount of the new mount namespace private (`MS_REC|MS_PRIVATE` on `/`),
    /// so nothing propagates back to the host.
    MakeRootPrivate,
    /// Mounting the sandbox's private tmpfs (mode 0700) that holds the overlay's upper, work
    /// and root dirs; the path is the mount point.
    MountTmpfs,
    /// Mounting the overlay of the image's layers; the path names the options' layers.
    MountOverlay,
    /// Mounting a pseudo filesystem (`/proc`, `/dev`, `/dev/pts`, …) at the path.
    Mount,
    /// Bind-mounting a host path (sensor, output dir, a file of `/etc`) onto the path.
    BindMount,
    /// Remounting a bind mount read-only (e.g. the sensor binary).
    RemountReadOnly,
    /// Lazily unmounting the old root after `pivot_root`.
    DetachOldRoot,
    /// `pivot_root` into the overlay.
    PivotRoot,
    /// Changing directory: into the new root, or the container's WORKDIR.
    Chdir,
    /// Creating a directory (a mount point, the tmpfs's sub-dirs).
    Mkdir,
    /// Removing the old root's mount point after it was detached.
    Rmdir,
    /// Creating an empty file as a bind-mount target.
    Create,
    /// Removing a non-directory in the container's `/etc` before writing it anew.
    Replace,
    /// Writing a file in the container (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`).
    Write,
    /// Creating a symlink in the container's `/dev` (`/dev/fd`, `/dev/stdin`, …).
    Symlink,
    /// An `O_PATH` open of a host path (before pivot_root).
    Open,
    /// Opening a file for reading inside the container (`/dev/null` for stdin).
    OpenRead,
    /// Setting the UTS namespace's hostname to [`RunSpec::hostname`](crate::RunSpec::hostname).
    SetHostname,
    /// Opening the socket used to bring the loopback interface up.
    Socket,
    /// Reading the loopback interface's flags (`SIOCGIFFLAGS`).
    GetLoopbackFlags,
    /// Setting the loopback interface up (`SIOCSIFFLAGS`).
    SetLoopbackUp,
    /// Dropping this capability number (`CAP_*`) from the bounding set, so the app gets
    /// Docker's default set.
    DropCapability(u32),
    /// Setting the supplementary groups of the container user.
    SetGroups,
    /// Switching to this group id.
    SetGid(u32),
    /// Switching to this user id.
    SetUid(u32),
    /// `dup2` onto this standard fd (0, 1, 2).
    Dup2(i32),
    /// Creating the sandbox's mount, PID, UTS, IPC and network namespaces.
    Unshare,
    /// Forking the sandbox's init (PID 1 of the new PID namespace).
    ForkInit,
    /// `setns` into the namespace of this `CLONE_NEW*` flag.
    SetNs(i32),
    /// Forking, after `setns`, the exec helper that becomes a process of the container's PID
    /// namespace.
    ForkInPidNs,
}

/// Why setting up a sandbox process failed, as its child reported it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A system call failed.
    #[error("{}: {errno}", op_text(*op, path.as_deref()))]
    Sys {
        /// The step.
        op: SetupOp,
        /// The path it acted on, when it has one.
        path: Option<String>,
        /// The call's error number.
        errno: Errno,
    },
    /// A file operation failed with this OS error number.
    #[error("{}: {}", op_text(*op, Some(path)), io::Error::from_raw_os_error(*os_error))]
    Io {
        /// The step.
        op: SetupOp,
        /// The path it acted on (inside the container after pivot_root).
        path: String,
        /// The raw OS error number (`errno`).
        os_error: i32,
    },
    /// USER could not be resolved from the container's /etc/passwd and /etc/group.
    #[error("{reason}")]
    User {
        /// The image's USER as given (name, uid or `uid:gid`).
        user: String,
        /// Which name or id was not found, or which file could not be read.
        reason: String,
    },
    /// `execve` failed for every candidate of the command's PATH lookup.
    #[error("exec {program}: {errno}")]
    Exec {
        /// The command's first word, as given.
        program: String,
        /// The last error other than `ENOENT` among the candidates, or `ENOENT` when none
        /// of them exists.
        errno: Errno,
    },
    /// The command to run (or to exec) has no words.
    #[error("empty command")]
    EmptyCommand,
    /// The sandbox's temp directory path is not UTF-8, so it cannot be put in mount options.
    #[error("temp path is not UTF-8")]
    TempPathNotUtf8,
    /// The sandbox child panicked; reported instead of unwinding across the fork.
    #[error("panic in sandbox child")]
    Panicked,
    /// The caller got a message it could not decode.
    #[error("garbled setup message: {0}")]
    Garbled(DecodeError),
}

impl SetupError {
    pub(crate) fn sys(op: SetupOp, path: Option<&str>) -> impl FnOnce(Errno) -> Self {
        let path = path.map(str::to_string);
        move |errno| Self::Sys { op, path, errno }
    }

    pub(crate) fn io(op: SetupOp, path: &str) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_string();
        move |e| Self::Io {
            op,
            path,
            os_error: e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

/// The words of a failed step, with its path where the step has one.
fn op_text(op: SetupOp, path: Option<&str>) -> String {
    let p = path.unwrap_or("");
    match op {
        SetupOp::MakeRootPrivate => "make / rprivate".into(),
        SetupOp::MountTmpfs => format!("mount tmpfs on {p}"),
        SetupOp::MountOverlay => format!("mount overlay ({p})"),
        SetupOp::Mount => format!("mount {p}"),
        SetupOp::BindMount => format!("bind mount onto {p}"),
        SetupOp::RemountReadOnly => format!("remount {p} read-only"),
        SetupOp::DetachOldRoot => "detach old root".into(),
        SetupOp::PivotRoot => "pivot_root".into(),
        SetupOp::Chdir => format!("chdir {p}"),
        SetupOp::Mkdir => format!("mkdir {p}"),
        SetupOp::Rmdir => format!("rmdir {p}"),
        SetupOp::Create => format!("create {p}"),
        SetupOp::Replace => format!("replace {p}"),
        SetupOp::Write => format!("write {p}"),
        SetupOp::Symlink => format!("symlink {p}"),
        SetupOp::Open => p.to_string(),
        SetupOp::OpenRead => format!("open {p}"),
        SetupOp::SetHostname => "sethostname".into(),
        SetupOp::Socket => "socket".into(),
        SetupOp::GetLoopbackFlags => "SIOCGIFFLAGS lo".into(),
        SetupOp::SetLoopbackUp => "SIOCSIFFLAGS lo up".into(),
        SetupOp::DropCapability(c) => format!("drop capability {c}"),
        SetupOp::SetGroups => "setgroups".into(),
        SetupOp::SetGid(g) => format!("setgid {g}"),
        SetupOp::SetUid(u) => format!("setuid {u}"),
        SetupOp::Dup2(fd) => format!(
            "dup2 {}",
            match fd {
                0 => "stdin",
                1 => "stdout",
                _ => "stderr",
            }
        ),
        SetupOp::Unshare => "unshare(mnt, pid, uts, ipc, net)".into(),
        SetupOp::ForkInit => "fork init".into(),
        SetupOp::SetNs(flag) => {
            format!("setns {:?}", nix::sched::CloneFlags::from_bits_retain(flag))
        }
        SetupOp::ForkInPidNs => "fork in container pid ns".into(),
    }
}

/// Which start-up step a [`SetupError`] ended, for the error's message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupPhase {
    /// Building the sandbox (keeper and init, before `Ready`).
    Sandbox,
    /// init's exec of the container command.
    Exec,
    /// `Container::exec` of this command.
    ContainerExec(Vec<String>),
}

impl std::fmt::Display for SetupPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupPhase::Sandbox => f.write_str("sandbox setup failed: "),
            SetupPhase::Exec => Ok(()),
            SetupPhase::ContainerExec(argv) => write!(f, "exec {argv:?}: "),
        }
    }
}
