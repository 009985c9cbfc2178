//! What the sensor records: execs, libraries, opens, metadata, raw syscalls, forks, both modes, fanotify.

use super::*;

#[test]
fn records_execs_libraries_and_opens() {
    for mode in MODES {
        records_execs_libraries_and_opens_in(mode);
    }
}

#[test]
fn missing_stat_only_relative_created_and_symlinks() {
    for mode in MODES {
        missing_stat_only_relative_created_and_symlinks_in(mode);
    }
}

#[test]
fn decodes_metadata_socket_and_watch_syscalls() {
    for mode in MODES {
        decodes_metadata_socket_and_watch_syscalls_in(mode);
    }
}

/// The legacy x86_64 syscalls glibc no longer uses (open, creat, stat, access, readlink, mkdir)
/// and openat2, made raw through ctypes.
#[cfg(target_arch = "x86_64")]
#[test]
fn decodes_raw_legacy_syscalls() {
    let Some(py) = python() else { return };
    for mode in MODES {
        decodes_raw_legacy_syscalls_in(py, mode);
    }
}

#[test]
fn follows_forks_and_threads() {
    for mode in MODES {
        follows_forks_and_threads_in(mode);
    }
}

#[test]
fn both_modes_record_the_same() {
    let py = python().unwrap_or("true");
    let script = format!(
        "ls -l /usr/share/doc >/dev/null; {py} -c 'import email, http.client'; test -x /nope"
    );
    let (_, a, _d1) = run(&mode_flags("--seccomp-default"), &sh(&script));
    let (_, b, _d2) = run(&mode_flags("--no-seccomp"), &sh(&script));
    let files = |r: &SensorReport| -> Vec<(String, BTreeSet<AccessKind>, bool, bool)> {
        r.files
            .iter()
            .filter(|(k, _)| !k.starts_with("/proc") && !k.contains("__pycache__"))
            .map(|(k, v)| (k.clone(), v.kinds.clone(), v.found, v.missing))
            .collect()
    };
    assert_eq!(files(&a), files(&b));
    assert_eq!(a.syscalls, b.syscalls);
    assert_eq!(a.execs.len(), b.execs.len());
}

#[test]
fn fanotify_sees_at_least_the_ptrace_file_set() {
    // SAFETY: geteuid has no preconditions.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: fanotify needs root");
        return;
    }
    let script = "cat /etc/hostname >/dev/null; ls /usr/share >/dev/null";
    let (_, plain, _d1) = run(&["--no-fanotify"], &sh(script));
    let (o, fan, _d2) = run(&[], &sh(script));
    assert!(o.status.success());
    if !fan.fanotify {
        // Hosts without CAP_SYS_ADMIN: the notice says why and the run still works.
        assert!(
            fan.notices
                .iter()
                .any(|n| n.contains("fanotify unavailable")),
            "{:?}",
            fan.notices
        );
        return;
    }
    let found = |r: &SensorReport| -> BTreeSet<String> {
        r.files
            .iter()
            .filter(|(k, v)| v.found && !k.starts_with("/proc") && !k.starts_with("/dev"))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let missing: Vec<_> = found(&plain).difference(&found(&fan)).cloned().collect();
    assert!(missing.is_empty(), "fanotify run lost {missing:?}");
    assert!(
        fan.notices
            .iter()
            .any(|n| n.contains("fanotify:") && !n.contains("fanotify: 0 events")),
        "{:?}",
        fan.notices
    );
}

#[test]
fn the_sensor_publishes_what_the_app_is_doing() {
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(SENSOR)
        .arg("--output")
        .arg(out.path())
        .args(["--no-fanotify", "--"])
        .args(sh(
            "cat /etc/hostname >/dev/null; ls /usr >/dev/null; sleep 2",
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // While the app sleeps, the counters stand still and are on disk.
    std::thread::sleep(Duration::from_millis(1200));
    let text = std::fs::read_to_string(out.path().join(pare_trace::ACTIVITY_FILE)).unwrap();
    let a = pare_trace::SensorActivity::parse(&text).unwrap();
    assert!(a.novelty > 5, "{text}");
    assert_eq!(a.listens, 0);
    std::thread::sleep(Duration::from_millis(300));
    let again = std::fs::read_to_string(out.path().join(pare_trace::ACTIVITY_FILE)).unwrap();
    assert_eq!(again, text, "an idle app adds nothing");
    assert!(child.wait().unwrap().success());
}

/// The stops a report's notice counts ("ptrace (MODE mode): N syscall stops, ...").
fn stops(r: &SensorReport) -> u64 {
    r.notices
        .iter()
        .find_map(|n| {
            let rest = n.split_once("mode): ")?.1;
            rest.split_once(" syscall stops")?.0.parse().ok()
        })
        .unwrap_or_else(|| panic!("no stop count in {:?}", r.notices))
}

/// The calls seccomp mode lets through without a stop (`pare_trace::UNTRACED_SYSCALLS`: 40,000
/// one-byte reads and writes here) are reported in neither mode, and take nothing away from the
/// files: every file the app opens between them, from a thread too, is still recorded.
#[test]
fn untraced_calls_do_not_stop_the_app_and_opened_files_are_still_recorded() {
    let (_d, dir) = canon_tmp();
    let d = dir.to_str().unwrap();
    std::fs::write(dir.join("input"), vec![b'x'; 20_000]).unwrap();
    for n in ["after", "threaded"] {
        std::fs::write(dir.join(n), b"x").unwrap();
    }
    let thread = python()
        .map(|py| {
            format!(
                "; {py} -c \"import threading; t=threading.Thread(target=lambda: open('{d}/threaded').read()); t.start(); t.join()\""
            )
        })
        .unwrap_or_default();
    let script = format!(
        "dd if={d}/input of={d}/output bs=1 count=20000 2>/dev/null; cat {d}/after >/dev/null{thread}"
    );
    for mode in MODES {
        let _ = std::fs::remove_file(dir.join("output"));
        let (o, r, _out) = run(&mode_flags(mode), &sh(&script));
        assert!(o.status.success(), "{mode}: {o:?}");
        let f = |n: &str| &r.files[&format!("{d}/{n}")];
        assert!(f("input").found && f("input").kinds.contains(&AccessKind::Open));
        let output = &f("output").kinds;
        assert!(output.contains(&AccessKind::Create) && output.contains(&AccessKind::Write));
        assert!(f("after").found, "{mode}");
        if python().is_some() {
            assert!(f("threaded").found, "{mode}");
        }
        for s in pare_trace::UNTRACED_SYSCALLS {
            assert!(!r.syscalls.contains(*s), "{mode}: {s} reported");
        }
        for s in ["openat", "execve", "exit_group"] {
            assert!(r.syscalls.contains(s), "{mode}: {s} not reported");
        }
        if r.notices.iter().any(|n| n.contains("(seccomp mode)")) {
            // Each of dd's reads and writes stopped once before: 40,000 stops and more.
            assert!(stops(&r) < 10_000, "{mode}: {} stops", stops(&r));
        } else {
            assert!(stops(&r) > 80_000, "{mode}: {} stops", stops(&r));
        }
    }
}

/// A call on a path absent at entry (2,000 `test -e` of files that are not there) is recorded
/// as missing at once, without waiting for its exit stop; present files, and files the app
/// creates, still get their result from the exit.
#[test]
fn calls_on_absent_paths_are_recorded_missing_without_an_exit_stop() {
    let (_d, dir) = canon_tmp();
    let d = dir.to_str().unwrap();
    std::fs::write(dir.join("present"), b"x").unwrap();
    let script = format!(
        "i=0; while [ $i -lt 2000 ]; do test -e {d}/absent$i; i=$((i+1)); done; \
         test -e {d}/present; test -e {d}/present/below; echo x > {d}/made; cat {d}/made >/dev/null"
    );
    for mode in MODES {
        let _ = std::fs::remove_file(dir.join("made"));
        let (o, r, _out) = run(&mode_flags(mode), &sh(&script));
        assert!(o.status.success(), "{mode}: {o:?}");
        let f = |n: &str| &r.files[&format!("{d}/{n}")];
        for i in [0, 1, 999, 1999] {
            let a = f(&format!("absent{i}"));
            assert!(a.missing && !a.found, "{mode}: absent{i} {a:?}");
            assert!(a.kinds.contains(&AccessKind::Stat), "{mode}: {a:?}");
        }
        assert!(f("present").found && !f("present").missing, "{mode}");
        // ENOTDIR (a file met as a directory) is missing too.
        assert!(f("present/below").missing, "{mode}");
        let made = &f("made").kinds;
        assert!(made.contains(&AccessKind::Create), "{mode}: {made:?}");
        assert!(f("made").found, "{mode}");
        if r.notices.iter().any(|n| n.contains("(seccomp mode)")) {
            // One stop per absent path instead of two.
            assert!(stops(&r) < 3_500, "{mode}: {} stops", stops(&r));
        }
    }
}

/// A readlink of a path that is there but no symlink (glibc's realpath() reads every
/// component: a JVM makes tens of thousands) is recorded at entry, without its exit stop; a
/// readlink of a real symlink still waits for its result.
#[test]
fn readlink_of_a_non_link_is_recorded_without_an_exit_stop() {
    let Some(py) = python() else { return };
    let (_d, dir) = canon_tmp();
    let d = dir.to_str().unwrap();
    std::fs::write(dir.join("plain"), b"x").unwrap();
    std::os::unix::fs::symlink("plain", dir.join("link")).unwrap();
    let code = format!(
        "import os\nfor i in range(2000):\n    try: os.readlink('{d}/plain')\n    except OSError: pass\nassert os.readlink('{d}/link') == 'plain'\n"
    );
    for mode in MODES {
        let (o, r, _out) = run(&mode_flags(mode), &[py, "-c", &code]);
        assert!(o.status.success(), "{mode}: {o:?}");
        let plain = &r.files[&format!("{d}/plain")];
        assert!(
            plain.kinds.contains(&AccessKind::Readlink),
            "{mode}: {plain:?}"
        );
        assert!(
            plain.syscalls.contains("readlink") && !plain.missing,
            "{mode}: {plain:?}"
        );
        assert!(plain.symlink.is_none(), "{mode}: {plain:?}");
        let link = &r.files[&format!("{d}/link")];
        assert!(
            link.found && link.kinds.contains(&AccessKind::Readlink),
            "{mode}: {link:?}"
        );
        assert_eq!(link.symlink.as_deref(), Some("plain"), "{mode}");
        if r.notices.iter().any(|n| n.contains("(seccomp mode)")) {
            // One stop per readlink instead of two (Python's start-up: ~1,000 more).
            assert!(stops(&r) < 3_800, "{mode}: {} stops", stops(&r));
        }
    }
}
