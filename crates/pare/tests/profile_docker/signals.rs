//! Ending a profile: SIGUSR1, a first Ctrl-C, and Ctrl-C clean-up.

use super::*;

#[test]
fn continue_after_signal_stops_on_sigusr1() {
    continue_after_signal_stops_on("-USR1");
}

/// During `--continue-after signal`, a first Ctrl-C only ends the wait (as SIGUSR1 does): the
/// profile is written and pare exits 0.
#[test]
fn continue_after_signal_stops_on_a_first_ctrl_c() {
    continue_after_signal_stops_on("-INT");
}

/// Profiles with `--continue-after signal`, sends `signal` (a `kill` flag) once the wait
/// starts, and checks that the profile is written and pare exits 0.
fn continue_after_signal_stops_on(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let args = [
        "profile",
        "pare-example/go-server",
        "--continue-after",
        "signal",
        "--output",
        out.path().to_str().unwrap(),
    ];
    let (mut child, reader) = spawn_until(&args, tmp.path(), "drive it now");
    // Drive the app by hand meanwhile: this request is traced too.
    let st = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let code = wait_exit(&mut child, 120);
    let log = reader.join().unwrap();
    assert_eq!(code, Some(0), "{log}");
    let p = pare_profile::read_profile(&out.path().join("profile.json")).unwrap();
    assert_has(&p, "/app", AccessKind::Exec);
}

#[test]
fn ctrl_c_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let args = [
        "-v",
        "profile",
        "pare-example/node-web",
        "--continue-after",
        "300",
        "--output",
        out.path().to_str().unwrap(),
    ];
    let (mut child, reader) = spawn_until(&args, tmp.path(), "waiting for 300s more");
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let code = wait_exit(&mut child, 60);
    let log = reader.join().unwrap();
    assert_eq!(code, Some(130), "{log}");
    // No temp dir of this run is left…
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // …and no pare container that mounts one.
    let ids = docker(&["ps", "-aq", "--filter", "label=io.pare.run=1"]);
    for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
        let m = docker(&["inspect", "-f", "{{range .Mounts}}{{.Source}} {{end}}", id]);
        let mounts = String::from_utf8_lossy(&m.stdout);
        assert!(
            !mounts.contains(tmp.path().to_str().unwrap()),
            "container {id} left behind: {mounts}"
        );
    }
}
