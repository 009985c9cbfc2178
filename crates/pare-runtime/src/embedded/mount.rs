//! Mount and file helpers of the container setup.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::{MsFlags, mount};

use super::eerr;
use crate::RuntimeError;

pub(super) fn ctx<E: std::fmt::Display>(what: impl FnOnce() -> String) -> impl FnOnce(E) -> String {
    move |e| format!("{}: {e}", what())
}

pub(super) fn open_path(p: &Path) -> Result<OwnedFd, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(p)
        .map(OwnedFd::from)
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
pub(super) fn touch(p: &str) -> Result<(), String> {
    match std::fs::symlink_metadata(p) {
        Ok(_) => Ok(()),
        Err(_) => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(p)
            .map(drop)
            .map_err(|e| format!("create {p}: {e}")),
    }
}

pub(super) fn bind(src: &OwnedFd, target: &str, readonly: bool) -> Result<(), String> {
    mount(
        Some(fd_path(src).as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind mount onto {target}: {e}"))?;
    if readonly {
        let fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
        mount(None::<&str>, target, None::<&str>, fl, None::<&str>)
            .map_err(|e| format!("remount {target} read-only: {e}"))?;
    }
    Ok(())
}

pub(super) fn mkdirs(p: &str) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("mkdir {p}: {e}"))
}

/// Replaces `path` in the container (after pivot_root, so symlinks resolve inside it).
pub(super) fn write_etc(path: &str, content: &str) -> Result<(), String> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.is_dir() {
            return Ok(());
        }
        std::fs::remove_file(path).map_err(|e| format!("replace {path}: {e}"))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .map_err(|e| format!("write {path}: {e}"))
}
