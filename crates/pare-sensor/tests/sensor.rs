//! Runs the built sensor binary on the host (ptrace of its own child needs no privilege;
//! fanotify needs root) and checks its report.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pare_trace::{AccessKind, SensorReport};

const SENSOR: &str = env!("CARGO_BIN_EXE_pare-sensor");

fn report_of(out: &Path) -> SensorReport {
    let text = std::fs::read(out.join("sensor.json")).expect("sensor.json written");
    serde_json::from_slice(&text).expect("sensor.json parses")
}

fn run(extra: &[&str], cmd: &[&str]) -> (Output, SensorReport, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(SENSOR)
        .arg("--output")
        .arg(out.path())
        .args(extra)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    let r = report_of(out.path());
    (o, r, out)
}

fn sh(script: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", script]
}

fn kinds(r: &SensorReport, path: &str) -> BTreeSet<AccessKind> {
    r.files
        .get(path)
        .unwrap_or_else(|| panic!("{path} not recorded"))
        .kinds
        .clone()
}

fn python() -> Option<&'static str> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// Both tracing modes: seccomp-selected stops (default) and plain PTRACE_SYSCALL.
const MODES: [&str; 2] = ["--seccomp-default", "--no-seccomp"];

fn mode_flags(mode: &str) -> Vec<&str> {
    let mut v = vec!["--no-fanotify"];
    if mode == "--no-seccomp" {
        v.push(mode);
    }
    v
}

fn canon_tmp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().canonicalize().unwrap();
    (d, p)
}

#[test]
fn records_execs_libraries_and_opens() {
    for mode in MODES {
        records_execs_libraries_and_opens_in(mode);
    }
}

fn records_execs_libraries_and_opens_in(mode: &str) {
    let py = python().unwrap_or("true");
    let script =
        format!("cat /etc/hostname >/dev/null; ls /usr/share >/dev/null; {py} -c 'import json'");
    let (o, r, _d) = run(&mode_flags(mode), &sh(&script));
    assert!(o.status.success(), "{o:?}");
    // SAFETY: geteuid has no preconditions.
    let root = nix::unistd::geteuid().is_root();
    let want = if mode == "--no-seccomp" || !root {
        "(syscall mode)"
    } else {
        "(seccomp mode)"
    };
    assert!(
        r.notices.iter().any(|n| n.contains(want)),
        "{mode}: {:?}",
        r.notices
    );
    assert_eq!(r.exit.as_ref().map(|e| e.code), Some(0));
    assert!(!r.fanotify);
    assert!(
        r.execs
            .iter()
            .any(|e| e.path == "/bin/sh" && e.argv.first().map(String::as_str) == Some("/bin/sh"))
    );
    let cat = r
        .execs
        .iter()
        .find(|e| e.path.ends_with("/cat"))
        .expect("cat exec recorded");
    assert_eq!(cat.argv, vec!["cat", "/etc/hostname"]);
    assert!(r.execs.iter().any(|e| e.path.ends_with("/ls")));
    let host = &r.files["/etc/hostname"];
    assert!(host.found && !host.missing && host.kinds.contains(&AccessKind::Open));
    assert!(
        host.processes.iter().any(|p| p.ends_with("/cat")),
        "{host:?}"
    );
    assert!(host.syscalls.contains("openat"));
    let libc = r
        .files
        .iter()
        .find(|(k, v)| k.ends_with("/libc.so.6") && v.found && v.kinds.contains(&AccessKind::Open));
    assert!(libc.is_some(), "libc.so.6 not opened");
    // The dynamic loader the kernel maps is recorded as exec'ed.
    assert!(
        r.files
            .iter()
            .any(|(k, v)| k.contains("ld-linux") && v.kinds.contains(&AccessKind::Exec))
    );
    // Executed binaries themselves.
    assert!(
        r.files
            .iter()
            .any(|(k, v)| k.ends_with("/cat") && v.kinds.contains(&AccessKind::Exec) && v.found)
    );
    for s in ["execve", "openat", "exit_group", "mmap"] {
        assert!(
            r.syscalls.contains(s),
            "syscall {s} missing: {:?}",
            r.syscalls
        );
    }
    if python().is_some() {
        assert!(
            r.files
                .iter()
                .any(|(k, v)| k.ends_with("/json/__init__.py") && v.found),
            "json module not seen"
        );
    }
}

#[test]
fn missing_stat_only_relative_created_and_symlinks() {
    for mode in MODES {
        missing_stat_only_relative_created_and_symlinks_in(mode);
    }
}

fn missing_stat_only_relative_created_and_symlinks_in(mode: &str) {
    let (_d, dir) = canon_tmp();
    let d = dir.to_str().unwrap();
    std::fs::write(dir.join("statonly"), b"s").unwrap();
    std::fs::write(dir.join("rel.txt"), b"r").unwrap();
    std::fs::write(dir.join("target.txt"), b"t").unwrap();
    std::os::unix::fs::symlink("target.txt", dir.join("link.txt")).unwrap();
    let script = format!(
        "cd {d} && test -e statonly && cat ./rel.txt link.txt >/dev/null; cat nope.txt 2>/dev/null; \
         mkdir newdir; echo hi > created.txt; mkdir newdir 2>/dev/null; ls /usr/share >/dev/null"
    );
    let (o, r, _out) = run(&mode_flags(mode), &sh(&script));
    assert!(o.status.success(), "{o:?}");
    let f = |n: &str| format!("{d}/{n}");
    assert_eq!(
        kinds(&r, &f("statonly")),
        BTreeSet::from([AccessKind::Stat])
    );
    assert!(r.files[&f("statonly")].found);
    let rel = &r.files[&f("rel.txt")];
    assert!(rel.found && rel.kinds.contains(&AccessKind::Open));
    let nope = &r.files[&f("nope.txt")];
    assert!(nope.missing && !nope.found);
    let link = &r.files[&f("link.txt")];
    assert_eq!(link.symlink.as_deref(), Some("target.txt"));
    let target = &r.files[&f("target.txt")];
    assert!(target.found && target.kinds.contains(&AccessKind::Open) && target.symlink.is_none());
    assert!(kinds(&r, &f("newdir")).contains(&AccessKind::Create));
    let created = kinds(&r, &f("created.txt"));
    assert!(
        created.contains(&AccessKind::Create) && created.contains(&AccessKind::Write),
        "{created:?}"
    );
    // A file that existed before the open was not created by the app.
    assert!(!kinds(&r, &f("rel.txt")).contains(&AccessKind::Create));
    assert!(kinds(&r, d).contains(&AccessKind::Chdir));
    // `ls` of a directory: listed (getdents64), not only opened.
    let share = &r.files["/usr/share"];
    assert!(
        share.syscalls.contains("getdents64") && share.kinds.contains(&AccessKind::Open),
        "{share:?}"
    );
}

#[test]
fn decodes_metadata_socket_and_watch_syscalls() {
    for mode in MODES {
        decodes_metadata_socket_and_watch_syscalls_in(mode);
    }
}

fn decodes_metadata_socket_and_watch_syscalls_in(mode: &str) {
    let Some(py) = python() else { return };
    let (_d, dir) = canon_tmp();
    let d = dir.to_str().unwrap();
    std::fs::write(dir.join("old"), b"x").unwrap();
    std::fs::write(dir.join("gone"), b"x").unwrap();
    std::fs::write(dir.join("meta"), b"xyz").unwrap();
    let code = format!(
        r#"
import os, socket, ctypes
os.chdir("{d}")
os.rename("old", "new")
os.unlink("gone")
os.symlink("meta", "sym")
os.readlink("sym")
os.chmod("meta", 0o600)
os.truncate("meta", 1)
os.lstat("sym")
srv = socket.socket(socket.AF_UNIX); srv.bind("{d}/s.sock"); srv.listen(1)
cli = socket.socket(socket.AF_UNIX); cli.connect("s.sock")
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
assert libc.inotify_add_watch(fd, b"{d}", 2) >= 0
"#
    );
    let (o, r, _out) = run(&mode_flags(mode), &[py, "-c", &code]);
    assert!(o.status.success(), "{o:?}");
    let f = |n: &str| format!("{d}/{n}");
    use AccessKind::*;
    assert!(kinds(&r, &f("old")).contains(&Delete));
    assert!(kinds(&r, &f("new")).contains(&Create));
    assert!(kinds(&r, &f("gone")).contains(&Delete));
    let sym = &r.files[&f("sym")];
    assert!(
        sym.kinds.contains(&Create) && sym.kinds.contains(&Readlink) && sym.kinds.contains(&Stat)
    );
    assert_eq!(sym.symlink.as_deref(), Some("meta"));
    assert!(kinds(&r, &f("meta")).contains(&Modify));
    assert!(r.files[&f("meta")].syscalls.iter().any(|s| s == "truncate"));
    assert!(
        r.files[&f("meta")]
            .syscalls
            .iter()
            .any(|s| s.starts_with("fchmodat") || s == "chmod")
    );
    let sock = kinds(&r, &f("s.sock"));
    assert!(sock.contains(&Socket) && sock.contains(&Create), "{sock:?}");
    assert!(r.files[&f("s.sock")].syscalls.contains("connect"));
    assert!(kinds(&r, d).contains(&Watch));
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

#[cfg(target_arch = "x86_64")]
fn decodes_raw_legacy_syscalls_in(py: &str, mode: &str) {
    let (_d, dir) = canon_tmp();
    let d = dir.to_str().unwrap();
    std::fs::write(dir.join("o"), b"x").unwrap();
    std::fs::write(dir.join("o2"), b"x").unwrap();
    std::os::unix::fs::symlink("o", dir.join("l")).unwrap();
    let code = format!(
        r#"
import ctypes, os
os.chdir("{d}")
libc = ctypes.CDLL(None, use_errno=True)
sc = libc.syscall
sc.restype = ctypes.c_long
buf = ctypes.create_string_buffer(256)
class How(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
assert sc(2, b"o", 0, 0) >= 0                        # open
assert sc(85, b"made", 0o644) >= 0                    # creat
assert sc(4, b"o", buf) == 0                          # stat
assert sc(6, b"l", buf) == 0                          # lstat
assert sc(21, b"absent", 0) < 0                       # access
assert sc(89, b"l", buf, 256) == 1                    # readlink
assert sc(83, b"dir", 0o755) == 0                     # mkdir
how = How(0, 0, 0)
assert sc(437, ctypes.c_int(-100), b"o2", ctypes.byref(how), ctypes.c_size_t(24)) >= 0  # openat2
"#
    );
    {
        let (o, r, _out) = run(&mode_flags(mode), &[py, "-c", &code]);
        assert!(o.status.success(), "{o:?}");
        let rec = |n: &str| {
            r.files
                .get(&format!("{d}/{n}"))
                .unwrap_or_else(|| panic!("{n}: {mode}"))
        };
        use AccessKind::*;
        assert!(rec("o").syscalls.contains("open") && rec("o").syscalls.contains("stat"));
        assert!(rec("made").kinds.contains(&Create) && rec("made").syscalls.contains("creat"));
        assert!(rec("l").syscalls.contains("lstat") && rec("l").syscalls.contains("readlink"));
        assert!(rec("absent").missing && rec("absent").syscalls.contains("access"));
        assert!(rec("dir").kinds.contains(&Create) && rec("dir").syscalls.contains("mkdir"));
        assert!(rec("o2").found && rec("o2").syscalls.contains("openat2"));
    }
}

#[test]
fn follows_forks_and_threads() {
    for mode in MODES {
        follows_forks_and_threads_in(mode);
    }
}

fn follows_forks_and_threads_in(mode: &str) {
    let Some(py) = python() else { return };
    let (_d, dir) = canon_tmp();
    let d = dir.to_str().unwrap();
    for n in ["forked", "threaded"] {
        std::fs::write(dir.join(n), b"x").unwrap();
    }
    let script = format!(
        "(cat {d}/forked >/dev/null) & wait; \
         {py} -c \"import threading; t=threading.Thread(target=lambda: open('{d}/threaded').read()); t.start(); t.join()\""
    );
    let (o, r, _out) = run(&mode_flags(mode), &sh(&script));
    assert!(o.status.success(), "{o:?}");
    assert!(r.files[&format!("{d}/forked")].found);
    let t = &r.files[&format!("{d}/threaded")];
    assert!(t.found && t.kinds.contains(&AccessKind::Open));
    assert!(t.processes.iter().any(|p| p.contains("python")), "{t:?}");
    assert!(r.syscalls.contains("clone") || r.syscalls.contains("clone3"));
}

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

fn spawn(extra: &[&str], script: &str) -> (std::process::Child, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let child = Command::new(SENSOR)
        .arg("--output")
        .arg(out.path())
        .args(extra)
        .args(["--", "/bin/sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    (child, out)
}

fn wait_for_line(child: &mut std::process::Child, want: &str) {
    use std::io::BufRead;
    let stdout = child.stdout.as_mut().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), want);
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
