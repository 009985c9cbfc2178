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

mod process;
mod recording;
