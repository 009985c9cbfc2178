//! Mount and file helpers of the container setup, and the overlay pieces `pare build` uses
//! for a local daemon's layers ([`ReadOnlyOverlay`], [`private_mount_namespace`]).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::protocol::{SetupError, SetupOp};
use super::syscall::{FileKind, LinuxSyscall, Syscall};

use super::{cstring, eerr, eerr_os};
use crate::RuntimeError;

/// overlayfs options must fit in a page; longer ones are refused before any mount.
const MAX_OVERLAY_OPTIONS: usize = 4000;

pub(super) fn open_path(sys: &dyn Syscall, p: &Path) -> Result<OwnedFd, SetupError> {
    sys.open_path(p)
        .map_err(SetupError::io(SetupOp::Open, &p.display().to_string()))
}

pub(super) fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `p` as a string that can go into overlay mount options: UTF-8 without `,` `:` `\`
/// (overlayfs splits its options on them); `None` for any other path.
pub fn overlay_option_path(p: &Path) -> Option<&str> {
    p.to_str().filter(|s| !s.contains([',', ':', '\\']))
}

/// [`overlay_option_path`], or an error naming `p` as `what`.
pub(super) fn overlay_safe<'a>(p: &'a Path, what: &str) -> Result<&'a str, RuntimeError> {
    overlay_option_path(p).ok_or_else(|| {
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

/// Checks that overlay options fit in a page (`layers` only names the count in the error).
pub(super) fn overlay_options(opts: String, layers: usize) -> Result<CString, RuntimeError> {
    if opts.len() >= MAX_OVERLAY_OPTIONS {
        return Err(eerr(format!(
            "{layers} layers: overlay options exceed a page ({} bytes); use shorter paths or fewer layers",
            opts.len()
        )));
    }
    cstring("overlay options", opts)
}

/// A read-only overlay mount of image layers in this process's mount namespace; detached
/// (`MNT_DETACH`) on drop.
#[derive(Debug)]
pub struct ReadOnlyOverlay {
    target: PathBuf,
}

impl ReadOnlyOverlay {
    /// Mounts `lowers` (top layer first, at least two: overlayfs needs two lower dirs without
    /// an upper one) read-only at `target`. Needs root. Layers use overlayfs whiteouts, as
    /// Docker's overlay2 `diff` dirs do; none of them is written.
    pub fn mount(lowers: &[PathBuf], target: &Path) -> Result<Self, RuntimeError> {
        let mut dirs = Vec::with_capacity(lowers.len());
        for l in lowers {
            dirs.push(overlay_safe(l, "layer path")?);
        }
        let opts = overlay_options(format!("lowerdir={}", dirs.join(":")), lowers.len())?;
        let t = target
            .to_str()
            .ok_or_else(|| eerr(format!("{}: mount point is not UTF-8", target.display())))?;
        LinuxSyscall
            .mount(
                Some("overlay"),
                t,
                Some("overlay"),
                MsFlags::MS_RDONLY,
                Some(&opts),
            )
            .map_err(|e| eerr_os(format!("mount overlay on {t}"), e))?;
        Ok(Self {
            target: target.to_path_buf(),
        })
    }
}

impl Drop for ReadOnlyOverlay {
    fn drop(&mut self) {
        if let Some(t) = self.target.to_str() {
            let _ = LinuxSyscall.umount_detach(t);
        }
    }
}

/// Moves this process into a private mount namespace (root only; `false` otherwise), so that
/// mounts it makes never show on the host and vanish with it, even when it is killed. Call it
/// while the process is single-threaded: threads already running would not see its mounts.
pub fn private_mount_namespace() -> bool {
    LinuxSyscall.unshare(CloneFlags::CLONE_NEWNS).is_ok()
        && LinuxSyscall
            .mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_paths_without_separators_only() {
        assert_eq!(
            overlay_option_path(Path::new("/var/lib/docker/overlay2/ab/diff")),
            Some("/var/lib/docker/overlay2/ab/diff")
        );
        for bad in ["/a,b", "/a:b", "/a\\b"] {
            assert_eq!(overlay_option_path(Path::new(bad)), None, "{bad}");
            let e = overlay_safe(Path::new(bad), "layer path").unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        use std::os::unix::ffi::OsStrExt;
        let not_utf8 = Path::new(std::ffi::OsStr::from_bytes(b"/a\xff"));
        assert_eq!(overlay_option_path(not_utf8), None);
    }

    #[test]
    fn overlay_options_must_fit_a_page() {
        assert!(overlay_options("lowerdir=/a:/b".into(), 2).is_ok());
        let long = format!("lowerdir={}", "/x".repeat(2000));
        let e = overlay_options(long, 7).unwrap_err().to_string();
        assert!(e.contains("7 layers") && e.contains("4009 bytes"), "{e}");
        let p = Path::new("/nonexistent-mount-point");
        let e = ReadOnlyOverlay::mount(&[PathBuf::from("/a,b"), "/c".into()], p).unwrap_err();
        assert!(e.to_string().contains("/a,b"), "{e}");
    }
}
