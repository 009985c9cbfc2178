//! Removes the blob cache's temp files (`.tmp-<hex>-<pid>-<n>`) that a killed run left: a
//! download writes into one and renames it into place when the digest checks out, so a
//! Ctrl-C or `kill -9` mid-download leaves it behind for good otherwise.
//!
//! A temp file is stale when
//! - its owner is gone: no process with that pid here, or the pid is this process's own (the
//!   sweep runs once per process and directory, before this process made any temp file there,
//!   so a file naming our pid is another pid namespace's, e.g. pid 1 of an earlier CI job on a
//!   shared cache volume), and nothing has written to it for [`DEAD_OWNER_GRACE`] (a live
//!   writer in another pid namespace writes at least once per registry timeout);
//! - or nothing has written to it for [`MAX_AGE`], whoever owns it (a reused pid).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long a temp file of a dead owner is left alone.
pub(crate) const DEAD_OWNER_GRACE: Duration = Duration::from_secs(120);
/// Any temp file not written to for this long is removed.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The pid a temp file's name carries: `.tmp-<hex>-<pid>-<n>`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".tmp-")?;
    let mut parts = rest.rsplitn(3, '-');
    let _n: u64 = parts.next()?.parse().ok()?;
    parts.next()?.parse().ok()
}

fn running(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes the stale temp files in `sha256_dir`; returns how many went. Best effort: what
/// cannot be read or removed is left.
pub(crate) fn sweep_stale_temps(sha256_dir: &Path, now: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(sha256_dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        let Ok(modified) = e.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        let idle = now.duration_since(modified).unwrap_or(Duration::ZERO);
        let stale = idle >= MAX_AGE || (idle >= DEAD_OWNER_GRACE && !running(pid));
        if stale && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// [`sweep_stale_temps`] once per process for each cache directory.
pub(crate) fn sweep_once(sha256_dir: &Path) {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let Ok(mut swept) = SWEPT.lock() else {
        return;
    };
    if swept
        .get_or_insert_with(HashSet::new)
        .insert(sha256_dir.to_path_buf())
    {
        sweep_stale_temps(sha256_dir, SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, idle: Duration) -> PathBuf {
        let p = dir.join(name);
        let f = std::fs::File::create(&p).unwrap();
        f.set_modified(SystemTime::now() - idle).unwrap();
        p
    }

    #[test]
    fn names_carry_the_owner_pid() {
        assert_eq!(owner_pid(".tmp-ab12-4242-7"), Some(4242));
        assert_eq!(owner_pid(".tmp-ab12-4242-x"), None);
        assert_eq!(owner_pid("ab12"), None);
        assert_eq!(owner_pid(".tmp-ab12"), None);
    }

    #[test]
    fn only_temps_of_dead_owners_or_very_old_ones_go() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        // A live process that is not us, and a pid that has exited.
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let live_pid = live.id();
        let me = std::process::id();
        let min = |m: u64| Duration::from_secs(60 * m);
        let gone = [
            touch(dir, &format!(".tmp-aa-{dead_pid}-0"), min(3)),
            // Our own pid before we made any temp: another pid namespace's.
            touch(dir, &format!(".tmp-bb-{me}-0"), min(3)),
            touch(dir, &format!(".tmp-cc-{live_pid}-0"), min(25 * 60)),
        ];
        let kept = [
            // A live owner, recently written.
            touch(dir, &format!(".tmp-dd-{live_pid}-1"), min(3)),
            // A dead owner, but written to a moment ago (another pid namespace, live).
            touch(
                dir,
                &format!(".tmp-ee-{dead_pid}-1"),
                Duration::from_secs(5),
            ),
            // Cache entries and foreign names, however old.
            touch(dir, "ffff", min(48 * 60)),
            touch(dir, ".tmp-not-ours", min(48 * 60)),
        ];
        assert_eq!(sweep_stale_temps(dir, SystemTime::now()), gone.len());
        let _ = live.kill();
        let _ = live.wait();
        for p in &gone {
            assert!(!p.exists(), "{} removed", p.display());
        }
        for p in &kept {
            assert!(p.exists(), "{} kept", p.display());
        }
    }
}
