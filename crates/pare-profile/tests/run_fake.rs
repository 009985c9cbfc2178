//! `run_profile` end to end with a fake runtime: the "container" is a local HTTP server (or a
//! job that exits), and "the sensor" writes a report when the container stops, as the real one
//! does. Checks the default probe plan, readiness, artifacts and error paths.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxSeccomp;
use pare_image::{ImageConfiguration, ResolvedImage};
use pare_profile::*;
use pare_runtime::{Container, ExecOutput, RunSpec, Runtime, RuntimeError};
use pare_trace::{AccessKind, ExitInfo, FileRecord, ProbeSpec, Profile, SensorReport};

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Serve HTTP on every requested port.
    Web,
    /// Exit with code 0 after 200 ms, printing a line.
    Job,
    /// Never write sensor.json.
    NoReport,
    /// Exit with code 0 after 200 ms without ever listening (an app that cannot start).
    ExitEarly,
    /// Serve HTTP on every requested port but this one, where nothing listens.
    WebBut(u16),
}

struct FakeRuntime {
    behaviour: Behaviour,
    /// The last RunSpec, for assertions.
    /// Every RunSpec started, in order (the profiling run first).
    seen: Mutex<Vec<RunSpec>>,
    /// Set when the container was cleaned up.
    cleaned: Arc<AtomicBool>,
}

struct FakeContainer {
    ports: BTreeMap<u16, SocketAddr>,
    out: Option<PathBuf>,
    behaviour: Behaviour,
    started: Instant,
    stopped: AtomicBool,
    cleaned: Arc<AtomicBool>,
}

/// `/` links to `/docs`; `/docs` shows which container (generation) serves it, so it differs
/// between containers but not within one.
fn serve(requests: Arc<Mutex<Vec<String>>>, generation: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                continue; // readiness check: connect and close
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            requests.lock().unwrap().push(path.clone());
            let body = if path == "/" {
                r#"<a href="/docs">docs</a>"#.to_string()
            } else {
                format!("page {path} from container {generation}")
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// A local address where nothing listens.
fn closed() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn start(&self, spec: &RunSpec) -> Result<Box<dyn Container>, RuntimeError> {
        let generation = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(spec.clone());
            seen.len()
        };
        let requests = Arc::new(Mutex::new(Vec::new()));
        let ports = match self.behaviour {
            Behaviour::Job => BTreeMap::new(),
            Behaviour::ExitEarly => spec.ports.iter().map(|p| (*p, closed())).collect(),
            Behaviour::WebBut(skip) => spec
                .ports
                .iter()
                .map(|p| {
                    if *p == skip {
                        (*p, closed())
                    } else {
                        (*p, serve(requests.clone(), generation))
                    }
                })
                .collect(),
            _ => spec
                .ports
                .iter()
                .map(|p| (*p, serve(requests.clone(), generation)))
                .collect(),
        };
        Ok(Box::new(FakeContainer {
            ports,
            out: spec.sensor.as_ref().map(|s| s.output_dir.clone()),
            behaviour: self.behaviour,
            started: Instant::now(),
            stopped: AtomicBool::new(false),
            cleaned: self.cleaned.clone(),
        }))
    }
}

impl FakeContainer {
    fn write_report(&self, code: i32) {
        if self.behaviour == Behaviour::NoReport {
            return;
        }
        let mut files = BTreeMap::new();
        let rec = |k: &[AccessKind]| FileRecord {
            kinds: k.iter().copied().collect(),
            found: true,
            ..Default::default()
        };
        files.insert(
            "/usr/bin/app".to_string(),
            rec(&[AccessKind::Exec, AccessKind::Open]),
        );
        files.insert(
            "/lib/x86_64-linux-gnu/libc.so.6".to_string(),
            rec(&[AccessKind::Open]),
        );
        files.insert("/etc/app.conf".to_string(), rec(&[AccessKind::Open]));
        files.insert("/etc/localtime".to_string(), rec(&[AccessKind::Stat]));
        let report = SensorReport {
            version: 1,
            command: vec!["/usr/bin/app".into()],
            uid: 1000,
            gid: 1000,
            files,
            syscalls: ["openat", "read", "accept4", "bind", "listen", "socket"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            exit: Some(ExitInfo { code, signal: None }),
            ..Default::default()
        };
        if let Some(dir) = &self.out {
            std::fs::write(
                dir.join("sensor.json"),
                serde_json::to_vec(&report).unwrap(),
            )
            .unwrap();
        }
    }
    fn exited(&self) -> Option<ExitInfo> {
        if self.stopped.load(Ordering::SeqCst) {
            return Some(ExitInfo {
                code: 143,
                signal: Some("SIGTERM".into()),
            });
        }
        if matches!(self.behaviour, Behaviour::Job | Behaviour::ExitEarly)
            && self.started.elapsed() > Duration::from_millis(200)
        {
            self.write_report(0);
            return Some(ExitInfo {
                code: 0,
                signal: None,
            });
        }
        None
    }
}

impl Container for FakeContainer {
    fn endpoint(&self, port: u16) -> Option<SocketAddr> {
        self.ports.get(&port).copied()
    }
    fn exec(&self, argv: &[String], _t: Duration) -> Result<ExecOutput, RuntimeError> {
        // Plays the sensor when the probe runs under it: writes a report for the command.
        if argv.first().map(String::as_str) == Some(pare_runtime::SENSOR_PATH) {
            let out = argv
                .iter()
                .position(|a| a == "--output")
                .and_then(|i| argv.get(i + 1))
                .unwrap();
            let sub = out
                .strip_prefix(pare_runtime::OUTPUT_DIR)
                .unwrap()
                .trim_start_matches('/');
            let dir = self.out.as_ref().unwrap().join(sub);
            std::fs::create_dir_all(&dir).unwrap();
            let cmd_at = argv.iter().position(|a| a == "--").unwrap() + 1;
            let mut files = BTreeMap::new();
            let exec = FileRecord {
                kinds: [AccessKind::Exec].into_iter().collect(),
                found: true,
                ..Default::default()
            };
            files.insert(format!("/usr/bin/{}", argv[cmd_at]), exec);
            let report = SensorReport {
                files,
                syscalls: ["uname".to_string()].into(),
                ..Default::default()
            };
            std::fs::write(
                dir.join("sensor.json"),
                serde_json::to_vec(&report).unwrap(),
            )
            .unwrap();
            return Ok(ExecOutput {
                exit_code: 0,
                stdout: argv[cmd_at..].join(" ").into_bytes(),
                stderr: vec![],
            });
        }
        Ok(ExecOutput {
            exit_code: 0,
            stdout: argv.join(" ").into_bytes(),
            stderr: vec![],
        })
    }
    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(e) = self.exited() {
                return Ok(Some(e));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn stop(&self, _grace: Duration) -> Result<ExitInfo, RuntimeError> {
        self.write_report(143);
        self.stopped.store(true, Ordering::SeqCst);
        Ok(ExitInfo {
            code: 143,
            signal: Some("SIGTERM".into()),
        })
    }
    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
        Ok((
            b"job done\n".to_vec(),
            b"app: starting\napp: fatal: no config\n".to_vec(),
        ))
    }
    fn cleanup(&self) -> Result<(), RuntimeError> {
        self.cleaned.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn image(config: &str) -> ResolvedImage {
    let cfg: ImageConfiguration = serde_json::from_str(&format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{config}}}"#
    ))
    .unwrap();
    ResolvedImage {
        name: "test".into(),
        manifest_digest: None,
        config_digest: "sha256:abc".into(),
        config: cfg,
        layers: vec![],
    }
}

fn opts(out: &Path) -> ProfileOptions {
    let mut o = ProfileOptions::new("fake/app:1", out);
    o.timeout = Duration::from_secs(10);
    o
}

fn runtime(b: Behaviour) -> FakeRuntime {
    FakeRuntime {
        behaviour: b,
        seen: Mutex::new(Vec::new()),
        cleaned: Arc::new(AtomicBool::new(false)),
    }
}

#[test]
fn web_app_is_crawled_and_artifacts_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Behaviour::Web);
    let img = image(
        r#"{"Entrypoint":["/usr/bin/app"],"Cmd":["--serve"],"User":"app","WorkingDir":"/srv","Env":["A=1"],"ExposedPorts":{"8080/tcp":{}}}"#,
    );
    let out = dir.path().join("out");
    let r = run_profile(
        &img,
        "fake/app:1",
        Target::Daemon("fake/app:1".into()),
        &rt,
        Path::new("/sensor"),
        &opts(&out),
    )
    .unwrap();

    assert!(
        rt.cleaned.load(Ordering::SeqCst),
        "the container is removed"
    );
    let spec = rt.seen.lock().unwrap()[0].clone();
    assert_eq!(spec.command, vec!["/usr/bin/app", "--serve"]);
    assert_eq!(
        (
            spec.user.as_str(),
            spec.workdir.as_str(),
            spec.ports.clone()
        ),
        ("app", "/srv", vec![8080])
    );
    assert_eq!(spec.daemon_image.as_deref(), Some("fake/app:1"));
    assert!(spec.sensor.as_ref().unwrap().fanotify);

    let paths: Vec<String> = r
        .profile
        .probes
        .iter()
        .map(|p| match &p.spec {
            ProbeSpec::Http { path, .. } => path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, vec!["/", "/docs"]);
    assert!(
        r.profile
            .probes
            .iter()
            .all(|p| p.outcome.http_status == Some(200))
    );
    assert!(r.failed_probes().is_empty());

    // profile.json round-trips and carries the sensor report.
    let written: Profile =
        serde_json::from_slice(&std::fs::read(&r.artifacts.profile_json).unwrap()).unwrap();
    assert_eq!(written, r.profile);
    assert_eq!(written.image.exposed_ports, vec!["8080/tcp"]);
    assert!(written.sensor.files.contains_key("/etc/app.conf"));
    assert_eq!(written.runtime, "fake");
    // seccomp.json is a valid OCI seccomp profile with the observed calls.
    let sc: LinuxSeccomp =
        serde_json::from_slice(&std::fs::read(&r.artifacts.seccomp_json).unwrap()).unwrap();
    assert!(
        sc.syscalls().as_ref().unwrap()[0]
            .names()
            .contains(&"accept4".to_string())
    );
    // apparmor.profile has file rules by access kind.
    let aa = std::fs::read_to_string(&r.artifacts.apparmor_profile).unwrap();
    assert!(aa.contains("\"/usr/bin/app{,/}\" mrix,"), "{aa}");
    assert!(aa.contains("\"/etc/app.conf{,/}\" r,"));
    assert!(!aa.contains("localtime"));
    // The stability run: a second, untraced container; /docs names its container, so its
    // body is volatile, while / is the same in both.
    let seen = rt.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].sensor.is_none());
    assert!(r.profile.probes[0].outcome.volatile.is_empty());
    assert_eq!(
        r.profile.probes[1].outcome.volatile,
        vec!["body".to_string()]
    );
    assert!(
        r.profile
            .sensor
            .notices
            .iter()
            .any(|n| n.contains("differ between containers") && n.contains("/docs"))
    );
    let summary = r.summary();
    assert!(
        summary.contains("GET http:8080/docs") && summary.contains("profile.json"),
        "{summary}"
    );
    // The untraced run also times the start-up, set against the traced one.
    assert!(r.timings.untraced_startup.is_some());
    assert!(summary.contains("untraced (sensor "), "{summary}");
}

#[test]
fn job_without_ports_runs_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Behaviour::Job);
    let img = image(r#"{"Cmd":["/usr/bin/app","--once"]}"#);
    let r = run_profile(
        &img,
        "fake/job:1",
        Target::Rootfs(dir.path().into()),
        &rt,
        Path::new("/sensor"),
        &opts(&dir.path().join("o")),
    )
    .unwrap();
    assert_eq!(r.profile.probes.len(), 1);
    assert_eq!(r.profile.probes[0].spec, ProbeSpec::Job);
    assert_eq!(r.profile.probes[0].outcome.exit_code, Some(0));
    assert_eq!(
        r.profile.probes[0].outcome.body_digest.as_deref(),
        Some(pare_probe::digest(b"job done\n").as_str())
    );
    assert_eq!(r.profile.sensor.exit.as_ref().unwrap().code, 0);
    assert!(rt.seen.lock().unwrap()[0].rootfs.is_some());
}

#[test]
fn explicit_probes_replace_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Behaviour::Web);
    let img = image(r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"8080/tcp":{}}}"#);
    let mut o = opts(&dir.path().join("o"));
    o.http_probes = vec![
        pare_probe::parse_http_flag("GET:/health").unwrap(),
        pare_probe::parse_http_flag("GET:/x:9090").unwrap(),
    ];
    o.exec = vec!["apptool --version".into()];
    o.continue_after = ContinueAfter::Seconds(0);
    let r = run_profile(
        &img,
        "fake/app:1",
        Target::Daemon("x".into()),
        &rt,
        Path::new("/sensor"),
        &o,
    )
    .unwrap();
    let descr: Vec<String> = r
        .profile
        .probes
        .iter()
        .map(|p| pare_probe::describe(&p.spec))
        .collect();
    assert_eq!(
        descr,
        vec![
            "GET http:8080/health",
            "GET http:9090/x",
            "exec apptool --version"
        ]
    );
    // A port named only by a probe is published too.
    assert_eq!(rt.seen.lock().unwrap()[0].ports, vec![8080, 9090]);
    assert_eq!(r.profile.probes[2].outcome.exit_code, Some(0));
    // The exec probe ran under a second sensor: its files and syscalls are in the profile, and
    // the record keeps the plain command (that is what a replay runs).
    assert_eq!(
        r.profile.probes[2].spec,
        ProbeSpec::Exec {
            argv: vec!["apptool".into(), "--version".into()]
        }
    );
    assert_eq!(
        r.profile.probes[2].outcome.body_digest.as_deref(),
        Some(pare_probe::digest(b"apptool --version").as_str())
    );
    assert!(
        r.profile
            .sensor
            .files
            .get("/usr/bin/apptool")
            .is_some_and(|f| f.kinds.contains(&AccessKind::Exec))
    );
    assert!(
        r.profile.sensor.syscalls.contains("uname"),
        "merged syscalls"
    );
}

#[test]
fn missing_report_and_missing_command_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"8080/tcp":{}}}"#);
    let rt = runtime(Behaviour::NoReport);
    let e = run_profile(
        &img,
        "fake/app:1",
        Target::Daemon("x".into()),
        &rt,
        Path::new("/s"),
        &opts(dir.path()),
    )
    .unwrap_err()
    .to_string();
    assert!(rt.cleaned.load(Ordering::SeqCst), "cleaned up on error too");
    assert!(
        e.contains("sensor.json") && e.contains("fatal: no config"),
        "{e}"
    );
    let e = run_profile(
        &image("{}"),
        "fake/empty",
        Target::Daemon("x".into()),
        &runtime(Behaviour::Web),
        Path::new("/s"),
        &opts(dir.path()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("fake/empty") && e.contains("ENTRYPOINT"), "{e}");
}

#[test]
fn exec_only_probes_still_wait_for_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Behaviour::Web);
    let img = image(r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"8080/tcp":{}}}"#);
    let mut o = opts(&dir.path().join("o"));
    o.exec = vec!["app --check".into()];
    let r = run_profile(
        &img,
        "fake/app:1",
        Target::Daemon("x".into()),
        &rt,
        Path::new("/s"),
        &o,
    )
    .unwrap();
    assert!(
        r.readiness.contains("port 8080 answered"),
        "{}",
        r.readiness
    );
    assert_eq!(r.profile.probes.len(), 1);
}

#[test]
fn stability_run_can_be_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Behaviour::Web);
    let img = image(r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"8080/tcp":{}}}"#);
    let mut o = opts(&dir.path().join("o"));
    o.stability_run = false;
    let r = run_profile(
        &img,
        "fake/app:1",
        Target::Daemon("x".into()),
        &rt,
        Path::new("/s"),
        &o,
    )
    .unwrap();
    assert_eq!(rt.seen.lock().unwrap().len(), 1);
    assert!(
        r.profile
            .probes
            .iter()
            .all(|p| p.outcome.volatile.is_empty())
    );
    assert_eq!(r.timings.untraced_startup, None);
    assert!(!r.summary().contains("start-up"));
}

#[test]
fn a_service_override_changes_what_runs_under_the_sensor() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Behaviour::Web);
    let img = image(
        r#"{"Entrypoint":["/usr/bin/app"],"Cmd":["--serve"],"User":"app","WorkingDir":"/srv","Env":["A=1"],"ExposedPorts":{"8080/tcp":{}}}"#,
    );
    let mut o = opts(&dir.path().join("out"));
    o.run_override = Some(RunOverride {
        command: Some(vec!["--worker".into()]),
        env: vec!["A=2".into()],
        user: Some("1000".into()),
        workdir: Some("/data".into()),
        ..Default::default()
    });
    run_profile(
        &img,
        "fake/app:1",
        Target::Daemon("fake/app:1".into()),
        &rt,
        Path::new("/sensor"),
        &o,
    )
    .unwrap();
    let spec = rt.seen.lock().unwrap()[0].clone();
    assert_eq!(spec.command, vec!["/usr/bin/app", "--worker"]);
    assert_eq!(spec.env, vec!["A=2"]);
    assert_eq!(
        (spec.user.as_str(), spec.workdir.as_str()),
        ("1000", "/data")
    );
}

#[test]
fn continue_after_exit_stops_an_app_that_never_exits_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Profiles with `--continue-after WHEN`; returns the notices and how long it took.
    let run = |b: Behaviour, config: &str, when: &str| {
        let rt = runtime(b);
        let mut o = opts(&dir.path().join(when));
        o.continue_after = when.parse().unwrap();
        o.stability_run = false;
        let t = Instant::now();
        let r = run_profile(
            &image(config),
            "fake/app:1",
            Target::Daemon("x".into()),
            &rt,
            Path::new("/sensor"),
            &o,
        )
        .unwrap();
        assert!(
            rt.cleaned.load(Ordering::SeqCst),
            "the container is removed"
        );
        (r.profile.sensor.notices, t.elapsed())
    };
    let (notes, waited) = run(
        Behaviour::Web,
        r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"8080/tcp":{}}}"#,
        "exit:1",
    );
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("--continue-after exit") && n.contains("after 1s")),
        "{notes:?}"
    );
    // A job that exits by itself before the limit ends the wait early, with no such notice.
    let (notes, waited) = run(Behaviour::Job, r#"{"Cmd":["/usr/bin/job"]}"#, "exit:300");
    assert!(waited < Duration::from_secs(60), "{waited:?}");
    assert!(
        !notes.iter().any(|n| n.contains("--continue-after")),
        "{notes:?}"
    );
}

#[test]
fn an_app_that_exits_before_its_ports_answer_is_an_error_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"5672/tcp":{}}}"#);
    let rt = runtime(Behaviour::ExitEarly);
    let e = run_profile(
        &img,
        "fake/broker:1",
        Target::Daemon("x".into()),
        &rt,
        Path::new("/s"),
        &opts(&dir.path().join("o")),
    )
    .unwrap_err();
    assert!(matches!(e, ProfileError::NotReady { .. }), "{e:?}");
    assert!(e.hint().is_some_and(|h| h.contains("--job")), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("fake/broker:1")
            && e.contains("exited with code 0")
            && e.contains("port 5672 answered")
            && e.contains("| app: fatal: no config"),
        "{e}"
    );
    assert!(rt.cleaned.load(Ordering::SeqCst));
    assert!(
        !dir.path().join("o/profile.json").exists(),
        "no profile of a broken run"
    );

    // Declared a job: its run to completion is the behaviour.
    let mut o = opts(&dir.path().join("o"));
    o.job = true;
    let r = run_profile(
        &img,
        "fake/broker:1",
        Target::Daemon("x".into()),
        &runtime(Behaviour::ExitEarly),
        Path::new("/s"),
        &o,
    )
    .unwrap();
    assert_eq!(r.profile.probes.len(), 1);
    assert_eq!(r.profile.probes[0].spec, ProbeSpec::Job);
    assert_eq!(r.profile.probes[0].outcome.exit_code, Some(0));
    assert!(r.failed_probes().is_empty());
    let run = r.profile.run.as_ref().unwrap();
    assert!(run.job);
    assert!(matches!(run.after_probes, Some(pare_trace::AppState::Exited(ref e)) if e.code == 0));
}

#[test]
fn an_unused_expose_is_a_finding_not_a_wait() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"80/tcp":{},"8080/tcp":{}}}"#);
    let rt = runtime(Behaviour::WebBut(80));
    let mut o = opts(&dir.path().join("o"));
    o.timeout = Duration::from_secs(30);
    let t = Instant::now();
    let r = run_profile(
        &img,
        "fake/web:1",
        Target::Daemon("x".into()),
        &rt,
        Path::new("/s"),
        &o,
    )
    .unwrap();
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    let run = r.profile.run.as_ref().unwrap();
    assert_eq!(
        run.findings,
        vec!["EXPOSE 80/tcp: nothing listens".to_string()]
    );
    assert_eq!(run.unused_exposed, vec!["80/tcp".to_string()]);
    assert_eq!(run.ports.get(&8080).map(String::as_str), Some("http"));
    assert_eq!(run.after_probes, Some(pare_trace::AppState::Running));
    // Nothing probes the unused port, so nothing records a refusal as the behaviour.
    assert!(r.profile.probes.iter().all(|p| p.spec.port() == Some(8080)));
    assert!(r.failed_probes().is_empty());
    let summary = r.summary();
    assert!(
        summary.contains("finding   EXPOSE 80/tcp: nothing listens")
            && summary.contains("stopped waiting for 80/tcp")
            && summary.contains("still running"),
        "{summary}"
    );
    // The finding is in profile.json too.
    let written: Profile =
        serde_json::from_slice(&std::fs::read(&r.artifacts.profile_json).unwrap()).unwrap();
    assert_eq!(written.run, r.profile.run);
    // The untraced stability run waited for 8080 only.
    assert!(r.timings.untraced_startup.is_some());
}

#[test]
fn a_refused_probe_fails_the_profile_unless_the_port_is_declared_closed() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"80/tcp":{},"8080/tcp":{}}}"#);
    let mut o = opts(&dir.path().join("o"));
    o.expect_closed = vec![80];
    let r = run_profile(
        &img,
        "fake/web:1",
        Target::Daemon("x".into()),
        &runtime(Behaviour::WebBut(80)),
        Path::new("/s"),
        &o,
    )
    .unwrap();
    let tcp80 = r
        .profile
        .probes
        .iter()
        .find(|p| p.spec == ProbeSpec::Tcp { port: 80 })
        .expect("the declared port is probed");
    assert_eq!(tcp80.outcome.connected, Some(false));
    assert!(r.failed_probes().is_empty(), "{}", r.summary());
    assert!(r.profile.run.as_ref().unwrap().findings.is_empty());

    // The same record without the declaration is no evidence: the profile fails (exit 1).
    let mut undeclared = r.clone();
    undeclared
        .profile
        .run
        .as_mut()
        .unwrap()
        .expected_closed
        .clear();
    let failed = undeclared.failed_probes();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].spec, ProbeSpec::Tcp { port: 80 });
    let summary = undeclared.summary();
    assert!(
        summary.contains("✗ tcp :80") && summary.contains("--expect-closed 80"),
        "{summary}"
    );
}
