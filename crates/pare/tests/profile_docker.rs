//! `pare profile` end to end on the example images (`scripts/testbed examples`), with both
//! runtimes. Needs dockerd, root and the static sensor (`PARE_SENSOR`, set by scripts/test):
//! behind the `docker-tests` feature.
//!
//! Besides the recorded files, each test checks the generated `seccomp.json` the way a user
//! would apply it: the ORIGINAL image runs under `docker run --security-opt seccomp=...` and
//! the recorded probes are replayed against it and compared with the recorded answers.
#![cfg(feature = "docker-tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pare_profile::pare_probe::{self, ProbeOptions, Readiness};
use pare_profile::pare_runtime::{Container, ExecOutput, RuntimeError};
use pare_profile::pare_trace::{AccessKind, ExitInfo, ProbeSpec, Profile};

fn pare() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("pare"))
}

/// Runs `pare profile IMAGE -o DIR ARGS...` and returns the profile and the output dir.
/// With `PARE_TEST_PTRACE_ONLY=1` every run adds `--no-fanotify`: scripts/test runs this whole
/// file a second time that way, so ptrace-only mode passes the same tests as ptrace+fanotify.
fn profile(image: &str, args: &[&str]) -> (Profile, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ptrace_only = std::env::var("PARE_TEST_PTRACE_ONLY").is_ok_and(|v| v == "1")
        && !args.contains(&"--no-fanotify");
    let out = pare()
        .args(["profile", image, "--output"])
        .arg(dir.path())
        .args(["--timeout", "120"])
        .args(args)
        .args(ptrace_only.then_some("--no-fanotify"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "pare profile {image} {args:?} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("profile.json") && stdout.contains("seccomp.json"),
        "{stdout}"
    );
    let p = pare_profile::read_profile(&dir.path().join("profile.json")).unwrap();
    for f in ["seccomp.json", "apparmor.profile"] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    (p, dir)
}

fn has(p: &Profile, path: &str, kind: AccessKind) -> bool {
    p.sensor
        .files
        .get(path)
        .is_some_and(|f| f.kinds.contains(&kind))
}

fn assert_has(p: &Profile, path: &str, kind: AccessKind) {
    assert!(
        has(p, path, kind),
        "{path} not recorded as {kind:?}; got {:?}",
        p.sensor.files.get(path)
    );
}

fn stat_only(p: &Profile) -> Vec<&String> {
    p.sensor
        .files
        .iter()
        .filter(|(_, f)| {
            f.found && !f.kinds.is_empty() && f.kinds.iter().all(|k| *k == AccessKind::Stat)
        })
        .map(|(k, _)| k)
        .collect()
}

fn any_lib(p: &Profile, prefix: &str) -> bool {
    p.sensor.files.iter().any(|(k, f)| {
        k.contains(&format!("/{prefix}"))
            && k.contains(".so")
            && f.kinds.contains(&AccessKind::Open)
    })
}

/// The original image run by the docker CLI with only the generated seccomp profile.
struct Original {
    id: String,
    ports: BTreeMap<u16, SocketAddr>,
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().unwrap()
}

impl Original {
    fn start(image: &str, seccomp: &Path, ports: &[u16]) -> Original {
        let mut args = vec![
            "run".to_string(),
            "-d".into(),
            "--security-opt".into(),
            format!("seccomp={}", seccomp.display()),
        ];
        for p in ports {
            args.push("-p".into());
            args.push(format!("127.0.0.1::{p}"));
        }
        args.push(image.into());
        let out = Command::new("docker").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "docker run with seccomp.json failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut map = BTreeMap::new();
        for p in ports {
            let o = docker(&["port", &id, &format!("{p}/tcp")]);
            let text = String::from_utf8_lossy(&o.stdout);
            let addr: SocketAddr = text
                .lines()
                .find_map(|l| l.trim().parse().ok())
                .expect("published port");
            map.insert(*p, addr);
        }
        Original { id, ports: map }
    }

    fn state(&self) -> Option<ExitInfo> {
        let o = docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.ExitCode}}",
            &self.id,
        ]);
        let t = String::from_utf8_lossy(&o.stdout);
        let mut it = t.split_whitespace();
        match (it.next(), it.next()) {
            (Some("false"), Some(c)) => Some(ExitInfo {
                code: c.parse().unwrap_or(-1),
                signal: None,
            }),
            _ => None,
        }
    }
}

impl Drop for Original {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.id]);
    }
}

impl Container for Original {
    fn endpoint(&self, port: u16) -> Option<SocketAddr> {
        self.ports.get(&port).copied()
    }
    fn exec(&self, argv: &[String], _timeout: Duration) -> Result<ExecOutput, RuntimeError> {
        let mut a = vec!["exec".to_string(), self.id.clone()];
        a.extend(argv.iter().cloned());
        let o = Command::new("docker").args(&a).output().unwrap();
        Ok(ExecOutput {
            exit_code: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: o.stderr,
        })
    }
    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        let end = std::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.state() {
                return Ok(Some(e));
            }
            if std::time::Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    fn stop(&self, _grace: Duration) -> Result<ExitInfo, RuntimeError> {
        let _ = docker(&["stop", &self.id]);
        Ok(self.state().unwrap_or(ExitInfo {
            code: -1,
            signal: None,
        }))
    }
    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
        let o = docker(&["logs", &self.id]);
        Ok((o.stdout, o.stderr))
    }
    fn cleanup(&self) -> Result<(), RuntimeError> {
        let _ = docker(&["rm", "-f", &self.id]);
        Ok(())
    }
}

/// Runs the original image under seccomp.json and replays the recorded probes.
fn replay_under_seccomp(image: &str, p: &Profile, dir: &Path) {
    let ports: Vec<u16> = p
        .image
        .exposed_ports
        .iter()
        .filter_map(|e| e.strip_suffix("/tcp")?.parse().ok())
        .collect();
    let original = Original::start(image, &dir.join("seccomp.json"), &ports);
    let c: &dyn Container = &original;
    if !ports.is_empty() {
        let r = pare_probe::wait_ready(c, &ports, Duration::from_secs(60)).unwrap();
        assert_eq!(
            r,
            Readiness::Ready,
            "{image} under seccomp.json: {:?}",
            String::from_utf8_lossy(&docker(&["logs", &original.id]).stderr)
        );
    }
    let opts = ProbeOptions {
        job_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    for r in pare_probe::replay(c, &p.probes, &opts) {
        assert!(
            r.ok(),
            "{image} under seccomp.json: {} differs: {:?}",
            pare_probe::describe(&r.record.spec),
            r.result
        );
    }
}

fn apparmor_ok(dir: &Path) {
    let parser = Path::new("/sbin/apparmor_parser");
    let parser = if parser.exists() {
        parser.to_path_buf()
    } else {
        PathBuf::from("/usr/sbin/apparmor_parser")
    };
    if !parser.exists() {
        return;
    }
    let o = Command::new(parser)
        .args(["-Q", "-K"])
        .arg(dir.join("apparmor.profile"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "apparmor_parser: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn python_web_docker() {
    let (p, dir) = profile("pare-example/python-web", &[]);
    assert_eq!(p.runtime, "docker");
    assert_has(&p, "/usr/bin/python3.11", AccessKind::Exec);
    assert!(any_lib(&p, "libc"), "shared libraries");
    assert_has(&p, "/app/app.py", AccessKind::Open);
    // /second imports report.py lazily: only the crawl reaches it.
    assert_has(&p, "/app/report.py", AccessKind::Open);
    assert!(
        p.sensor
            .files
            .keys()
            .any(|k| k.starts_with("/usr/lib/python3/dist-packages/flask/"))
    );
    assert!(!stat_only(&p).is_empty(), "stat-only files");
    let paths: BTreeSet<String> = p
        .probes
        .iter()
        .filter_map(|r| {
            if let ProbeSpec::Http { path, .. } = &r.spec {
                Some(path.clone())
            } else {
                None
            }
        })
        .collect();
    assert!(
        paths.contains("/") && paths.contains("/second"),
        "{paths:?}"
    );
    assert!(p.probes.iter().all(|r| r.outcome.http_status == Some(200)));
    apparmor_ok(dir.path());
    replay_under_seccomp("pare-example/python-web", &p, dir.path());
}

#[test]
fn python_web_embedded_matches_docker() {
    let (d, _dd) = profile("pare-example/python-web", &["--runtime", "docker"]);
    let (e, ed) = profile("pare-example/python-web", &["--runtime", "embedded"]);
    assert_eq!(e.runtime, "embedded");
    let found = |p: &Profile| -> BTreeSet<String> {
        p.sensor
            .files
            .iter()
            .filter(|(_, f)| f.found)
            .map(|(k, _)| k.clone())
            .collect()
    };
    let (fd, fe) = (found(&d), found(&e));
    let only_d: Vec<_> = fd.difference(&fe).collect();
    let only_e: Vec<_> = fe.difference(&fd).collect();
    // Same app, same image: the file sets agree (allow a handful of runtime-specific paths,
    // e.g. /etc/hostname or /dev nodes the runtimes provide differently).
    assert!(
        only_d.len() + only_e.len() <= 5,
        "docker only: {only_d:?}\nembedded only: {only_e:?}"
    );
    assert_has(&e, "/app/report.py", AccessKind::Open);
    assert_eq!(d.probes.len(), e.probes.len());
    // The embedded run's seccomp.json works for the original image under docker too.
    replay_under_seccomp("pare-example/python-web", &e, ed.path());
}

#[test]
fn python_web_ptrace_only() {
    let (p, _d) = profile("pare-example/python-web", &["--no-fanotify"]);
    assert!(!p.sensor.fanotify);
    assert_has(&p, "/usr/bin/python3.11", AccessKind::Exec);
    assert_has(&p, "/app/report.py", AccessKind::Open);
    assert!(any_lib(&p, "libc"));
}

#[test]
fn go_server_non_root() {
    let (p, dir) = profile("pare-example/go-server", &[]);
    assert_eq!(p.sensor.uid, 10001);
    assert_has(&p, "/app", AccessKind::Exec);
    assert!(p.probes.iter().any(|r| r.outcome.http_status == Some(200)));
    replay_under_seccomp("pare-example/go-server", &p, dir.path());
}

#[test]
fn nginx_static_site() {
    let (p, dir) = profile("pare-example/nginx", &[]);
    assert_has(&p, "/usr/sbin/nginx", AccessKind::Exec);
    assert_has(&p, "/etc/nginx/nginx.conf", AccessKind::Open);
    assert!(any_lib(&p, "libc"));
    assert!(
        p.probes.len() >= 2,
        "the crawl follows the site's links: {:?}",
        p.probes
    );
    apparmor_ok(dir.path());
    replay_under_seccomp("pare-example/nginx", &p, dir.path());
}

#[test]
fn node_web() {
    let (p, dir) = profile("pare-example/node-web", &[]);
    assert_has(&p, "/usr/bin/node", AccessKind::Exec);
    assert!(
        p.sensor
            .files
            .keys()
            .any(|k| k.contains("/node_modules/express/")),
        "express loaded"
    );
    replay_under_seccomp("pare-example/node-web", &p, dir.path());
}

#[test]
fn redis_tcp_service() {
    let (p, dir) = profile("pare-example/redis", &[]);
    assert_has(&p, "/usr/bin/redis-server", AccessKind::Exec);
    assert_eq!(p.probes.len(), 1);
    // Classified by its answers as redis: a RESP handshake, not a bare TCP connect.
    assert_eq!(
        p.probes[0].spec,
        ProbeSpec::Protocol {
            port: 6379,
            protocol: pare_profile::pare_trace::Protocol::Redis
        }
    );
    let fields = &p.probes[0].outcome.fields;
    assert_eq!(fields.get("redis.ping").map(String::as_str), Some("PONG"));
    assert!(
        fields
            .get("redis.version")
            .is_some_and(|v| v.starts_with('7')),
        "{fields:?}"
    );
    assert!(!fields.keys().any(|k| k.contains("run_id")), "{fields:?}");
    replay_under_seccomp("pare-example/redis", &p, dir.path());
}

#[test]
fn cli_job_runs_to_completion() {
    let (p, dir) = profile("pare-example/cli-job", &[]);
    assert_eq!(p.probes.len(), 1);
    assert_eq!(p.probes[0].spec, ProbeSpec::Job);
    assert_eq!(p.probes[0].outcome.exit_code, Some(0));
    assert_has(&p, "/usr/bin/jq", AccessKind::Exec);
    assert!(!stat_only(&p).is_empty() || p.sensor.files.values().any(|f| f.missing));
    replay_under_seccomp("pare-example/cli-job", &p, dir.path());
}

#[test]
fn shell_entrypoint_execs() {
    let (p, dir) = profile("pare-example/shell-entrypoint", &[]);
    let execs: BTreeSet<&str> = p.sensor.execs.iter().map(|e| e.path.as_str()).collect();
    assert!(execs.contains("/entrypoint.sh"), "{execs:?}");
    assert!(execs.iter().any(|e| e.ends_with("busybox")), "{execs:?}");
    // status.txt holds the container's start time (to the nanosecond): fixed within one
    // container, different in the next, so only the stability run (a second container) can
    // mark it volatile.
    let status = p
        .probes
        .iter()
        .find(|r| matches!(&r.spec, ProbeSpec::Http { path, .. } if path == "/status.txt"))
        .expect("the crawl reaches /status.txt");
    assert!(
        status.outcome.volatile.iter().any(|v| v == "body"),
        "{:?}",
        status.outcome
    );
    replay_under_seccomp("pare-example/shell-entrypoint", &p, dir.path());
}

#[test]
fn explicit_probes_exec_and_host_exec() {
    let (p, _dir) = profile(
        "pare-example/shell-entrypoint",
        &[
            "--http-probe",
            "GET:/",
            "--exec",
            "cat /etc/hostname",
            "--host-exec",
            "printf %s {port:8000}",
        ],
    );
    let kinds: Vec<String> = p
        .probes
        .iter()
        .map(|r| pare_probe::describe(&r.spec))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(p.probes[0].outcome.http_status, Some(200));
    assert_eq!(p.probes[1].outcome.exit_code, Some(0));
    assert_eq!(p.probes[2].outcome.exit_code, Some(0));
    assert!(
        p.probes[2].outcome.body_len.unwrap() >= 4,
        "host port printed"
    );
}

#[test]
fn docker_archive_runs_daemonless() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("cli-job.tar");
    let o = docker(&["save", "-o", tar.to_str().unwrap(), "pare-example/cli-job"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A non-daemon reference picks the embedded runtime by itself.
    let (p, _d) = profile(&format!("docker-archive:{}", tar.display()), &[]);
    assert_eq!(p.runtime, "embedded");
    assert_eq!(p.probes[0].spec, ProbeSpec::Job);
    assert_eq!(p.probes[0].outcome.exit_code, Some(0));
    assert_has(&p, "/usr/bin/jq", AccessKind::Exec);
}

/// Spawns `pare profile` and returns it once a stderr line contains `marker`.
fn spawn_until(
    args: &[&str],
    tmp: &Path,
    marker: &str,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let mut child = pare()
        .args(args)
        .env("TMPDIR", tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(&marker) {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(180))
        .expect("marker line on stderr");
    (child, reader)
}

fn wait_exit(child: &mut std::process::Child, secs: u64) -> Option<i32> {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn continue_after_signal_stops_on_sigusr1() {
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
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let code = wait_exit(&mut child, 120);
    let log = reader.join().unwrap();
    assert_eq!(code, Some(0), "{log}");
    let p = pare_profile::read_profile(&out.path().join("profile.json")).unwrap();
    assert_has(&p, "/app", AccessKind::Exec);
}

/// During `--continue-after signal`, a first Ctrl-C only ends the wait (as SIGUSR1 does): the
/// profile is written and pare exits 0.
#[test]
fn continue_after_signal_stops_on_a_first_ctrl_c() {
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
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
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

#[test]
fn exec_probe_is_traced_without_fanotify() {
    let (p, _d) = profile(
        "pare-example/redis",
        &["--exec", "redis-cli ping", "--no-fanotify"],
    );
    assert!(!p.sensor.fanotify);
    assert_eq!(
        p.probes[0].spec,
        ProbeSpec::Exec {
            argv: vec!["redis-cli".into(), "ping".into()]
        }
    );
    assert_eq!(p.probes[0].outcome.exit_code, Some(0));
    assert_eq!(
        p.probes[0].outcome.body_digest.as_deref(),
        Some(pare_probe::digest(b"PONG\n").as_str())
    );
    // The command the probe ran is part of the profile, so a slim image keeps it.
    assert_has(&p, "/usr/bin/redis-cli", AccessKind::Exec);
    assert_has(&p, "/usr/bin/redis-server", AccessKind::Exec);
}
