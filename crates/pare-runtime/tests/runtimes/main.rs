//! Integration tests on this host: the embedded runtime needs root and the debootstrap rootfs
//! at /var/cache/pare/bookworm (see `rootfs()`); the docker runtime needs dockerd and
//! `local/debian:bookworm`. Run with `cargo test -p pare-runtime -- --ignored` (PARE_SENSOR
//! names the static sensor for the traced runs).

use std::io::{BufRead, Read, Write};

use std::net::TcpStream;

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use pare_runtime::{
    Cancel, Container, DockerContainer, DockerRuntime, EmbeddedRuntime, RunSource, RunSpec,
    Runtime, RuntimeError, SensorSpec,
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

/// A spec for `rt`: the same image as its own kind of source (`IMAGE` in the daemon, the
/// rootfs for the embedded runtime), so that one test body runs on both.
fn spec(rt: &dyn Runtime, cmd: &[&str]) -> RunSpec {
    RunSpec {
        source: match rt.name() {
            "docker" => RunSource::Daemon(IMAGE.into()),
            _ => RunSource::Rootfs(rootfs()),
        },
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
    DockerRuntime::connect(Duration::from_secs(3), &Cancel::new()).expect("docker daemon")
}

fn embedded(tmp: &Path) -> EmbeddedRuntime {
    EmbeddedRuntime::with_temp_root(tmp, &Cancel::new()).expect("root")
}

/// Runs a batch command, checks output, exit code, env and hostname.
fn batch_job(rt: &dyn Runtime) {
    let c = rt
        .start(&spec(rt, &["/bin/sh", "-c", "echo hi; cat /etc/os-release; echo \"env=$PARE_TEST host=$(hostname)\"; echo oops >&2; exit 3"]))
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
    let mut s = spec(rt, &["/bin/sleep", "300"]);
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
    let mut s = spec(rt, &["perl", "-e", server]);
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
                    let mut sp = spec(
                        rt,
                        &["/bin/sh", "-c", &format!("echo started {i}; exec sleep 60")],
                    );
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
    let mut s = spec(rt, &["/bin/cat", "/etc/os-release"]);
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

/// Runs `hold_containers_for_ctrl_c` of this very test binary in a child process, with its
/// embedded temp root in `dir` (and its containers sleeping `secs`, default 301).
fn spawn_holder(dir: &Path, secs: Option<&str>) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "signals::hold_containers_for_ctrl_c",
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

mod docker;
mod embedded;
mod signals;
