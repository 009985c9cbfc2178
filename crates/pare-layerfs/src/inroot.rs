//! Resolving a path inside a root directory as if that directory were `/`: the one resolver
//! behind safe extraction ([`crate::extract`]) and pare-select's `Rootfs`.
//!
//! The path is walked component by component with `lstat`, the way the kernel resolves it
//! with `openat2(RESOLVE_IN_ROOT)`: an absolute symlink target restarts at the root, `..`
//! never climbs above it, at most [`MAX_LINKS`] symlinks are followed. The result is the
//! canonical path (no symlinks, no `.`/`..`) below the root, so joining it to the root can
//! never leave it.
//!
//! Why a component walk and not file descriptors (`openat2` with `RESOLVE_IN_ROOT` through
//! rustix, or cap-std): pare-select must report every symlink met on the way (its
//! `SymlinkChain` reasons, so that the links themselves are kept), and extraction creates the
//! missing directories on the way; `openat2` reports neither. Its benefit, closing the race
//! with another process that swaps a directory for a symlink between two steps, does not
//! apply: pare is the only writer of the tree it resolves in (extraction applies entries one
//! at a time; selection reads a finished tree). It would also need Linux 5.6 and a seccomp
//! profile that allows it, so a second, fallback resolver would have to stay anyway.

use std::ffi::{OsStr, OsString};
use std::fs::{self, FileType};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How many symlinks one resolution may follow (the kernel's limit).
pub const MAX_LINKS: usize = 40;

/// How to resolve.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Follow a symlink in the last component (like `stat`), else stop at it (like `lstat`).
    pub follow_last: bool,
    /// Create missing directories (mode 0755) instead of stopping at the first one.
    pub create_dirs: bool,
    /// Refuse a symlink whose target is not UTF-8 ([`InRootError::NonUtf8`]).
    pub utf8: bool,
}

/// Where the resolution ended.
#[derive(Debug)]
pub enum End {
    /// Every component exists; the type of the last one.
    Exists(FileType),
    /// `components`' last one is missing (`cause` is the `lstat` error); `rest` is what was
    /// left to resolve after it, unresolved.
    Missing {
        /// Components that followed the missing one, as given (not canonicalized).
        rest: Vec<OsString>,
        /// The `lstat` error (normally `NotFound`).
        cause: io::Error,
    },
    /// `components`' last one is not a directory but more followed (`rest`): ENOTDIR.
    NotADirectory {
        /// Components that followed the non-directory, as given.
        rest: Vec<OsString>,
    },
}

/// The outcome of [`resolve`].
#[derive(Debug)]
pub struct Resolved {
    /// Canonical components below the root, up to where the resolution ended.
    pub components: Vec<OsString>,
    /// The canonical components of every symlink followed, in order, each once.
    pub links: Vec<Vec<OsString>>,
    /// Whether every component exists, and if not, where and why the walk stopped.
    pub end: End,
}

/// Why [`resolve`] failed.
#[derive(Debug, thiserror::Error)]
pub enum InRootError {
    /// More symlinks were followed than the resolver allows (a cycle, or an absurd chain):
    /// the kernel's ELOOP.
    #[error("{path}: too many levels of symbolic links")]
    Loop {
        /// The path being resolved, as given.
        path: PathBuf,
    },
    /// A symlink on the way has a target that is not valid UTF-8, which pare's paths cannot hold.
    #[error("{path}: symlink target is not UTF-8")]
    NonUtf8 {
        /// Host path of the offending symlink.
        path: PathBuf,
    },
    /// `lstat` or `readlink` failed for a reason other than the path being missing.
    #[error("{path}")]
    Io {
        /// Host path the failed call was made on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// The host path of canonical components below `root`.
pub fn host(root: &Path, components: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(components);
    p
}

/// Pushes the components of a path (or symlink target) onto the stack `pending` so that the
/// first one is popped first; `.` and empty components are dropped. True when it is absolute.
fn push_components(pending: &mut Vec<OsString>, path: &[u8]) -> bool {
    for c in path.split(|&b| b == b'/').rev() {
        if !c.is_empty() && c != b"." {
            pending.push(OsStr::from_bytes(c).to_os_string());
        }
    }
    path.first() == Some(&b'/')
}

/// Resolves `path` (absolute, or relative to the root) inside `root`.
pub fn resolve(root: &Path, path: &[u8], opts: Options) -> Result<Resolved, InRootError> {
    let mut pending: Vec<OsString> = Vec::new(); // a stack: next component at the end
    push_components(&mut pending, path);
    let mut cur: Vec<OsString> = Vec::new();
    let mut links: Vec<Vec<OsString>> = Vec::new();
    let mut followed = 0usize;
    let mut last_type = None;
    while let Some(comp) = pending.pop() {
        if comp == ".." {
            cur.pop();
            last_type = None;
            continue;
        }
        cur.push(comp);
        let cand = host(root, &cur);
        let md = match fs::symlink_metadata(&cand) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound && opts.create_dirs => {
                fs::create_dir(&cand)
                    .and_then(|()| fs::set_permissions(&cand, fs::Permissions::from_mode(0o755)))
                    .and_then(|()| fs::symlink_metadata(&cand))
                    .map_err(|source| InRootError::Io {
                        path: cand.clone(),
                        source,
                    })?
            }
            Err(cause) => {
                pending.reverse();
                return Ok(Resolved {
                    components: cur,
                    links,
                    end: End::Missing {
                        rest: pending,
                        cause,
                    },
                });
            }
        };
        let is_last = pending.is_empty();
        let ft = md.file_type();
        if ft.is_symlink() && (!is_last || opts.follow_last) {
            followed += 1;
            if followed > MAX_LINKS {
                return Err(InRootError::Loop { path: cand });
            }
            let target = fs::read_link(&cand).map_err(|source| InRootError::Io {
                path: cand.clone(),
                source,
            })?;
            if opts.utf8 && target.to_str().is_none() {
                return Err(InRootError::NonUtf8 { path: cand });
            }
            if !links.contains(&cur) {
                links.push(cur.clone());
            }
            cur.pop();
            if push_components(&mut pending, target.as_os_str().as_bytes()) {
                cur.clear();
            }
            last_type = None;
        } else if !is_last && !ft.is_dir() {
            pending.reverse();
            return Ok(Resolved {
                components: cur,
                links,
                end: End::NotADirectory { rest: pending },
            });
        } else {
            last_type = Some(ft);
        }
    }
    let ft = match last_type {
        Some(ft) => ft,
        // The root itself, or `..`/a symlink was last: what the walk ended on.
        None => fs::metadata(host(root, &cur))
            .map_err(|source| InRootError::Io {
                path: host(root, &cur),
                source,
            })?
            .file_type(),
    };
    Ok(Resolved {
        components: cur,
        links,
        end: End::Exists(ft),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(c: &[OsString]) -> String {
        let v: Vec<&str> = c.iter().map(|c| c.to_str().unwrap()).collect();
        format!("/{}", v.join("/"))
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::create_dir_all(r.join("usr/lib")).unwrap();
        fs::write(r.join("etc/passwd"), b"in").unwrap();
        fs::write(t.path().join("passwd"), b"OUT").unwrap();
        symlink("/../../../etc", r.join("usr/etc")).unwrap();
        symlink("../../../../passwd", r.join("usr/lib/p")).unwrap();
        let opts = Options {
            follow_last: true,
            ..Default::default()
        };
        let res = resolve(&r, b"/usr/etc/passwd", opts).unwrap();
        assert_eq!(names(&res.components), "/etc/passwd");
        assert_eq!(res.links.len(), 1);
        assert!(matches!(res.end, End::Exists(ft) if ft.is_file()));
        let res = resolve(&r, b"usr/lib/p", opts).unwrap();
        assert_eq!(names(&res.components), "/passwd");
        assert!(matches!(res.end, End::Missing { .. }));
        let res = resolve(&r, b"/usr/lib/p", Options::default()).unwrap();
        assert_eq!(names(&res.components), "/usr/lib/p");
        assert!(matches!(res.end, End::Exists(ft) if ft.is_symlink()));
        let res = resolve(&r, b"/etc/passwd/x/y", opts).unwrap();
        assert!(matches!(&res.end, End::NotADirectory { rest } if rest.len() == 2));
    }

    #[test]
    fn loops_end_and_missing_dirs_are_created_on_request() {
        let t = tempfile::tempdir().unwrap();
        symlink("b", t.path().join("a")).unwrap();
        symlink("a", t.path().join("b")).unwrap();
        assert!(matches!(
            resolve(t.path(), b"a/x", Options::default()),
            Err(InRootError::Loop { .. })
        ));
        let opts = Options {
            create_dirs: true,
            ..Default::default()
        };
        let res = resolve(t.path(), b"x/y", opts).unwrap();
        assert!(matches!(res.end, End::Exists(ft) if ft.is_dir()));
        assert!(t.path().join("x/y").is_dir());
    }
}
