//! The sensor as PID 1: errors, exit codes, orphans, signals, users, capabilities, docker.

use super::*;

#[test]
fn sensor_errors_exit_2_with_a_message() {
    let out = tempfile::tempdir().unwrap();
    let out_s = out.path().to_str().unwrap();
    let user = [
        "--output",
        out_s,
        "--user",
        "no-such-user-pare",
        "--",
        "true",
    ];
    for args in [
        &["--output", "/proc/pare-sensor-no-such-dir", "--", "true"][..],
        &["--bogus"][..],
        &user[..],
    ] {
        let o = Command::new(SENSOR).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("pare-sensor: "), "{err}");
    }
    // The report is still written, with the error.
    let r = report_of(out.path());
    assert!(
        r.notices.iter().any(|n| n.contains("no-such-user-pare")),
        "{:?}",
        r.notices
    );
}

#[test]
fn exit_code_and_signal_death_propagate() {
    let (o, r, _d) = run(&["--no-fanotify"], &sh("exit 3"));
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(r.exit.unwrap().code, 3);
    let (o, r, _d) = run(&["--no-fanotify"], &sh("kill -USR1 $$"));
    assert_eq!(o.status.code(), Some(128 + 10));
    assert_eq!(r.exit.unwrap().signal.as_deref(), Some("SIGUSR1"));
    // The app starts with default signal dispositions (Rust ignores SIGPIPE in the sensor).
    let (o, _r, _d) = run(&["--no-fanotify"], &sh("kill -PIPE $$; echo survived"));
    assert_eq!(o.status.code(), Some(128 + 13), "{o:?}");
    let (o, r, _d) = run(&["--no-fanotify"], &["no-such-program-pare"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(
        r.notices.iter().any(|n| n.contains("not found")),
        "{:?}",
        r.notices
    );
}

#[test]
fn reaps_orphans() {
    // The orphaned `sleep` re-parents to the sensor (PID 1 in a container, subreaper here) and
    // must not stay a zombie.
    let script = "(sleep 0.1 &); sleep 0.8; \
        for s in /proc/[0-9]*/stat; do read -r l < $s || continue; set -- $l; \
        [ \"$3\" = Z ] && [ \"$4\" = \"$PPID\" ] && echo zombie $1; done; echo done";
    let (o, _r, _d) = run(&["--no-fanotify"], &sh(script));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "done\n");
}

#[test]
fn sigterm_is_forwarded() {
    let (mut child, out) = spawn(
        &["--no-fanotify"],
        "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done",
    );
    wait_for_line(&mut child, "ready");
    // SAFETY: plain kill(2) of our own child.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(report_of(out.path()).exit.unwrap().code, 7);
}

#[test]
fn sigterm_ignored_gets_killed_after_grace() {
    let (mut child, out) = spawn(
        &["--no-fanotify", "--grace", "0.5"],
        "trap '' TERM; echo ready; sleep 30",
    );
    wait_for_line(&mut child, "ready");
    let t = Instant::now();
    // SAFETY: plain kill(2) of our own child.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = child.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(128 + 9));
    let r = report_of(out.path());
    assert_eq!(r.exit.unwrap().signal.as_deref(), Some("SIGKILL"));
}

#[test]
fn runs_as_the_image_user() {
    // SAFETY: geteuid has no preconditions.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to change user");
        return;
    }
    let (o, r, _d) = run(
        &["--no-fanotify", "--user", "65534", "--workdir", "/tmp"],
        &sh("id -u; id -g; pwd; echo $HOME; grep NoNewPrivs /proc/self/status"),
    );
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"65534"), "{text}");
    assert_eq!(lines.get(2), Some(&"/tmp"));
    // The seccomp filter is installed without no_new_privs: setuid programs keep working.
    let nnp = lines
        .get(4)
        .map(|l| l.split_whitespace().collect::<Vec<_>>());
    assert_eq!(nnp, Some(vec!["NoNewPrivs:", "0"]));
    assert_eq!((r.uid, r.gid), (65534, 65534));
    // Numeric USER: no lookup needed (the app itself may still read passwd).
    let by_sensor = |f: &str| {
        r.files
            .get(f)
            .is_some_and(|rec| rec.processes.iter().any(|p| p.ends_with("pare-sensor")))
    };
    assert!(!by_sensor("/etc/passwd") && !by_sensor("/etc/group"));
    // HOME comes from /etc/passwd when the image's ENV does not set it.
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(SENSOR)
        .arg("--output")
        .arg(out.path())
        .args([
            "--no-fanotify",
            "--user",
            "nobody",
            "--",
            "/bin/sh",
            "-c",
            "echo $HOME",
        ])
        .env_remove("HOME")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "/nonexistent\n");
    let (o, r, _d) = run(
        &["--no-fanotify", "--user", "nobody:0"],
        &sh("id -u; id -g; id -G"),
    );
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(text, "65534\n0\n0\n");
    assert_eq!((r.uid, r.gid), (65534, 0));
    // A named USER needs /etc/passwd and /etc/group in the image (the runtime reads them).
    for f in ["/etc/passwd", "/etc/group"] {
        let rec = &r.files[f];
        assert!(
            rec.found && rec.processes.iter().any(|p| p.ends_with("pare-sensor")),
            "{f}: {rec:?}"
        );
    }
}

/// By hand: `docker run` with the static sensor as entrypoint (see README.md).
#[test]
#[ignore = "needs docker"]
fn in_a_docker_container() {
    let bin = match std::env::var_os("PARE_SENSOR_STATIC") {
        Some(p) => PathBuf::from(p),
        None => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build-static.sh");
            let o = Command::new("bash")
                .arg(script)
                .stderr(Stdio::inherit())
                .output()
                .unwrap();
            assert!(o.status.success());
            PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
        }
    };
    for fanotify in [false, true] {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("docker");
        cmd.args([
            "run",
            "--rm",
            "--cap-add",
            "SYS_PTRACE",
            "--security-opt",
            "seccomp=unconfined",
        ])
        .args(["--security-opt", "apparmor=unconfined"]);
        if fanotify {
            cmd.args(["--cap-add", "SYS_ADMIN"]);
        }
        cmd.arg("-v")
            .arg(format!("{}:/.pare/sensor:ro", bin.display()));
        cmd.arg("-v")
            .arg(format!("{}:/.pare/out", out.path().display()));
        cmd.args([
            "local/debian:bookworm",
            "/.pare/sensor",
            "--output",
            "/.pare/out",
            "--user",
            "nobody",
        ]);
        if !fanotify {
            cmd.arg("--no-fanotify");
        }
        cmd.args([
            "--",
            "/bin/sh",
            "-c",
            "cat /etc/os-release >/dev/null; id -u; exit 5",
        ]);
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(5), "{o:?}");
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "65534");
        let r = report_of(out.path());
        assert_eq!(r.fanotify, fanotify, "{:?}", r.notices);
        assert!(r.files.get("/etc/os-release").is_some_and(|f| f.found));
        assert!(
            r.files
                .iter()
                .any(|(k, v)| k.ends_with("/libc.so.6") && v.found)
        );
        assert!(r.execs.iter().any(|e| e.path.ends_with("/cat")));
    }

    // fanotify also sees processes the sensor does not trace (`docker exec` probes).
    let out = tempfile::tempdir().unwrap();
    let name = format!("pare-sensor-test-{}", std::process::id());
    let mut cmd = Command::new("docker");
    cmd.args([
        "run",
        "-d",
        "--name",
        &name,
        "--cap-add",
        "SYS_PTRACE",
        "--cap-add",
        "SYS_ADMIN",
    ])
    .args(["--security-opt", "apparmor=unconfined"])
    .arg("-v")
    .arg(format!("{}:/.pare/sensor:ro", bin.display()))
    .arg("-v")
    .arg(format!("{}:/.pare/out", out.path().display()))
    .args([
        "local/debian:bookworm",
        "/.pare/sensor",
        "--output",
        "/.pare/out",
        "--",
        "sleep",
        "3",
    ]);
    assert!(cmd.output().unwrap().status.success());
    std::thread::sleep(Duration::from_millis(1000));
    let exec = Command::new("docker")
        .args(["exec", &name, "cat", "/etc/debian_version"])
        .output()
        .unwrap();
    let waited = Command::new("docker")
        .args(["wait", &name])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    assert!(exec.status.success() && waited.status.success());
    let r = report_of(out.path());
    let f = r
        .files
        .get("/etc/debian_version")
        .expect("docker exec's open seen by fanotify");
    assert!(f.found && f.kinds.contains(&AccessKind::Fanotify), "{f:?}");
    assert!(
        r.files
            .get("/usr/bin/cat")
            .is_some_and(|f| f.kinds.contains(&AccessKind::Exec))
    );
}

#[test]
fn the_app_gets_its_users_home_and_none_of_the_sensors_capabilities() {
    // SAFETY: geteuid has no preconditions.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // Started as root with root's HOME, as the runtimes start the sensor: the app gets its
    // user's home (nobody: /nonexistent), as `docker run` would give it.
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(SENSOR)
        .arg("--output")
        .arg(out.path())
        .args([
            "--no-fanotify",
            "--user",
            "nobody",
            "--home-from-user",
            "--",
        ])
        .args(sh("echo $HOME"))
        .env("HOME", "/root")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "/nonexistent\n");
    // Without the flag, a HOME in the environment is the image's own and stays.
    let o = Command::new(SENSOR)
        .arg("--output")
        .arg(out.path())
        .args(["--no-fanotify", "--user", "nobody", "--"])
        .args(sh("echo $HOME"))
        .env("HOME", "/srv/home")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "/srv/home\n");

    // A root app keeps root's capabilities but CAP_SYS_PTRACE (19) and CAP_SYS_ADMIN (21),
    // in every set, and cannot regain them.
    let caps = |text: &str, name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let (o, _, _d) = run(&["--no-fanotify"], &sh("grep ^Cap /proc/self/status"));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    let sensor_caps = (1u64 << 19) | (1 << 21);
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        let app = caps(&text, set);
        assert_eq!(app & sensor_caps, 0, "{set} {app:x}\n{text}");
        assert_eq!(app, caps(&mine, set) & !sensor_caps, "{set}\n{text}");
    }
}
