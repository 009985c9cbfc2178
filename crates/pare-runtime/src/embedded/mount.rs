//! Mount and file helpers of the container setup.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::mount::MsFlags;

use super::protocol::{SetupError, SetupOp};
use super::syscall::{FileKind, Syscall};

use super::eerr;
use crate::RuntimeError;

pub(super) fn open_path(sys: &dyn Syscall, p: &Path) -> Result<OwnedFd, SetupError> {
    sys.open_path(p)
        .map_err(SetupError::io(SetupOp::Open, &p.display().to_string()))
}

pub(super) fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `p` as a string that can go into overlay mount options: UTF-8 without `,` `:` `\`.
pub(super) fn overlay_safe<'a>(p: &'a Path, what: &str) -> Result<&'a str, RuntimeError> {
    p.to_str()
        .filter(|s| !s.contains([',', ':', '\\']))
        .ok_or_else(|| {
            eerr(format!(
                "{}: {what} must be UTF-8 without ',' ':' '\\' (overlay options)",
                p.display()
            ))
        })
}

/// Creates an empty regular file as a bind-mount target (no-op when something exists).
pub(super) fn touch(sys: &dyn Syscall, p: &str) -> Result<(), SetupError> {
    match sys.file_kind(p) {
        Some(_) => Ok(()),
        None => sys
            .create_file(p)
            .map_err(SetupError::io(SetupOp::Create, p)),
    }
}

pub(super) fn bind(
    sys: &dyn Syscall,
    src: &OwnedFd,
    target: &str,
    readonly: bool,
) -> Result<(), SetupError> {
    sys.mount(
        Some(fd_path(src).as_str()),
        target,
        None,
        MsFlags::MS_BIND,
        None,
    )
    .map_err(SetupError::sys(SetupOp::BindMount, Some(target)))?;
    if readonly {
        let fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
        sys.mount(None, target, None, fl, None)
            .map_err(SetupError::sys(SetupOp::RemountReadOnly, Some(target)))?;
    }
    Ok(())
}

pub(super) fn mkdirs(sys: &dyn Syscall, p: &str) -> Result<(), SetupError> {
    sys.mkdir_all(p).map_err(SetupError::io(SetupOp::Mkdir, p))
}

/// Replaces `path` in the container (after pivot_root, so symlinks resolve inside it).
pub(super) fn write_etc(sys: &dyn Syscall, path: &str, content: &str) -> Result<(), SetupError> {
    match sys.file_kind(path) {
        Some(FileKind::Dir) => return Ok(()),
        Some(FileKind::Other) => sys
            .remove_file(path)
            .map_err(SetupError::io(SetupOp::Replace, path))?,
        None => {}
    }
    sys.write_new_file(path, content.as_bytes())
        .map_err(SetupError::io(SetupOp::Write, path))
}
