//! Temp files and dirs beside an output, named so that a Ctrl-C handler can remove them.
//!
//! Outputs are written atomically: a temp file or dir in the target's own directory, renamed
//! into place when complete. On Ctrl-C the process exits from its signal handler and no
//! destructor runs, so every temp is named `.pare-PID-KIND-…` and its directory remembered:
//! [`remove_temp_files`] deletes exactly this process's leftovers, never another pare's.
//! A pare killed with SIGKILL cleans nothing; its temps are swept by the next pare that writes
//! beside them: `.pare-PID-…` entries whose PID no longer runs and that nobody touched for
//! [`STALE_AFTER`] (so that a live pare in another PID namespace is left alone).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static DIRS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn prefix(kind: &str) -> String {
    format!("{}{kind}-", own_prefix())
}

fn own_prefix() -> String {
    format!(".pare-{}-", std::process::id())
}

/// How long a dead process's temp must have been left untouched before it is swept.
pub(crate) const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

fn note(dir: &Path) {
    let first = DIRS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.to_path_buf());
    if first {
        sweep_dead(dir);
    }
}

/// Removes the `.pare-PID-…` temps in `dir` of processes that no longer run (killed with
/// SIGKILL mid-write). Returns how many it removed.
pub(crate) fn sweep_dead(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".pare-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let idle = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|d| d >= STALE_AFTER);
        if !idle {
            continue;
        }
        if remove_entry(&e) {
            removed += 1;
        }
    }
    removed
}

/// Removes a temp entry, a whole tree when it is a directory; whether it is gone.
fn remove_entry(e: &std::fs::DirEntry) -> bool {
    let p = e.path();
    match e.file_type() {
        Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
        _ => std::fs::remove_file(&p),
    }
    .is_ok()
}

/// A temp file in `dir` (same filesystem as the target, for the rename).
pub(crate) fn file_in(dir: &Path, kind: &str) -> std::io::Result<tempfile::NamedTempFile> {
    note(dir);
    tempfile::Builder::new()
        .prefix(&prefix(kind))
        .tempfile_in(dir)
}

/// A temp dir in `dir`.
pub(crate) fn dir_in(dir: &Path, kind: &str) -> std::io::Result<tempfile::TempDir> {
    note(dir);
    tempfile::Builder::new()
        .prefix(&prefix(kind))
        .tempdir_in(dir)
}

/// Removes every temp file and dir this process made for its outputs that is still there
/// (call it from a Ctrl-C handler). Returns how many it removed.
pub fn remove_temp_files() -> usize {
    let ours = own_prefix();
    let dirs: Vec<PathBuf> = DIRS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    let mut removed = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().starts_with(&ours) {
                continue;
            }
            if remove_entry(&e) {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_this_process_temps() {
        let t = tempfile::tempdir().unwrap();
        let f = file_in(t.path(), "layer").unwrap();
        let d = dir_in(t.path(), "oci").unwrap();
        std::fs::write(d.path().join("blob"), b"x").unwrap();
        // Another process's temp and the finished output stay.
        std::fs::write(t.path().join(".pare-1-layer-abc"), b"other").unwrap();
        std::fs::write(t.path().join("slim.tar"), b"done").unwrap();
        let (fp, dp) = (f.path().to_path_buf(), d.path().to_path_buf());
        // As after a Ctrl-C: the handles are never dropped.
        std::mem::forget(f);
        std::mem::forget(d);
        assert!(remove_temp_files() >= 2);
        assert!(!fp.exists() && !dp.exists());
        assert!(t.path().join(".pare-1-layer-abc").exists());
        assert!(t.path().join("slim.tar").exists());
    }

    #[test]
    fn sweeps_only_idle_temps_of_dead_processes() {
        let t = tempfile::tempdir().unwrap();
        // A PID that does not run: a child that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let dead = child.id();
        let old = std::time::SystemTime::now() - STALE_AFTER * 2;
        let mk = |name: &str, dir: bool, touched: Option<std::time::SystemTime>| {
            let p = t.path().join(name);
            if dir {
                std::fs::create_dir(&p).unwrap();
                std::fs::write(p.join("blob"), b"x").unwrap();
            } else {
                std::fs::write(&p, b"half").unwrap();
            }
            if let Some(when) = touched {
                filetime::set_file_mtime(&p, filetime::FileTime::from_system_time(when)).unwrap();
            }
            p
        };
        let dead_file = mk(&format!(".pare-{dead}-layer-a"), false, Some(old));
        let dead_dir = mk(&format!(".pare-{dead}-oci-b"), true, Some(old));
        let dead_fresh = mk(&format!(".pare-{dead}-archive-c"), false, None);
        let alive = mk(".pare-1-layer-d", false, Some(old));
        let output = mk("slim.tar", false, Some(old));
        let unrelated = mk(".pare-notapid-x", false, Some(old));
        assert_eq!(sweep_dead(t.path()), 2);
        assert!(!dead_file.exists() && !dead_dir.exists());
        for kept in [dead_fresh, alive, output, unrelated] {
            assert!(kept.exists(), "{kept:?} was removed");
        }
    }
}
