//! Integration tests on this host: the embedded runtime needs root and the debootstrap rootfs
//! at /var/cache/pare/bookworm (see `rootfs()`); the docker runtime needs dockerd and
//! `local/debian:bookworm`. Run with `cargo test -p pare-runtime -- --ignored` (PARE_SENSOR
//! names the static sensor for the traced runs).

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pare_runtime::{
    Container, DockerContainer, DockerRuntime, EmbeddedRuntime, RunSpec, Runtime, SensorSpec,
};

const IMAGE: &str = "local/debian:bookworm";

/// The debootstrap rootfs of `local/debian:bookworm`: PARE_TEST_ROOTFS, else
/// $PARE_CACHE/bookworm (scripts/testbed), else /var/cache/pare/bookworm.
fn rootfs() -> PathBuf {
    if let Some(p) = std::env::var_os("PARE_TEST_ROOTFS") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("PARE_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/pare"), PathBuf::from);
    cache.join("bookworm")
}

/// True when the rootfs fixture exists. When it does not, the test says so on one line and
/// is skipped; with `PARE_TEST_REQUIRE_FIXTURES=1` (scripts/test, which makes the fixture
/// first) it fails with that line instead.
fn have_rootfs() -> bool {
    let r = rootfs();
    if r.join("etc/debian_version").is_file() {
        return true;
    }
    let msg = format!(
        "fixture missing: no debootstrap rootfs at {} (make it with `scripts/testbed rootfs`, or set PARE_TEST_ROOTFS)",
        r.display()
    );
    if std::env::var("PARE_TEST_REQUIRE_FIXTURES").is_ok_and(|v| v == "1") {
        // Fail with the one line, not a panic message and backtrace.
        eprintln!("error: {msg}");
        std::panic::resume_unwind(Box::new(msg));
    }
    eprintln!("SKIP: {msg}");
    false
}

fn spec(cmd: &[&str]) -> RunSpec {
    RunSpec {
        daemon_image: Some(IMAGE.into()),
        rootfs: Some(rootfs()),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        env: vec!["PARE_TEST=yes".into()],
        user: String::new(),
        workdir: String::new(),
        ports: vec![],
        sensor: None,
        hostname: "pare-test".into(),
    }
}

fn sv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn docker() -> DockerRuntime {
    DockerRuntime::connect(Duration::from_secs(3)).expect("docker daemon")
}

fn embedded(tmp: &Path) -> EmbeddedRuntime {
    EmbeddedRuntime::with_temp_root(tmp).expect("root")
}

/// Runs a batch command, checks output, exit code, env and hostname.
fn batch_job(rt: &dyn Runtime) {
    let c = rt
        .start(&spec(&["/bin/sh", "-c", "echo hi; cat /etc/os-release; echo \"env=$PARE_TEST host=$(hostname)\"; echo oops >&2; exit 3"]))
        .unwrap();
    let exit = c
        .wait(Duration::from_secs(30))
        .unwrap()
        .expect("job exits by itself");
    assert_eq!(exit.code, 3);
    let (out, err) = c.logs().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("hi\n"), "{out}");
    assert!(
        out.contains("ID=debian") && out.contains("bookworm"),
        "{out}"
    );
    assert!(out.contains("env=yes host=pare-test"), "{out}");
    assert_eq!(String::from_utf8_lossy(&err), "oops\n");
    c.cleanup().unwrap();
    c.cleanup().unwrap();
}

/// A long-running container: exec into it (as the image user), see a listener via exec, stop.
fn service(rt: &dyn Runtime) {
    let mut s = spec(&["/bin/sleep", "300"]);
    s.user = "nobody".into();
    s.workdir = "/var/tmp".into();
    let t0 = Instant::now();
    let c = rt.start(&s).unwrap();
    eprintln!("{}: start took {:?}", rt.name(), t0.elapsed());
    assert!(
        c.wait(Duration::from_millis(200)).unwrap().is_none(),
        "still running"
    );
    let o = c
        .exec(
            &sv(&["sh", "-c", "id -u; pwd; echo err >&2; exit 7"]),
            Duration::from_secs(20),
        )
        .unwrap();
    assert_eq!(o.exit_code, 7);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "65534\n/var/tmp\n");
    assert_eq!(o.stderr, b"err\n");
    let o = c
        .exec(&sv(&["cat", "/etc/hostname"]), Duration::from_secs(20))
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "pare-test");
    let o = c
        .exec(
            &sv(&["sh", "-c", "echo $PARE_TEST $HOME"]),
            Duration::from_secs(20),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "yes /nonexistent\n",
        "image env and the user's HOME"
    );
    // A command that outlives its timeout is reported as an error, not a hang.
    let t = Instant::now();
    // A duration of its own per runtime: the tests of both runtimes may run in parallel.
    let secs = if rt.name() == "docker" { "31" } else { "32" };
    assert!(
        c.exec(&sv(&["sleep", secs]), Duration::from_millis(500))
            .is_err()
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    let cmdline = format!("sleep\0{secs}\0").into_bytes();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleepers(&cmdline) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sleepers(&cmdline), 0, "the timed-out exec was killed");
    assert!(
        c.exec(&sv(&["/nonexistent/binary"]), Duration::from_secs(10))
            .map(|o| o.exit_code != 0)
            .unwrap_or(true)
    );
    // sleep as PID 1 has no SIGTERM handler: stop falls back to SIGKILL after the grace time.
    let t = Instant::now();
    let exit = c.stop(Duration::from_millis(500)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(exit.code, 137, "{exit:?}");
}

/// A TCP service on a container port, reached from the host through `endpoint()`. bookworm
/// minbase has perl: a one-line HTTP server without extra packages.
fn port(rt: &dyn Runtime) {
    let server = r#"use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr=>"0.0.0.0:8000", Listen=>5, ReuseAddr=>1) or die "listen: $!"; print "listening\n"; $|=1; while (my $c = $s->accept) { my $l = <$c>; print $c "HTTP/1.0 200 OK\r\n\r\nhello from $l"; close $c; }"#;
    let mut s = spec(&["perl", "-e", server]);
    s.ports = vec![8000];
    let c = rt.start(&s).unwrap();
    let addr = c.endpoint(8000).expect("endpoint for port 8000");
    assert!(addr.ip().is_loopback(), "{addr}");
    assert!(c.endpoint(9999).is_none());
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            conn.set_read_timeout(Some(Duration::from_secs(5)))?;
            conn.write_all(b"GET /probe HTTP/1.0\r\n\r\n")?;
            let mut b = String::new();
            conn.read_to_string(&mut b)?;
            Ok(b)
        })();
        match attempt {
            Ok(b) if b.contains("200 OK") => break b,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("no answer on {addr}: {other:?}; logs {:?}", c.logs()),
        }
    };
    assert!(body.contains("hello from GET /probe"), "{body}");
    // Asked directly (the container's own address or net ns, no proxy): the server's port
    // listens, another one refuses.
    assert_eq!(c.listening(8000), Some(true), "{}", rt.name());
    assert_eq!(c.listening(8001), Some(false), "{}", rt.name());
    c.cleanup().unwrap();
}

/// Containers started from several threads at once (fork from a multi-threaded process)
/// each get their own namespaces, ports and cleanup.
fn concurrent(rt: &(dyn Runtime + Sync)) {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                s.spawn(move || {
                    let mut sp =
                        spec(&["/bin/sh", "-c", &format!("echo started {i}; exec sleep 60")]);
                    sp.hostname = format!("c{i}");
                    let c = rt.start(&sp).unwrap();
                    let o = c.exec(&sv(&["hostname"]), Duration::from_secs(20)).unwrap();
                    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), format!("c{i}"));
                    c.stop(Duration::from_millis(200)).unwrap();
                    assert_eq!(c.logs().unwrap().0, format!("started {i}\n").into_bytes());
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
#[ignore = "needs root"]
fn embedded_concurrent_starts() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    concurrent(&embedded(tmp.path()));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
#[ignore = "needs docker"]
fn docker_concurrent_starts() {
    concurrent(&docker());
}

/// The static sensor: `PARE_SENSOR` (must exist when set, as in CI), else the workspace's
/// scripts/build-sensor output (target/pare-sensor-embed) if present.
fn sensor_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PARE_SENSOR").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "PARE_SENSOR={} does not exist", p.display());
        return Some(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/pare-sensor-embed/x86_64-unknown-linux-gnu/release/pare-sensor");
    p.is_file().then_some(p)
}

fn with_sensor(rt: &dyn Runtime, fanotify: bool) {
    let Some(bin) = sensor_binary() else {
        eprintln!("skipping: no static sensor (set PARE_SENSOR)");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut s = spec(&["/bin/cat", "/etc/os-release"]);
    s.user = "nobody".into();
    s.sensor = Some(SensorSpec {
        binary: bin,
        output_dir: out.path().to_path_buf(),
        fanotify,
    });
    s.workdir = "/usr/share".into();
    s.command = vec![
        "/bin/sh".into(),
        "-c".into(),
        "cat /etc/os-release; sleep 30".into(),
    ];
    let c = rt.start(&s).unwrap();
    // Under the sensor, exec runs as root in WORKDIR (both runtimes).
    let o = c
        .exec(&sv(&["sh", "-c", "id -u; pwd"]), Duration::from_secs(20))
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n/usr/share\n");
    c.stop(Duration::from_secs(5)).unwrap();
    let exit = c.wait(Duration::from_secs(60)).unwrap().expect("exits");
    let logs = c.logs().unwrap();
    assert_eq!(
        (exit.code, exit.signal.as_deref()),
        (143, Some("SIGTERM")),
        "{exit:?} {logs:?}"
    );
    let report = out.path().join("sensor.json");
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("{}: {e}; logs {logs:?}", report.display()));
    assert!(text.contains("/etc/os-release"), "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The sensor dropped to the image user (nobody) before running the command.
    assert_eq!(report["uid"], 65534, "{text}");
    if let Some(keep) = std::env::var_os("PARE_KEEP_REPORTS") {
        let dest = Path::new(&keep).join(format!("{}-fanotify-{fanotify}.json", rt.name()));
        std::fs::write(&dest, &text).unwrap();
    }
    c.cleanup().unwrap();
}

fn mounts_mentioning(p: &Path) -> usize {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .filter(|l| l.contains(p.to_str().unwrap()))
        .count()
}

#[test]
#[ignore = "needs root"]
fn embedded_batch_job() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    batch_job(&embedded(tmp.path()));
}

#[test]
#[ignore = "needs root"]
fn embedded_service_exec_stop() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    service(&embedded(tmp.path()));
}

#[test]
#[ignore = "needs root"]
fn embedded_port_forwarding() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    port(&embedded(tmp.path()));
}

#[test]
#[ignore = "needs root"]
fn embedded_never_writes_into_rootfs_and_isolates() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rt = embedded(tmp.path());
    let marker = format!("pare-test-{}", std::process::id());
    let c = rt
        .start(&spec(&[
            "/bin/sh",
            "-c",
            &format!(
                "echo x > /{marker}; echo y > /etc/{marker}; rm -f /etc/debian_version; \
                 cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /sys/class/net/lo/operstate; ls /dev; \
                 grep -c . /proc/net/dev; grep CapBnd /proc/self/status"
            ),
        ]))
        .unwrap();
    let exit = c.wait(Duration::from_secs(30)).unwrap().unwrap();
    let (out, err) = c.logs().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert_eq!(exit.code, 0, "{out} {}", String::from_utf8_lossy(&err));
    // PID 1 is our command, lo is up, /dev is minimal, only lo exists, caps are Docker's.
    assert!(out.starts_with("/bin/sh -c"), "{out}");
    assert!(
        out.contains("\nunknown\n") || out.contains("\nup\n"),
        "{out}"
    );
    assert!(
        out.contains("null")
            && out.contains("urandom")
            && out.contains("pts")
            && !out.contains("sda"),
        "{out}"
    );
    assert!(
        out.contains("\n3\n"),
        "only header lines + lo in /proc/net/dev: {out}"
    );
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    c.cleanup().unwrap();
    let rootfs = rootfs();
    assert!(!rootfs.join(&marker).exists());
    assert!(!rootfs.join("etc").join(&marker).exists());
    assert!(rootfs.join("etc/debian_version").exists());
}

#[test]
#[ignore = "needs root"]
fn embedded_cleanup_leaves_nothing() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rt = embedded(tmp.path());
    let c = rt.start(&spec(&["/bin/sleep", "303"])).unwrap();
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "one run dir while running"
    );
    let dir = std::fs::read_dir(tmp.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        mounts_mentioning(&dir),
        0,
        "mounts live only in the container's mount ns"
    );
    assert_eq!(sleepers(b"/bin/sleep\x00303\x00"), 1);
    c.cleanup().unwrap();
    let err = c
        .exec(&sv(&["true"]), Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cleaned up") || err.contains("exited"),
        "{err}"
    );
    drop(c);
    assert!(!dir.exists(), "temp dir removed");
    assert_eq!(mounts_mentioning(tmp.path()), 0);
    assert_eq!(
        sleepers(b"/bin/sleep\x00303\x00"),
        0,
        "namespace processes gone"
    );
}

#[test]
#[ignore = "needs root"]
fn embedded_setup_errors_are_reported() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rt = embedded(tmp.path());
    let err = rt
        .start(&spec(&["/no/such/binary"]))
        .err()
        .expect("start fails")
        .to_string();
    assert!(err.contains("/no/such/binary"), "{err}");
    let mut s = spec(&["/bin/true"]);
    s.user = "no-such-user".into();
    let err = rt.start(&s).err().expect("start fails").to_string();
    assert!(err.contains("no-such-user"), "{err}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temp dirs removed after failures"
    );
}

/// pare build's overlay of a local daemon's layers: the top layer wins, a whiteout hides a
/// lower file, nothing is writable, and the mount is gone after drop.
#[test]
#[ignore = "needs root"]
fn read_only_overlay_of_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let (top, low, mnt) = (
        tmp.path().join("top"),
        tmp.path().join("low"),
        tmp.path().join("m"),
    );
    for d in [&top, &low, &mnt] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(low.join("a"), "low").unwrap();
    std::fs::write(low.join("gone"), "x").unwrap();
    std::fs::write(top.join("a"), "top").unwrap();
    nix::sys::stat::mknod(
        &top.join("gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    let m = pare_runtime::embedded::ReadOnlyOverlay::mount(&[top, low], &mnt).unwrap();
    assert_eq!(std::fs::read_to_string(mnt.join("a")).unwrap(), "top");
    assert!(!mnt.join("gone").exists());
    assert!(std::fs::write(mnt.join("new"), "x").is_err(), "read-only");
    assert_eq!(mounts_mentioning(&mnt), 1);
    drop(m);
    assert_eq!(mounts_mentioning(&mnt), 0);
}

#[test]
#[ignore = "needs root"]
fn embedded_with_sensor() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    with_sensor(&embedded(tmp.path()), false);
    with_sensor(&embedded(tmp.path()), true);
}

#[test]
#[ignore = "needs docker"]
fn docker_batch_job() {
    batch_job(&docker());
}

#[test]
#[ignore = "needs docker"]
fn docker_service_exec_stop() {
    service(&docker());
}

#[test]
#[ignore = "needs docker"]
fn docker_port_forwarding() {
    port(&docker());
}

#[test]
#[ignore = "needs docker"]
fn docker_with_sensor() {
    with_sensor(&docker(), false);
    with_sensor(&docker(), true);
}

#[test]
#[ignore = "needs docker"]
fn docker_cleanup_leaves_nothing() {
    let d = docker();
    let c = d.start_container(&spec(&["/bin/sleep", "300"])).unwrap();
    let id = c.id().to_string();
    assert!(
        d.list_labelled().unwrap().contains(&id),
        "labelled io.pare.run=1"
    );
    c.cleanup().unwrap();
    assert!(
        !d.list_labelled().unwrap().contains(&id),
        "removed by cleanup"
    );
    c.cleanup().unwrap();
    let c = d.start_container(&spec(&["/bin/sleep", "300"])).unwrap();
    let id = c.id().to_string();
    drop(c);
    assert!(!d.list_labelled().unwrap().contains(&id), "removed on drop");
    // A failing start names the image.
    let mut s = spec(&["/bin/true"]);
    s.daemon_image = Some("pare-test/does-not-exist:never".into());
    let err = d.start(&s).err().expect("no such image").to_string();
    assert!(err.contains("pare-test/does-not-exist:never"), "{err}");
}

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
    let mine: DockerContainer = d.start_container(&spec(&["/bin/sleep", "302"])).unwrap();
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
        EmbeddedRuntime::with_temp_root(tmp.path())
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

/// Runs `hold_containers_for_ctrl_c` of this very test binary in a child process, with its
/// embedded temp root in `dir` (and its containers sleeping `secs`, default 301).
fn spawn_holder(dir: &Path, secs: Option<&str>) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "hold_containers_for_ctrl_c",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("PARE_HOLD_DIR", dir)
    .stdout(std::process::Stdio::piped());
    if let Some(secs) = secs {
        cmd.env("PARE_HOLD_SECS", secs);
    }
    cmd.spawn().unwrap()
}

/// Waits for the helper's `HOLDING <docker id>` line.
fn holding_id(child: &mut std::process::Child) -> String {
    let out = child.stdout.take().unwrap();
    std::io::BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            Some(
                l[l.find("HOLDING ")? + "HOLDING ".len()..]
                    .trim()
                    .to_string(),
            )
        })
        .expect("helper did not start its containers")
}

fn sleepers(cmdline: &[u8]) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| c == cmdline)
        .count()
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
    let e = EmbeddedRuntime::with_temp_root(PathBuf::from(dir)).unwrap();
    let secs = std::env::var("PARE_HOLD_SECS").unwrap_or_else(|_| "301".into());
    let _a = e.start(&spec(&["/bin/sleep", &secs])).unwrap();
    let b = docker()
        .start_container(&spec(&["/bin/sleep", &secs]))
        .unwrap();
    println!("HOLDING {}", b.id());
    std::thread::sleep(Duration::from_secs(60));
    panic!("no SIGINT arrived");
}

/// The sync API works (and drops cleanly) when called from inside a caller's tokio runtime.
#[test]
#[ignore = "needs docker"]
fn docker_from_async_context() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let d = docker();
        let c = d.start(&spec(&["/bin/sh", "-c", "echo async"])).unwrap();
        assert_eq!(c.wait(Duration::from_secs(30)).unwrap().unwrap().code, 0);
        assert_eq!(c.logs().unwrap().0, b"async\n");
        drop(c);
        drop(d);
    });
}
