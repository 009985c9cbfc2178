//! What the probes never exercised: files under the app's own directories (its `WORKDIR`, its
//! `VOLUME`s, and the directories it served or read from) that the slim image drops because
//! nothing asked for them. No tracer can see a request nobody made (`/srv/sub/page.txt` when
//! the probes only fetched `/`), but pare can say which files that leaves out, so the user can
//! keep them (`--include-path DIR`) or add a probe.

use std::collections::BTreeSet;

use pare_image::ImagePath;
use pare_trace::{AccessKind, SensorReport};
use serde::{Deserialize, Serialize};

use crate::root::{Rootfs, normalize};
use crate::{ImageFacts, SelectError, Selection};

/// Directories of the system, not of the app: reading a file there does not make the
/// directory "served" (a Python app reads the standard library; that is not its content).
const SYSTEM: &[&str] = &[
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/tmp",
    "/var/lib",
    "/var/cache",
    "/var/log",
    "/var/run",
    "/var/tmp",
    "/opt/java",
    "/nix",
];

/// Web roots inside system directories: a server reading there is serving content.
const WEB_ROOTS: &[&str] = &[
    "/usr/share/nginx/html",
    "/usr/local/apache2/htdocs",
    "/usr/share/caddy",
    "/var/lib/nginx/html",
];

/// Paths shown per directory.
const EXAMPLES: usize = 5;

/// Files under one app directory that the slim image does not have and nothing asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unexercised {
    /// The directory (canonical, no symlink on the way).
    pub dir: ImagePath,
    /// Why it counts as the app's: `WORKDIR`, `VOLUME`, or `served` (the app opened it or
    /// read files in it).
    pub why: String,
    /// Dropped files (regular files and symlinks) under it.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// A few of them, sorted.
    pub examples: Vec<ImagePath>,
}

fn under(path: &str, dir: &str) -> bool {
    dir == "/" || path == dir || path.starts_with(&format!("{dir}/"))
}

fn is_system(path: &str) -> bool {
    SYSTEM.iter().any(|s| under(path, s)) && !WEB_ROOTS.iter().any(|w| under(path, w))
}

/// The app's directories: `WORKDIR`, `VOLUME`s, and the directories it opened or read
/// regular files from outside the system's own (`/usr`, `/etc`, …). Nested ones fold into
/// the outermost; `/` never counts (it would list the whole image).
pub fn app_dirs(
    rootfs: &Rootfs,
    trace: &SensorReport,
    facts: &ImageFacts,
) -> Vec<(String, String)> {
    let mut dirs: Vec<(String, String)> = Vec::new();
    let canonical_dir = |p: &str| -> Option<String> {
        let r = rootfs.resolve(&normalize(p), true).ok()?;
        (r.exists && rootfs.lstat(&r.path)?.is_dir() && r.path != "/").then_some(r.path)
    };
    if let Some(w) = facts.workdir.as_deref().and_then(canonical_dir) {
        dirs.push((w, "WORKDIR".into()));
    }
    for v in &facts.volumes {
        if let Some(v) = canonical_dir(v) {
            dirs.push((v, "VOLUME".into()));
        }
    }
    let mut served = BTreeSet::new();
    for (path, rec) in &trace.files {
        if !rec.found || !rec.kinds.contains(&AccessKind::Open) {
            continue;
        }
        let Ok(r) = rootfs.resolve(&normalize(path), true) else {
            continue;
        };
        if !r.exists || is_system(&r.path) {
            continue;
        }
        let Some(md) = rootfs.lstat(&r.path) else {
            continue;
        };
        let dir = if md.is_dir() {
            r.path
        } else {
            crate::root::parent(&r.path).unwrap_or("/").to_string()
        };
        if dir != "/" && !is_system(&dir) {
            served.insert(dir);
        }
    }
    dirs.extend(served.into_iter().map(|d| (d, "served".to_string())));
    // Outermost first; drop any directory inside one already listed.
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, String)> = Vec::new();
    for (d, why) in dirs {
        if !out.iter().any(|(o, _)| under(&d, o)) {
            out.push((d, why));
        }
    }
    out
}

/// Files under the app's directories ([`app_dirs`]) that `selection` drops, not counting
/// those an `--exclude` removed on purpose. One entry per directory that lost something.
pub fn unexercised(
    rootfs: &std::path::Path,
    trace: &SensorReport,
    facts: &ImageFacts,
    selection: &Selection,
) -> Result<Vec<Unexercised>, SelectError> {
    let root = Rootfs::new(rootfs)?;
    let mut out = Vec::new();
    for (dir, why) in app_dirs(&root, trace, facts) {
        let mut u = Unexercised {
            dir: ImagePath::clamped(&dir),
            why,
            files: 0,
            bytes: 0,
            examples: Vec::new(),
        };
        // `dir` is canonical (no symlinks on the way), and walkdir does not follow links:
        // the walk stays inside the rootfs.
        let base = root.host(&dir);
        let mut paths = Vec::new();
        for entry in walkdir::WalkDir::new(&base)
            .follow_links(false)
            .sort_by_file_name()
        {
            let Ok(entry) = entry else { continue };
            if entry.file_type().is_dir() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(root.base()) else {
                continue;
            };
            let path = ImagePath::from_rel(&rel.to_string_lossy());
            if selection.entries.contains_key(&path)
                || selection.generated.contains_key(&path)
                || selection.excluded.contains_key(&path)
            {
                continue;
            }
            u.files += 1;
            u.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if paths.len() < EXAMPLES {
                paths.push(path);
            }
        }
        u.examples = paths;
        if u.files > 0 {
            out.push(u);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pare_trace::FileRecord;

    fn opened(paths: &[&str]) -> SensorReport {
        let mut r = SensorReport::default();
        for p in paths {
            let mut rec = FileRecord::default();
            rec.kinds.insert(AccessKind::Open);
            rec.found = true;
            r.files.insert(p.to_string(), rec);
        }
        r
    }

    #[test]
    fn files_under_served_and_working_dirs_that_nothing_asked_for() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        for d in ["srv/sub", "app/static", "usr/lib/python3", "data", "etc"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for (f, body) in [
            ("srv/index.html", "hi"),
            ("srv/sub/page.txt", "page"),
            ("app/main.py", "x"),
            ("app/static/logo.png", "png!"),
            ("usr/lib/python3/os.py", "os"),
            ("usr/lib/python3/unused.py", "u"),
            ("data/db", "d"),
            ("etc/hosts", "h"),
        ] {
            std::fs::write(root.join(f), body).unwrap();
        }
        // /www is a link to /srv: served through it, reported as /srv.
        std::os::unix::fs::symlink("/srv", root.join("www")).unwrap();
        let trace = opened(&[
            "/www/index.html",
            "/app/main.py",
            "/usr/lib/python3/os.py",
            "/etc/hosts",
        ]);
        let facts = ImageFacts {
            workdir: Some("/app".into()),
            volumes: vec!["/data".into()],
            ..Default::default()
        };
        let mut sel = Selection::default();
        for p in [
            "/srv",
            "/srv/index.html",
            "/app",
            "/app/main.py",
            "/usr/lib/python3/os.py",
            "/etc/hosts",
        ] {
            sel.entries
                .insert(p.parse().unwrap(), crate::Kept { reasons: vec![] });
        }
        let u = unexercised(root, &trace, &facts, &sel).unwrap();
        let got: Vec<(&str, &str, u64, u64)> = u
            .iter()
            .map(|u| (u.dir.as_str(), u.why.as_str(), u.files, u.bytes))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/app", "WORKDIR", 1, 4),
                ("/data", "VOLUME", 1, 1),
                ("/srv", "served", 1, 4),
            ]
        );
        assert_eq!(u[2].examples, vec!["/srv/sub/page.txt"]);
        // A web root under /usr is content, the rest of /usr is not.
        assert!(!is_system("/usr/share/nginx/html/css") && is_system("/usr/share/nginx"));
        // The standard library is not the app's: unused.py is not listed.
        assert!(!u.iter().any(|u| u.dir.starts_with("/usr")));

        // Kept or excluded on purpose: nothing to say.
        sel.entries.insert(
            "/srv/sub/page.txt".parse().unwrap(),
            crate::Kept { reasons: vec![] },
        );
        sel.excluded.insert(
            "/app/static/logo.png".parse().unwrap(),
            "/app/static/**".into(),
        );
        let u = unexercised(root, &trace, &facts, &sel).unwrap();
        assert_eq!(u.len(), 1, "{u:?}");
        assert_eq!(u[0].dir, "/data");
    }
}
