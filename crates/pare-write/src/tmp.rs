//! Temp files and dirs beside an output, named so that a Ctrl-C handler can remove them.
//!
//! Outputs are written atomically: a temp file or dir in the target's own directory, renamed
//! into place when complete. On Ctrl-C the process exits from its signal handler and no
//! destructor runs, so every temp is named `.pare-PID-KIND-…` and its directory remembered:
//! [`remove_temp_files`] deletes exactly this process's leftovers, never another pare's.

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

fn note(dir: &Path) {
    DIRS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.to_path_buf());
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
            let p = e.path();
            let gone = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                _ => std::fs::remove_file(&p),
            };
            if gone.is_ok() {
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
}
