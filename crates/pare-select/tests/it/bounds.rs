//! Resource bounds: symlink loops reached by the static closure (entrypoint, PATH lookups,
//! library paths, kept directory trees) end with a warning naming the path, never a hang.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant};

use pare_select::{ImageFacts, SelectInputs, select};

fn write(root: &Path, p: &str, content: &[u8]) {
    let host = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(host.parent().unwrap()).unwrap();
    fs::write(&host, content).unwrap();
    fs::set_permissions(&host, fs::Permissions::from_mode(0o755)).unwrap();
}

fn link(root: &Path, p: &str, target: &str) {
    let host = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(host.parent().unwrap()).unwrap();
    symlink(target, host).unwrap();
}

#[test]
fn symlink_loops_in_the_static_closure_are_warnings_not_hangs() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    write(root, "/bin/sh", b"#!/bin/sh\n");
    // The entrypoint is a two-link loop; PATH and LD_LIBRARY_PATH hold self-loops.
    link(root, "/app/run", "/app/run2");
    link(root, "/app/run2", "run");
    link(root, "/loopdir", "/loopdir");
    link(root, "/libloop", "libloop/../libloop");
    // A kept tree full of loops, directory loops included, next to one real file.
    write(root, "/data/f", b"data");
    link(root, "/data/self", ".");
    link(root, "/data/up", "../data");
    link(root, "/data/a", "b");
    link(root, "/data/b", "a");
    link(root, "/data/deep/x", "/data/deep/x/y");
    let inputs = SelectInputs {
        facts: ImageFacts {
            entrypoint: vec!["/app/run".into()],
            cmd: vec!["tool".into()],
            env: vec![
                "PATH=/loopdir:/loopdir/sub:/bin".into(),
                "LD_LIBRARY_PATH=/libloop:/libloop/x".into(),
            ],
            ..Default::default()
        },
        include_paths: vec!["/data".into()],
        include_exes: vec!["tool".into(), "sh".into()],
        include_bins: vec!["/app/run2".into()],
        ..Default::default()
    };
    let start = Instant::now();
    let sel = select(root, &inputs).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    // The real content and the links that resolve are kept; links that never resolve are
    // left out (each with a warning).
    for p in ["/data/f", "/data/self", "/data/up", "/bin/sh"] {
        assert!(sel.entries.contains_key(p), "{p}: {:?}", sel.entries.keys());
    }
    for p in ["/data/a", "/data/b", "/data/deep/x", "/app/run"] {
        assert!(
            !sel.entries.contains_key(p),
            "{p}: {:?}",
            sel.entries.keys()
        );
    }
    // Every loop is reported as one line naming the path.
    let loops: Vec<&String> = sel
        .warnings
        .iter()
        .filter(|w| w.contains("symbolic links"))
        .collect();
    assert!(
        loops.iter().any(|w| w.contains("/app/run")),
        "{:?}",
        sel.warnings
    );
    assert!(
        loops.iter().any(|w| w.contains("/data/a")),
        "{:?}",
        sel.warnings
    );
    assert!(sel.warnings.iter().all(|w| !w.contains('\n')));
    for p in sel.entries.keys() {
        assert!(p.starts_with('/') && !p.contains(".."), "{p}");
    }
}
