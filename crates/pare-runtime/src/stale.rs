//! Temp dirs that name their owning process, so that a later run removes what a killed one
//! left behind: SIGKILL runs no clean-up, and `Cancel` only covers signals the program sees.
//! The embedded runtime's per-run dirs (`pare-run-*`) and pare-build's work dirs
//! (`pare-build-*`) both use it.

use std::path::Path;

use crate::{owner_alive, owner_token};

/// File in an owned temp dir naming the owning process (see [`mark_owned`]).
pub const OWNER_FILE: &str = "owner";

/// Writes this process's owner token (host, pid namespace, pid, start time) into `dir`, so
/// that [`remove_stale_dirs`] can tell later whether its owner still runs.
pub fn mark_owned(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join(OWNER_FILE), owner_token())
}

/// Removes the dirs in `root` whose name starts with `prefix` and whose owner process no
/// longer runs. Dirs of live processes, of another host or pid namespace, and dirs without
/// an owner file (nothing can be said of them) are kept. Returns how many were removed.
///
/// Unowned dirs (made by pare versions before the owner file) are not swept by age: age says
/// nothing of liveness (an older pare can wait for hours in `--continue-after signal` without
/// touching its dir), and versions before the private mount namespace (0ca9151) could leave a
/// killed build's overlay mounted inside its dir, which a recursive removal would walk into.
/// They are a fixed set, left to a temp cleaner (systemd-tmpfiles) where one runs.
pub fn remove_stale_dirs(root: &Path, prefix: &str) -> usize {
    let Ok(rd) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        if !e.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(e.path().join(OWNER_FILE)) else {
            continue;
        };
        if owner_alive(owner.trim()) == Some(false) && std::fs::remove_dir_all(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dirs_of_dead_owners_with_the_prefix_go() {
        let root = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let d = root.path().join(name);
            std::fs::create_dir_all(d.join("rootfs/etc")).unwrap();
            d
        };
        let live = make("pare-build-live");
        mark_owned(&live).unwrap();
        let me = owner_token();
        let (rest, start) = me.rsplit_once(':').unwrap();
        let dead_token = format!("{rest}:{}", start.parse::<u64>().unwrap() + 1);
        let dead = make("pare-build-dead");
        std::fs::write(dead.join(OWNER_FILE), &dead_token).unwrap();
        let other_prefix = make("pare-run-dead");
        std::fs::write(other_prefix.join(OWNER_FILE), &dead_token).unwrap();
        let unowned = make("pare-build-unowned");
        let foreign = make("pare-build-foreign");
        std::fs::write(foreign.join(OWNER_FILE), "otherhost/1:42:7").unwrap();

        assert_eq!(remove_stale_dirs(root.path(), "pare-build-"), 1);
        assert!(
            !dead.exists(),
            "a dead owner's dir is removed, contents and all"
        );
        for kept in [&live, &other_prefix, &unowned, &foreign] {
            assert!(kept.exists(), "{} must be kept", kept.display());
        }
        assert_eq!(remove_stale_dirs(root.path(), "pare-run-"), 1);
        assert_eq!(remove_stale_dirs(&root.path().join("missing"), "pare-"), 0);
    }
}
