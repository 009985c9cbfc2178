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

#[path = "../common/cli.rs"]
mod cli;
use cli::pare;

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

mod examples;
mod signals;
