//! Path resolution inside an extracted root filesystem.
//!
//! Every path is resolved component by component with `lstat`, the way the kernel would resolve
//! it with the rootfs as `/` (like `openat2(RESOLVE_IN_ROOT)`): absolute symlink targets restart
//! at the rootfs, `..` never climbs above it. Nothing outside the rootfs is ever touched. The
//! walk itself is pare-layerfs's [`inroot`] (why not `openat2`: see there), shared with safe
//! extraction.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

use pare_image::ImagePath;
use pare_layerfs::inroot;

use crate::SelectError;

/// A rootfs directory seen as `/`.
#[derive(Debug, Clone)]
pub struct Rootfs {
    base: PathBuf,
}

/// The outcome of resolving one in-image path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The canonical in-image path (no symlinks, no `.`/`..`), even when it does not exist.
    pub path: String,
    /// The canonical in-image paths of every symlink followed on the way, in order.
    pub links: Vec<String>,
    /// Whether the final path exists.
    pub exists: bool,
}

/// Normalizes an in-image path lexically: absolute, no `.`, `..` clamped at `/`, no `//`.
pub fn normalize(path: &str) -> String {
    ImagePath::clamped(path).into()
}

fn join<S: AsRef<str>>(parts: &[S]) -> String {
    if parts.is_empty() {
        return "/".to_string();
    }
    let mut s = String::new();
    for p in parts {
        s.push('/');
        s.push_str(p.as_ref());
    }
    s
}

/// The parent of a normalized absolute path (`None` for `/`).
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last component of a normalized path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Rootfs {
    /// The rootfs at `base`, which must be a directory.
    pub fn new(base: &Path) -> Result<Self, SelectError> {
        let md = fs::metadata(base).map_err(|source| SelectError::Io {
            path: base.to_path_buf(),
            source,
        })?;
        if !md.is_dir() {
            return Err(SelectError::NotADirectory {
                path: base.to_path_buf(),
            });
        }
        Ok(Rootfs {
            base: base.to_path_buf(),
        })
    }

    /// The rootfs directory on the host.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The host path of a *canonical* in-image path. Only call this with paths produced by
    /// [`Rootfs::resolve`] or [`normalize`]: they contain no `..`, so the result stays inside.
    pub fn host(&self, canonical: &str) -> PathBuf {
        let rel = canonical.trim_start_matches('/');
        if rel.is_empty() {
            self.base.clone()
        } else {
            self.base.join(rel)
        }
    }

    /// `lstat` of a canonical in-image path.
    pub fn lstat(&self, canonical: &str) -> Option<Metadata> {
        fs::symlink_metadata(self.host(canonical)).ok()
    }

    /// Resolves `path` (absolute, or relative to `/`) inside the rootfs. With `follow_last`
    /// false a final symlink is not followed (like `lstat`). The walk is
    /// [`pare_layerfs::inroot::resolve`], the one extraction uses too.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Resolution, SelectError> {
        let opts = inroot::Options {
            follow_last,
            create_dirs: false,
            utf8: true,
        };
        let res = inroot::resolve(&self.base, path.as_bytes(), opts).map_err(|e| match e {
            inroot::InRootError::Loop { .. } => SelectError::SymlinkLoop {
                path: path.to_string(),
            },
            inroot::InRootError::NonUtf8 { path } => SelectError::NonUtf8 { path },
            inroot::InRootError::Io { path, source } => SelectError::Io { path, source },
        })?;
        // Every component is UTF-8: `path` is a str and symlink targets were checked.
        let text = |c: &[OsString]| -> Vec<String> {
            c.iter().map(|c| c.to_string_lossy().into_owned()).collect()
        };
        let links = res.links.iter().map(|l| join(&text(l))).collect();
        let mut all = text(&res.components);
        let exists = match res.end {
            inroot::End::Exists(_) => true,
            // Absent, or a non-directory in the middle (ENOTDIR): the rest is appended
            // lexically.
            inroot::End::Missing { rest, .. } | inroot::End::NotADirectory { rest } => {
                all.extend(text(&rest));
                false
            }
        };
        Ok(Resolution {
            path: if exists {
                join(&all)
            } else {
                normalize(&join(&all))
            },
            links,
            exists,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn normalize_clamps() {
        assert_eq!(normalize("/../../etc//passwd"), "/etc/passwd");
        assert_eq!(normalize("a/./b/../c"), "/a/c");
        assert_eq!(normalize("/"), "/");
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Random trees of symlinks (absolute, relative, `..`-heavy, loops) never resolve to a
        /// path outside the rootfs or through a symlink.
        #[test]
        fn random_symlinks_never_escape(
            links in proptest::collection::vec((0usize..4, 0usize..4, proptest::collection::vec(0usize..6, 0..6), proptest::bool::ANY), 1..12),
            queries in proptest::collection::vec(proptest::collection::vec(0usize..6, 1..6), 1..8),
        ) {
            let comps = ["a", "b", "..", ".", "etc", "passwd"];
            let t = tempfile::tempdir().unwrap();
            let r = t.path().join("root");
            for d in ["a/b", "b", "etc"] {
                fs::create_dir_all(r.join(d)).unwrap();
            }
            fs::write(r.join("etc/passwd"), b"in").unwrap();
            fs::write(t.path().join("passwd"), b"OUT").unwrap();
            for (i, (dir, name, target, abs)) in links.iter().enumerate() {
                let dir = ["", "a", "a/b", "b"][*dir];
                let target: Vec<&str> = target.iter().map(|k| comps[*k]).collect();
                let target = format!("{}{}", if *abs { "/" } else { "" }, target.join("/"));
                let _ = symlink(&target, r.join(dir).join(format!("l{name}{i}")));
            }
            let root = Rootfs::new(&r).unwrap();
            let mut names: Vec<String> = comps.iter().map(|s| s.to_string()).collect();
            for (i, (_, name, _, _)) in links.iter().enumerate() {
                names.push(format!("l{name}{i}"));
            }
            for q in queries {
                let path = q.iter().map(|k| names[k % names.len()].as_str()).collect::<Vec<_>>().join("/");
                if let Ok(res) = root.resolve(&path, true) {
                    proptest::prop_assert_eq!(normalize(&res.path), res.path.clone());
                    // Every proper prefix of the result is a real directory (no symlinks).
                    let mut cur = String::new();
                    let parts: Vec<&str> = res.path.split('/').filter(|c| !c.is_empty()).collect();
                    for c in &parts[..parts.len().saturating_sub(1)] {
                        cur.push('/');
                        cur.push_str(c);
                        if let Some(md) = root.lstat(&cur) {
                            proptest::prop_assert!(!md.file_type().is_symlink(), "{} via symlink {}", res.path, cur);
                        }
                    }
                    if res.exists {
                        let host = root.host(&res.path);
                        proptest::prop_assert!(host.starts_with(&r));
                        if let Ok(b) = fs::read(&host) {
                            proptest::prop_assert_ne!(b, b"OUT".to_vec());
                        }
                    }
                    for l in &res.links {
                        proptest::prop_assert!(root.lstat(l).is_some_and(|m| m.file_type().is_symlink()));
                    }
                }
            }
        }
    }

    #[test]
    fn resolves_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("usr/lib")).unwrap();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(r.join("usr/lib/libx.so.1.2"), b"x").unwrap();
        fs::write(r.join("etc/passwd"), b"root").unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("libx.so.1.2", r.join("usr/lib/libx.so.1")).unwrap();
        symlink("/../../../etc/passwd", r.join("usr/evil")).unwrap();
        symlink("../../../../../../etc/passwd", r.join("usr/lib/evil2")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        let root = Rootfs::new(r).unwrap();

        let res = root.resolve("/lib/libx.so.1", true).unwrap();
        assert_eq!(res.path, "/usr/lib/libx.so.1.2");
        assert_eq!(
            res.links,
            vec!["/lib".to_string(), "/usr/lib/libx.so.1".to_string()]
        );
        assert!(res.exists);

        let res = root.resolve("/lib/libx.so.1", false).unwrap();
        assert_eq!(res.path, "/usr/lib/libx.so.1");

        for p in ["/usr/evil", "/lib/evil2"] {
            let res = root.resolve(p, true).unwrap();
            assert_eq!(res.path, "/etc/passwd", "{p}");
            assert!(res.exists);
        }
        assert!(matches!(
            root.resolve("/loop1", true),
            Err(SelectError::SymlinkLoop { .. })
        ));
        let res = root.resolve("/lib/nope/x", true).unwrap();
        assert_eq!(res.path, "/usr/lib/nope/x");
        assert!(!res.exists);
    }
}
