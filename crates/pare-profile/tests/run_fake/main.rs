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
        config_digest: pare_image::digest::sha256(&[0xab; 32]),
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

/// An image serving HTTP: `/usr/bin/app`, port 8080 exposed.
const WEB: &str = r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"8080/tcp":{}}}"#;
/// [`WEB`] with an entrypoint and argument, a user, a working directory and an environment.
const WEB_FULL: &str = r#"{"Entrypoint":["/usr/bin/app"],"Cmd":["--serve"],"User":"app","WorkingDir":"/srv","Env":["A=1"],"ExposedPorts":{"8080/tcp":{}}}"#;

/// `run_profile` of `img` named `reference`, run from the daemon image of that name on `rt`
/// (the fake needs no sensor file).
fn profile_on(
    rt: &dyn Runtime,
    img: &ResolvedImage,
    reference: &str,
    o: &ProfileOptions,
) -> Result<ProfileResult, ProfileError> {
    run_profile(
        img,
        reference,
        Target::Daemon(reference.into()),
        rt,
        Path::new("/sensor"),
        o,
    )
}

/// A profile run's set-up: a temp dir, the fake runtime, the image and options writing into
/// `<dir>/o`; a test changes `o` before [`Setup::run`].
struct Setup {
    dir: tempfile::TempDir,
    rt: FakeRuntime,
    img: ResolvedImage,
    o: ProfileOptions,
}

/// The set-up of a run of an image with `config` on a fake runtime playing `behaviour`.
fn setup(behaviour: Behaviour, config: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir.path().join("o"));
    Setup {
        dir,
        rt: runtime(behaviour),
        img: image(config),
        o,
    }
}

impl Setup {
    /// Profiles the image as `reference` ([`profile_on`]).
    fn run(&self, reference: &str) -> Result<ProfileResult, ProfileError> {
        profile_on(&self.rt, &self.img, reference, &self.o)
    }

    /// Every RunSpec the runtime started, the profiling run first.
    fn seen(&self) -> Vec<RunSpec> {
        self.rt.seen.lock().unwrap().clone()
    }

    /// Whether the runtime's container was cleaned up.
    fn cleaned(&self) -> bool {
        self.rt.cleaned.load(Ordering::SeqCst)
    }
}

mod runs;
mod verdicts;
