//! Mount and file helpers of the container setup.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::mount::MsFlags;

use super::syscall::{FileKind, Syscall};

use super::eerr;
use crate::RuntimeError;

pub(super) fn ctx<E: std::fmt::Display>(what: impl FnOnce() -> String) -> impl FnOnce(E) -> String {
    move |e| format!("{}: {e}", what())
}

pub(super) fn open_path(sys: &dyn Syscall, p: &Path) -> Result<OwnedFd, String> {
    sys.open_path(p)
        .map_err(|e| format!("{}: {e}", p.display()))
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
pub(super) fn touch(sys: &dyn Syscall, p: &str) -> Result<(), String> {
    match sys.file_kind(p) {
        Some(_) => Ok(()),
        None => sys.create_file(p).map_err(|e| format!("create {p}: {e}")),
    }
}

pub(super) fn bind(
    sys: &dyn Syscall,
    src: &OwnedFd,
    target: &str,
    readonly: bool,
) -> Result<(), String> {
    sys.mount(
        Some(fd_path(src).as_str()),
        target,
        None,
        MsFlags::MS_BIND,
        None,
    )
    .map_err(|e| format!("bind mount onto {target}: {e}"))?;
    if readonly {
        let fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
        sys.mount(None, target, None, fl, None)
            .map_err(|e| format!("remount {target} read-only: {e}"))?;
    }
    Ok(())
}

pub(super) fn mkdirs(sys: &dyn Syscall, p: &str) -> Result<(), String> {
    sys.mkdir_all(p).map_err(|e| format!("mkdir {p}: {e}"))
}

/// Replaces `path` in the container (after pivot_root, so symlinks resolve inside it).
pub(super) fn write_etc(sys: &dyn Syscall, path: &str, content: &str) -> Result<(), String> {
    match sys.file_kind(path) {
        Some(FileKind::Dir) => return Ok(()),
        Some(FileKind::Other) => sys
            .remove_file(path)
            .map_err(|e| format!("replace {path}: {e}"))?,
        None => {}
    }
    sys.write_new_file(path, content.as_bytes())
        .map_err(|e| format!("write {path}: {e}"))
}
