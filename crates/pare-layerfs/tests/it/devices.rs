//! Device nodes and FIFOs: left out by default, created with their numbers, mode and owner by
//! `extract_with(ExtractOptions::with_devices())` (what `pare squash` uses).

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use pare_layerfs::{ExtractOptions, extract, extract_with};
use pare_test_support::layer::MemSource;

/// A layer with `dev/null` (char 1:3), `dev/loop9` (block 7:9) and a FIFO `run/ctl`.
fn layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, major, minor, mode) in [
        ("dev/", tar::EntryType::Directory, 0, 0, 0o755),
        ("dev/null", tar::EntryType::Char, 1, 3, 0o666),
        ("dev/loop9", tar::EntryType::Block, 7, 9, 0o660),
        ("run/", tar::EntryType::Directory, 0, 0, 0o755),
        ("run/ctl", tar::EntryType::Fifo, 0, 0, 0o620),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(6);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    }
    b.into_inner().unwrap()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn devices_are_created_only_when_asked() {
    let src = MemSource::with_history(vec![layer()], &["RUN mknod"]);
    let plain = tempfile::tempdir().unwrap();
    let stats = extract(&src, plain.path()).unwrap();
    assert_eq!(stats.skipped, 3);
    for p in ["dev/null", "dev/loop9", "run/ctl"] {
        assert!(
            std::fs::symlink_metadata(plain.path().join(p)).is_err(),
            "{p}"
        );
    }

    let full = tempfile::tempdir().unwrap();
    let stats = extract_with(&src, full.path(), &ExtractOptions::with_devices()).unwrap();
    // A FIFO needs no privilege.
    let fifo = std::fs::symlink_metadata(full.path().join("run/ctl")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);
    if !is_root() {
        eprintln!("skipped: creating device nodes needs root");
        assert_eq!(stats.skipped, 2);
        return;
    }
    assert_eq!(stats.skipped, 0);
    let null = std::fs::symlink_metadata(full.path().join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!((null.mode() & 0o7777, null.gid()), (0o666, 6));
    let lp = std::fs::symlink_metadata(full.path().join("dev/loop9")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), nix::sys::stat::makedev(7, 9));
    assert_eq!(lp.mode() & 0o7777, 0o660);
}
