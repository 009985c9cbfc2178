//! Ctrl-C and SIGKILL: everything torn down, leftovers swept.

use super::*;

/// Ctrl-C: a process holding an embedded and a docker container gets SIGINT; the handler
/// tears both down and exits 130. Runs `hold_containers_for_ctrl_c` of this very test binary.
#[test]
#[ignore = "needs root and docker"]
fn ctrl_c_tears_everything_down() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = docker();
    let mut child = spawn_holder(tmp.path(), None);
    let id = holding_id(&mut child);
    assert!(d.list_labelled().unwrap().contains(&id));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    assert_eq!(sleepers(b"/bin/sleep\x00301\x00"), 2);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temp dir removed"
    );
    assert_eq!(mounts_mentioning(tmp.path()), 0);
    assert_eq!(
        sleepers(b"/bin/sleep\x00301\x00"),
        0,
        "no container process left"
    );
    assert!(
        !d.list_labelled().unwrap().contains(&id),
        "docker container removed"
    );
}

/// SIGKILL cannot be handled: the embedded sandbox still dies (its keeper watches a lifeline
/// pipe), and `remove_stale` sweeps what the dead process left: its temp dir and its docker
/// container, but nothing of live processes.
#[test]
#[ignore = "needs root and docker"]
fn sigkill_leftovers_are_swept() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = docker();
    let mine: DockerContainer = d
        .start_container(&spec(&d, &["/bin/sleep", "302"]))
        .unwrap();
    let mut child = spawn_holder(tmp.path(), Some("304"));
    let id = holding_id(&mut child);
    assert_eq!(sleepers(b"/bin/sleep\x00304\x00"), 2);
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleepers(b"/bin/sleep\x00304\x00") > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sleepers(b"/bin/sleep\x00304\x00"),
        1,
        "only the docker one survives SIGKILL"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "temp dir left behind"
    );
    assert!(
        d.list_labelled().unwrap().contains(&id),
        "docker container left behind"
    );

    assert_eq!(
        EmbeddedRuntime::with_temp_root(tmp.path(), &Cancel::new())
            .unwrap()
            .remove_stale(),
        0,
        "swept by new() already"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // A new connection sweeps on its own; an explicit call finds nothing left of the dead one.
    let _ = docker();
    d.remove_stale(false).unwrap();
    assert_eq!(sleepers(b"/bin/sleep\x00304\x00"), 0);
    let left = d.list_labelled().unwrap();
    assert!(!left.contains(&id), "the dead process's container is swept");
    assert!(
        left.iter().any(|id| id == mine.id()),
        "a live process's container is kept"
    );
}

/// Helper for `ctrl_c_tears_everything_down` (does nothing unless PARE_HOLD_DIR is set).
#[test]
#[ignore = "helper process of ctrl_c_tears_everything_down"]
fn hold_containers_for_ctrl_c() {
    let Some(dir) = std::env::var_os("PARE_HOLD_DIR") else {
        return;
    };
    // The program owns the signals (the library installs no handler): this one does what
    // the `pare` binary does on Ctrl-C.
    let cancel = pare_runtime::Cancel::new();
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT]).unwrap();
    let on_signal = cancel.clone();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            on_signal.cleanup();
            std::process::exit(130);
        }
    });
    // Both runtimes register their containers on the program's token.
    let e = EmbeddedRuntime::with_temp_root(PathBuf::from(dir), &cancel).unwrap();
    let secs = std::env::var("PARE_HOLD_SECS").unwrap_or_else(|_| "301".into());
    let _a = e.start(&spec(&e, &["/bin/sleep", &secs])).unwrap();
    let d = DockerRuntime::connect(Duration::from_secs(3), &cancel).expect("docker daemon");
    let b = d
        .start_container(&spec(&d, &["/bin/sleep", &secs]))
        .unwrap();
    println!("HOLDING {}", b.id());
    std::thread::sleep(Duration::from_secs(60));
    panic!("no SIGINT arrived");
}
