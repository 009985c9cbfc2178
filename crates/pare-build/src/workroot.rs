//! Where a build's work dir goes. An image read from tar layers (`docker://`, archives, OCI
//! layouts) is extracted into it and removed afterwards: on a busy disk those writes and
//! unlinks are most of a build's time (python-web from a registry: 11 s extracting and 25 s
//! removing on this testbed's disk, 2–3 s and nothing in memory). So the work dir goes to
//! `/dev/shm` when that is a tmpfs with room for the extracted files and memory to spare,
//! else to the temp dir. `$PARE_WORK_DIR` overrides both, and a `$TMPDIR` that is set is
//! obeyed as before (whoever set it chose the place).

use std::path::{Path, PathBuf};

use pare_image::ResolvedImage;

/// The in-memory file system tried first.
const SHM: &str = "/dev/shm";
/// Extracted bytes per compressed layer byte, generous (gzip'd file systems run 2–3×).
const EXPANSION: u64 = 4;
/// Left free on the tmpfs and in memory beside the work dir.
const HEADROOM: u64 = 512 << 20;

/// The directory the work dir of a build of `image` is made in.
pub(crate) fn work_root(image: &ResolvedImage) -> PathBuf {
    if let Some(dir) = std::env::var_os("PARE_WORK_DIR").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    let tmp = std::env::temp_dir();
    if std::env::var_os("TMPDIR").is_some_and(|d| !d.is_empty()) {
        return tmp;
    }
    // A local daemon's layers (no compressed size) are mounted, not extracted.
    let Some(compressed) = image
        .layers
        .iter()
        .map(|l| l.compressed_size)
        .sum::<Option<u64>>()
    else {
        return tmp;
    };
    let need = compressed.saturating_mul(EXPANSION);
    let shm = Path::new(SHM);
    let room = tmpfs_free(shm).zip(memory_available());
    if room.is_some_and(|(free, mem)| fits(need, free, mem)) && writable(shm) {
        shm.to_path_buf()
    } else {
        tmp
    }
}

/// Every directory a work dir may be in (for the sweep of dead builds' dirs).
pub(crate) fn work_roots() -> Vec<PathBuf> {
    let mut roots = vec![std::env::temp_dir(), PathBuf::from(SHM)];
    if let Some(dir) = std::env::var_os("PARE_WORK_DIR").filter(|d| !d.is_empty()) {
        roots.push(dir.into());
    }
    roots
}

/// Whether `need` bytes fit on a tmpfs with `free` bytes when `mem` bytes of memory are
/// available: both keep [`HEADROOM`], and memory keeps as much again as the files take.
fn fits(need: u64, free: u64, mem: u64) -> bool {
    free >= need.saturating_add(HEADROOM) && mem >= need.saturating_mul(2).saturating_add(HEADROOM)
}

/// Free bytes on `dir` when it is a tmpfs.
fn tmpfs_free(dir: &Path) -> Option<u64> {
    let fs = nix::sys::statfs::statfs(dir).ok()?;
    if fs.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC {
        return None;
    }
    let vfs = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(vfs.blocks_available().saturating_mul(vfs.fragment_size()))
}

/// Memory this process may still use: `MemAvailable`, lowered to what the cgroup (v2)
/// limit leaves, since tmpfs pages count against it.
fn memory_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let mut avail = kb.saturating_mul(1024);
    let read = |f: &str| std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(f)).ok();
    if let (Some(max), Some(cur)) = (read("memory.max"), read("memory.current")) {
        if let (Ok(max), Ok(cur)) = (max.trim().parse::<u64>(), cur.trim().parse::<u64>()) {
            avail = avail.min(max.saturating_sub(cur));
        }
    }
    Some(avail)
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_work_dir_goes_to_memory_only_with_room_to_spare() {
        // python-web: 125 MB of gzip layers, 500 MB needed.
        let need = 125 * MIB * EXPANSION;
        assert!(fits(need, 12 * 1024 * MIB, 20 * 1024 * MIB));
        // Docker's default 64 MiB /dev/shm in a container.
        assert!(!fits(need, 64 * MIB, 20 * 1024 * MIB));
        // Room on the tmpfs but not in memory (a tight cgroup limit).
        assert!(!fits(need, 12 * 1024 * MIB, 1024 * MIB));
        assert!(!fits(u64::MAX, u64::MAX, u64::MAX - 1));
    }
}
