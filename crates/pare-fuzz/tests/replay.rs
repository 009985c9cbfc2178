//! Replays every committed fuzz input through its target: the seed corpus
//! (`fuzz/corpus/TARGET/`) and the inputs of crashes and hangs found and fixed
//! (`fuzz/regressions/TARGET/`). Each input must return within a time limit without a panic.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

/// Runs `f` on `input` in its own thread; `Err` on a panic or when it exceeds [`LIMIT`].
fn replay(f: fn(&[u8]), input: &Path) -> Result<(), String> {
    let data = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| f(&data));
        let _ = tx.send(r.is_ok());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(true) => Ok(()),
        Ok(false) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(format!("{}: panicked", input.display()))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "{}: still running after {LIMIT:?}",
            input.display()
        )),
    }
}

fn check(kind: &str, need_some: bool) {
    let mut failures = Vec::new();
    for (name, f) in pare_fuzz::targets::TARGETS {
        let files = inputs(&fuzz_dir().join(kind).join(name));
        if need_some && files.is_empty() {
            failures.push(format!("{kind}/{name}: no inputs committed"));
        }
        for p in files {
            if let Err(e) = replay(*f, &p) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seed_corpus_runs_clean() {
    check("corpus", true);
}

#[test]
fn fixed_crashes_stay_fixed() {
    check("regressions", false);
}

#[test]
fn every_target_is_registered_once() {
    let names: Vec<&str> = pare_fuzz::targets::TARGETS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    for n in [
        "compose",
        "dive_ci",
        "dockerfile",
        "hadolint_config",
        "image_json",
        "layer_tar",
        "merge",
        "shell",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
        assert!(pare_fuzz::target(n).is_some());
    }
    assert!(pare_fuzz::target("nope").is_none());
}
