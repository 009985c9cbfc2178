//! Aggregates path accesses into [`FileRecord`]s and records symlink chains.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;

use pare_trace::{AccessKind, FileRecord};

use crate::paths::{components, join_normalize, lossy};

/// The result of the syscall that touched a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The path existed (syscall succeeded, or failed with EEXIST).
    Found,
    /// ENOENT/ENOTDIR: the app probed a path that is absent.
    Missing,
    /// Failed for another reason (EACCES, ...): existence unknown.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    To(Vec<u8>),
    Plain,
    Absent,
}

/// Longest symlink chain followed, like the kernel's MAXSYMLINKS.
const MAX_LINKS: usize = 40;

#[derive(Debug, Default)]
pub struct Recorder {
    pub files: BTreeMap<String, FileRecord>,
    link_cache: HashMap<Vec<u8>, Link>,
}

impl Recorder {
    /// Records one access to the normalized absolute `path`, then every symlink met while
    /// resolving it (each link with its target text, and the path it resolves to, with the same
    /// kinds and outcome). `follow_last` is false for syscalls that do not follow a final link
    /// (lstat, readlink, unlink, O_NOFOLLOW, ...).
    pub fn record(
        &mut self,
        path: &[u8],
        kinds: &[AccessKind],
        syscall: &str,
        process: &str,
        outcome: Outcome,
        follow_last: bool,
    ) {
        self.add(path, kinds, syscall, process, outcome);
        self.walk(path, kinds, syscall, process, outcome, follow_last, 0);
    }

    /// Forgets cached link facts about `path` (after the app created, removed or renamed it).
    pub fn invalidate(&mut self, path: &[u8]) {
        self.link_cache.remove(path);
    }

    /// Forgets all cached link facts (after a rename, which can move whole trees).
    pub fn invalidate_all(&mut self) {
        self.link_cache.clear();
    }

    /// Marks `path` as a symlink whose text is `target` (from a symlink syscall).
    pub fn set_symlink(&mut self, path: &[u8], target: &[u8]) {
        if let Some(r) = self.files.get_mut(&lossy(path)) {
            r.symlink = Some(lossy(target));
        }
    }

    fn add(
        &mut self,
        path: &[u8],
        kinds: &[AccessKind],
        syscall: &str,
        process: &str,
        outcome: Outcome,
    ) -> &mut FileRecord {
        let rec = self.files.entry(lossy(path)).or_default();
        for k in kinds {
            rec.kinds.insert(*k);
        }
        if !syscall.is_empty() && !rec.syscalls.contains(syscall) {
            rec.syscalls.insert(syscall.to_string());
        }
        if !process.is_empty() && !rec.processes.contains(process) {
            rec.processes.insert(process.to_string());
        }
        match outcome {
            Outcome::Found => rec.found = true,
            Outcome::Missing => rec.missing = true,
            Outcome::Unknown => {}
        }
        rec
    }

    fn link(&mut self, path: &[u8]) -> Link {
        if let Some(l) = self.link_cache.get(path) {
            return l.clone();
        }
        let p = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        let l = match std::fs::symlink_metadata(p) {
            Err(_) => Link::Absent,
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(p) {
                Ok(t) => Link::To(t.as_os_str().as_bytes().to_vec()),
                Err(_) => Link::Absent,
            },
            Ok(_) => Link::Plain,
        };
        self.link_cache.insert(path.to_vec(), l.clone());
        l
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        path: &[u8],
        kinds: &[AccessKind],
        syscall: &str,
        process: &str,
        outcome: Outcome,
        follow_last: bool,
        depth: usize,
    ) {
        // /proc links (/proc/self, /proc/PID/fd/N, ...) mean something else for the sensor than
        // for the app: never resolve them here.
        if depth >= MAX_LINKS || path == b"/proc" || path.starts_with(b"/proc/") {
            return;
        }
        let comps: Vec<Vec<u8>> = components(path).into_iter().map(<[u8]>::to_vec).collect();
        let mut cur: Vec<u8> = Vec::with_capacity(path.len());
        for (i, c) in comps.iter().enumerate() {
            let mut next = cur.clone();
            next.push(b'/');
            next.extend_from_slice(c);
            let last = i + 1 == comps.len();
            match self.link(&next) {
                Link::Plain => cur = next,
                Link::Absent => return,
                Link::To(target) => {
                    let rec = self.add(
                        &next,
                        &[AccessKind::Readlink],
                        syscall,
                        process,
                        Outcome::Found,
                    );
                    rec.symlink = Some(lossy(&target));
                    if last && !follow_last {
                        return;
                    }
                    let base: &[u8] = if cur.is_empty() { b"/" } else { &cur };
                    let mut resolved = join_normalize(base, &target);
                    for rest in &comps[i + 1..] {
                        if resolved.last() != Some(&b'/') {
                            resolved.push(b'/');
                        }
                        resolved.extend_from_slice(rest);
                    }
                    if resolved != path {
                        self.add(&resolved, kinds, syscall, process, outcome);
                        self.walk(
                            &resolved,
                            kinds,
                            syscall,
                            process,
                            outcome,
                            follow_last,
                            depth + 1,
                        );
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlink_chains_are_recorded() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/file"), b"x").unwrap();
        symlink("real", root.join("dirlink")).unwrap();
        symlink(root.join("dirlink/file"), root.join("abslink")).unwrap();
        let r = root.to_str().unwrap();

        let mut rec = Recorder::default();
        let p = format!("{r}/abslink");
        rec.record(
            p.as_bytes(),
            &[AccessKind::Open],
            "openat",
            "/bin/cat",
            Outcome::Found,
            true,
        );
        let f = &rec.files;
        assert_eq!(
            f[&p].symlink.as_deref(),
            Some(format!("{r}/dirlink/file").as_str())
        );
        assert!(
            f[&p].kinds.contains(&AccessKind::Open) && f[&p].kinds.contains(&AccessKind::Readlink)
        );
        assert_eq!(f[&format!("{r}/dirlink")].symlink.as_deref(), Some("real"));
        let real = &f[&format!("{r}/real/file")];
        assert!(real.found && real.kinds.contains(&AccessKind::Open) && real.symlink.is_none());
        assert!(real.processes.contains("/bin/cat") && real.syscalls.contains("openat"));

        // Not following the last link: only the link itself.
        let mut rec = Recorder::default();
        rec.record(
            p.as_bytes(),
            &[AccessKind::Stat],
            "newfstatat",
            "",
            Outcome::Found,
            false,
        );
        assert_eq!(rec.files.len(), 1);

        // A missing file under a directory link: the link and the resolved path are recorded.
        let mut rec = Recorder::default();
        let m = format!("{r}/dirlink/absent");
        rec.record(
            m.as_bytes(),
            &[AccessKind::Open],
            "openat",
            "",
            Outcome::Missing,
            true,
        );
        assert!(rec.files[&m].missing && !rec.files[&m].found);
        assert!(rec.files[&format!("{r}/real/absent")].missing);
        assert!(rec.files[&format!("{r}/dirlink")].found);
    }

    #[test]
    fn proc_links_are_not_resolved_in_the_sensor() {
        let mut rec = Recorder::default();
        rec.record(
            b"/proc/self/maps",
            &[AccessKind::Open],
            "openat",
            "",
            Outcome::Found,
            true,
        );
        assert_eq!(
            rec.files.keys().collect::<Vec<_>>(),
            vec!["/proc/self/maps"]
        );
        let mut rec = Recorder::default();
        rec.record(
            b"/dev/stdin",
            &[AccessKind::Open],
            "openat",
            "",
            Outcome::Found,
            true,
        );
        if let Some(l) = rec.files.get("/dev/stdin").and_then(|f| f.symlink.clone()) {
            assert_eq!(l, "/proc/self/fd/0");
            assert!(
                rec.files
                    .keys()
                    .all(|k| !k.starts_with(&format!("/proc/{}", std::process::id())))
            );
        }
    }

    #[test]
    fn link_loops_end() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        let mut rec = Recorder::default();
        let p = format!("{}/a/x", root.to_str().unwrap());
        rec.record(
            p.as_bytes(),
            &[AccessKind::Open],
            "open",
            "",
            Outcome::Unknown,
            true,
        );
        assert!(rec.files.len() >= 3);
    }
}
