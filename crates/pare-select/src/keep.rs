//! The kept set: what the selection holds so far, and the only ways to grow it.
//!
//! This is the bottom of the crate's module graph: the engine owns one [`KeepSet`] and hands
//! it to the rules ([`crate::rules`], [`crate::dpkg`]) as `&mut KeepSet`; neither the set nor
//! the rules know the engine. Its state is private: rules keep paths (`keep`, `keep_tree`),
//! read the rootfs (`root`), and record generated files, created directories and warnings
//! through methods, so every invariant (pseudo filesystems, `--exclude`/`--preserve-path`,
//! at most [`MAX_REASONS`] reasons) is enforced in one place.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use pare_image::ImagePath;

use crate::root::{self, Rootfs};
use crate::{Kept, MAX_REASONS, Reason, SelectError, Selection};

/// Pseudo filesystems the runtime provides; never taken from the image.
const PSEUDO: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Globs of a flag, with the patterns as typed (to name the one that matched).
type Globs = Option<(GlobSet, Vec<String>)>;

/// The paths kept so far and what the writer needs besides them.
pub(crate) struct KeepSet {
    root: Rootfs,
    /// `PATH` directories of the image, for [`KeepSet::which`].
    path_dirs: Vec<String>,
    /// `WorkingDir` of the image, for relative command names.
    workdir: Option<String>,
    entries: BTreeMap<String, Kept>,
    generated: BTreeMap<String, Vec<u8>>,
    created_dirs: BTreeMap<String, u32>,
    excluded: BTreeMap<String, String>,
    warnings: Vec<String>,
    /// Newly kept regular files the engine has not looked at yet.
    pending_files: VecDeque<String>,
    exclude: Globs,
    preserve: Globs,
    dir_cache: HashMap<String, Vec<String>>,
}

/// Compiles the globs of one flag (`flag` names it in the error).
pub(crate) fn globset(flag: &'static str, pats: &[String]) -> Result<Globs, SelectError> {
    if pats.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in pats {
        let norm = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        let g = GlobBuilder::new(norm.trim_end_matches('/'))
            .literal_separator(true)
            .build()
            .map_err(|source| SelectError::Glob {
                flag,
                pattern: p.clone(),
                source,
            })?;
        b.add(g);
    }
    let set = b.build().map_err(|source| SelectError::Glob {
        flag,
        pattern: pats.join(" "),
        source,
    })?;
    Ok(Some((set, pats.to_vec())))
}

/// The first pattern of `set` that matches `path` or one of its ancestors.
fn matching(set: &Globs, path: &str) -> Option<String> {
    let (set, pats) = set.as_ref()?;
    let mut p = Some(path);
    while let Some(cur) = p {
        if let Some(i) = set.matches(cur).first() {
            return pats.get(*i).cloned();
        }
        p = root::parent(cur).filter(|q| *q != "/");
    }
    None
}

fn is_pseudo(path: &str) -> bool {
    PSEUDO.iter().any(|p| {
        path.starts_with(p)
            && (path.len() == p.len() || path.as_bytes().get(p.len()) == Some(&b'/'))
    })
}

impl KeepSet {
    /// An empty set over `root`; `excludes`/`preserves` are the `--exclude` and
    /// `--preserve-path` globs.
    pub fn new(
        root: Rootfs,
        path_dirs: Vec<String>,
        workdir: Option<String>,
        excludes: &[String],
        preserves: &[String],
    ) -> Result<Self, SelectError> {
        Ok(KeepSet {
            root,
            path_dirs,
            workdir,
            entries: BTreeMap::new(),
            generated: BTreeMap::new(),
            created_dirs: BTreeMap::new(),
            excluded: BTreeMap::new(),
            warnings: Vec::new(),
            pending_files: VecDeque::new(),
            exclude: globset("--exclude", excludes)?,
            preserve: globset("--preserve-path", preserves)?,
            dir_cache: HashMap::new(),
        })
    }

    /// The rootfs everything is resolved in.
    pub fn root(&self) -> &Rootfs {
        &self.root
    }

    /// Whether a canonical path is kept.
    pub fn contains(&self, canonical: &str) -> bool {
        self.entries.contains_key(canonical)
    }

    /// The kept canonical paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    /// The first kept canonical path (in sorted order) that `pred` accepts.
    pub fn first_path(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.entries.keys().find(|p| pred(p)).cloned()
    }

    /// How many paths are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Records something pare could not resolve.
    pub fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// The writer takes this content for `canonical` (which must be kept) instead of the
    /// rootfs's file.
    pub fn generate(&mut self, canonical: String, content: Vec<u8>) {
        self.generated.insert(canonical, content);
    }

    /// A directory the slim image gets although the rootfs lacks it.
    pub fn create_dir(&mut self, path: &str, mode: u32) {
        self.created_dirs.insert(path.to_string(), mode);
    }

    /// The next newly kept regular file nobody has looked at yet.
    pub fn next_pending(&mut self) -> Option<String> {
        self.pending_files.pop_front()
    }

    /// Adds a canonical path with a reason. Returns true when the path is newly kept.
    pub fn add(&mut self, canonical: &str, reason: Reason) -> bool {
        // The runtime mounts /proc, /sys and /dev: their mount points may be kept, never
        // what the rootfs happens to hold below them.
        if is_pseudo(canonical) && !PSEUDO.contains(&canonical) {
            return false;
        }
        let preserved = matches!(reason, Reason::PreservePath { .. })
            || matching(&self.preserve, canonical).is_some();
        if !preserved && let Some(glob) = matching(&self.exclude, canonical) {
            self.excluded.entry(canonical.to_string()).or_insert(glob);
            return false;
        }
        if let Some(kept) = self.entries.get_mut(canonical) {
            if kept.reasons.len() < MAX_REASONS && !kept.reasons.contains(&reason) {
                kept.reasons.push(reason);
            }
            return false;
        }
        self.entries.insert(
            canonical.to_string(),
            Kept {
                reasons: vec![reason],
            },
        );
        if self.root.lstat(canonical).is_some_and(|m| m.is_file()) {
            self.pending_files.push_back(canonical.to_string());
        }
        true
    }

    /// Keeps `raw` (as the app would open it): every symlink on the way and the final object.
    /// Returns the canonical path when it exists.
    pub fn keep(&mut self, raw: &str, reason: Reason) -> Option<String> {
        let raw = root::normalize(raw);
        if is_pseudo(&raw) {
            return None;
        }
        let res = match self.root.resolve(&raw, true) {
            Ok(r) => r,
            Err(e) => {
                self.warnings.push(pare_progress::chain(&e));
                return None;
            }
        };
        for link in &res.links {
            if !is_pseudo(link) {
                self.add(
                    link,
                    Reason::SymlinkChain {
                        of: raw.clone(),
                        target: ImagePath::clamped(&res.path),
                    },
                );
            }
        }
        if !res.exists || is_pseudo(&res.path) {
            return None;
        }
        self.add(&res.path, reason);
        Some(res.path)
    }

    /// Keeps a path and, when it is a directory, its whole subtree.
    pub fn keep_tree(&mut self, raw: &str, reason: Reason) {
        let Some(canonical) = self.keep(raw, reason.clone()) else {
            return;
        };
        if !self.root.lstat(&canonical).is_some_and(|m| m.is_dir()) {
            return;
        }
        let host = self.root.host(&canonical);
        for entry in walkdir::WalkDir::new(&host)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1)
        {
            let Ok(entry) = entry else { continue };
            let Ok(rel) = entry.path().strip_prefix(&host) else {
                continue;
            };
            let Some(rel) = rel.to_str() else {
                self.warnings.push(format!(
                    "{}: name is not UTF-8, skipped",
                    entry.path().display()
                ));
                continue;
            };
            let p = format!("{}/{rel}", canonical.trim_end_matches('/'));
            if entry.path_is_symlink() {
                self.keep(&p, reason.clone());
            } else {
                self.add(&p, reason.clone());
            }
        }
    }

    /// Finds an executable `name` in the image's `PATH`; returns the path as found.
    pub fn which(&self, name: &str) -> Option<String> {
        if name.contains('/') {
            let p = if name.starts_with('/') {
                name.to_string()
            } else {
                format!("{}/{name}", self.workdir.as_deref().unwrap_or("/"))
            };
            return Some(root::normalize(&p));
        }
        self.path_dirs.iter().find_map(|d| {
            let cand = root::normalize(&format!("{d}/{name}"));
            let res = self.root.resolve(&cand, true).ok()?;
            let md = self.root.lstat(&res.path)?;
            (res.exists && md.is_file() && md.permissions().mode() & 0o111 != 0).then_some(cand)
        })
    }

    /// Directory listing (names, sorted) of a canonical directory, cached.
    pub fn list_dir(&mut self, canonical: &str) -> Vec<String> {
        if let Some(v) = self.dir_cache.get(canonical) {
            return v.clone();
        }
        let mut v: Vec<String> = std::fs::read_dir(self.root.host(canonical))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        self.dir_cache.insert(canonical.to_string(), v.clone());
        v
    }

    /// Adds every missing parent directory, with the first child that needed it (a parent
    /// the rootfs lacks becomes a created directory), and returns the selection.
    pub fn finish(mut self) -> Selection {
        let paths: Vec<String> = self
            .entries
            .keys()
            .cloned()
            .chain(self.created_dirs.keys().cloned())
            .collect();
        for p in paths {
            let mut cur = p.as_str();
            while let Some(parent) = root::parent(cur) {
                if parent == "/" {
                    break;
                }
                if self.entries.contains_key(parent) {
                    break;
                }
                if self.root.lstat(parent).is_some() {
                    self.entries.insert(
                        parent.to_string(),
                        Kept {
                            reasons: vec![Reason::Parent {
                                of: ImagePath::clamped(&p),
                            }],
                        },
                    );
                } else {
                    self.created_dirs.entry(parent.to_string()).or_insert(0o755);
                }
                cur = parent;
            }
        }
        Selection {
            entries: typed(self.entries),
            generated: typed(self.generated),
            created_dirs: typed(self.created_dirs),
            excluded: typed(self.excluded),
            warnings: self.warnings,
        }
    }
}

/// The set's canonical absolute paths as [`ImagePath`]s (on which `clamped` changes nothing),
/// for the [`Selection`] handed to other crates.
fn typed<V>(map: BTreeMap<String, V>) -> BTreeMap<ImagePath, V> {
    map.into_iter()
        .map(|(k, v)| (ImagePath::clamped(&k), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    /// The documented handling of names that are not UTF-8 (docs/limits.md): selection paths
    /// are UTF-8, so such a name in a kept tree is skipped with a warning, and a symlink whose
    /// target is not UTF-8 is a warning too, not kept.
    #[test]
    fn names_that_are_not_utf8_are_skipped_with_a_warning() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("data");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("ok.txt"), b"").unwrap();
        std::fs::write(d.join(OsStr::from_bytes(b"caf\xe9.txt")), b"").unwrap();
        std::os::unix::fs::symlink(OsStr::from_bytes(b"caf\xe9.txt"), t.path().join("l")).unwrap();
        let root = Rootfs::new(t.path()).unwrap();
        let mut set = KeepSet::new(root, vec![], None, &[], &[]).unwrap();
        set.keep_tree("/data", Reason::IncludeShell);
        assert!(set.keep("/l", Reason::IncludeShell).is_none());
        let sel = set.finish();
        let kept: Vec<&str> = sel.entries.keys().map(ImagePath::as_str).collect();
        assert_eq!(kept, ["/data", "/data/ok.txt"]);
        assert_eq!(sel.warnings.len(), 2, "{:?}", sel.warnings);
        assert!(sel.warnings[0].ends_with("name is not UTF-8, skipped"));
        assert!(sel.warnings[1].ends_with("symlink target is not UTF-8"));
    }
}
