//! `pare xray --tui` end to end: the real binary in a tmux pane (send-keys, capture-pane), and
//! its refusal without a terminal. The tmux test is skipped, with a message, when tmux is
//! missing (scripts/testbed installs it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pare_source::Compression;
use pare_test_support::fixture::{self, Image};
use pare_test_support::layer::LayerBuilder as L;

fn layout(dir: &Path) -> String {
    let img = Image::new(vec![
        L::new()
            .dir("usr/lib")
            .sized("usr/lib/libbig.so", 3_000_000, b'b')
            .finish(),
        L::new()
            .dir("app")
            .sized("app/server", 40_000, b'a')
            .whiteout("usr/lib/libbig.so")
            .finish(),
    ]);
    fixture::write_oci_layout(dir, &img, Compression::Gzip).unwrap();
    format!("oci:{}", dir.display())
}

#[test]
fn refuses_without_a_terminal() {
    let t = tempfile::tempdir().unwrap();
    let r = layout(&t.path().join("img"));
    let out = crate::cli::pare()
        .args(["xray", &r, "--tui"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tui needs a terminal"));
}

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux").args(args).output().unwrap()
}

#[test]
fn drives_the_real_binary_in_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!(
            "SKIPPED drives_the_real_binary_in_tmux: tmux is not installed (apt-get install tmux)"
        );
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let r = layout(&t.path().join("img"));
    let bin = assert_cmd::cargo::cargo_bin("pare");
    let session = format!("see-tui-{}", std::process::id());
    let sock = t.path().join("tmux.sock").display().to_string();
    let tm = |args: &[&str]| {
        let mut all = vec!["-S", sock.as_str()];
        all.extend_from_slice(args);
        tmux(&all)
    };
    // The pane prints a marker when pare exits, so a clean exit and its status are visible.
    let cmd = format!(
        "env -u CI {} xray {r} --tui; echo PARE-EXITED-$?; sleep 30",
        bin.display()
    );
    let st = tm(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "30",
        &cmd,
    ]);
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // Captures the pane until `want` shows (or 30 s pass).
    let capture = |want: &str| {
        let start = Instant::now();
        loop {
            let out = tm(&["capture-pane", "-p", "-t", &session]);
            let s = String::from_utf8_lossy(&out.stdout).into_owned();
            if s.contains(want) || start.elapsed() > Duration::from_secs(30) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let s = capture("Layers (2)");
    assert!(s.contains("Layers (2)") && s.contains("▸ usr"), "{s}");
    tm(&["send-keys", "-t", &session, "Down", "Tab", "e"]);
    let s = capture("▾ app");
    assert!(s.contains("+ 0644") && s.contains("server"), "{s}");
    assert!(
        s.contains("- 0644") && s.contains("libbig.so"),
        "removed in layer 1: {s}"
    );
    tm(&["send-keys", "-t", &session, "?"]);
    let s = capture("Keys (any key closes)");
    assert!(s.contains("Keys (any key closes)"), "{s}");
    tm(&["send-keys", "-t", &session, "x", "q"]);
    let s = capture("PARE-EXITED-");
    assert!(s.contains("PARE-EXITED-0"), "quit cleanly: {s}");
    assert!(
        !s.contains("Layers (2)"),
        "the alternate screen is gone: {s}"
    );
    tm(&["kill-server"]);
}
