//! The verdict rules of issue 8 with a fake runtime: a slim run can only pass when it was
//! observed working the way the original was.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pare_runtime::{Container, ExecOutput, RunSpec, Runtime, RuntimeError};
use pare_trace::{AppState, ExitInfo, ProbeOutcome, ProbeRecord, ProbeSpec, RunRecord};
use pare_verify::{VerifyOptions, verify};

/// How the fake slim app behaves.
#[derive(Clone, Copy)]
enum Mode {
    /// Serves `GET /` with 200 "hello" forever.
    Serve,
    /// Serves, then exits with `code` once it has answered `requests` requests.
    ServeThenExit { requests: usize, code: i32 },
    /// Exits with `code` at once, never listening.
    ExitAtOnce { code: i32 },
}

struct Fake(Mode);

struct FakeContainer {
    port: u16,
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    exit: Arc<Mutex<Option<ExitInfo>>>,
}

impl Runtime for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn start(&self, spec: &RunSpec) -> Result<Box<dyn Container>, RuntimeError> {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let exit = Arc::new(Mutex::new(None));
        match self.0 {
            Mode::ExitAtOnce { code } => {
                drop(l);
                *exit.lock().unwrap() = Some(ExitInfo { code, signal: None });
            }
            mode => {
                let (served, exit) = (served.clone(), exit.clone());
                std::thread::spawn(move || {
                    for s in l.incoming().flatten() {
                        if exit.lock().unwrap().is_some() {
                            return;
                        }
                        let mut s = s;
                        let mut r = BufReader::new(s.try_clone().unwrap());
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            continue;
                        }
                        loop {
                            let mut h = String::new();
                            if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                                break;
                            }
                        }
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
                        );
                        let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                        if let Mode::ServeThenExit { requests, code } = mode {
                            if n >= requests {
                                *exit.lock().unwrap() = Some(ExitInfo { code, signal: None });
                                return;
                            }
                        }
                    }
                });
            }
        }
        Ok(Box::new(FakeContainer {
            port: spec.ports.first().copied().unwrap_or(8080),
            addr,
            served,
            exit,
        }))
    }
}

impl Container for FakeContainer {
    fn endpoint(&self, port: u16) -> Option<SocketAddr> {
        (port == self.port).then_some(self.addr)
    }
    fn listening(&self, port: u16) -> Option<bool> {
        if port != self.port {
            return Some(false);
        }
        Some(self.exit.lock().unwrap().is_none())
    }
    fn exec(&self, _a: &[String], _t: Duration) -> Result<ExecOutput, RuntimeError> {
        Ok(ExecOutput::default())
    }
    fn wait(&self, _t: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        let _ = self.served.load(Ordering::SeqCst);
        Ok(self.exit.lock().unwrap().clone())
    }
    fn stop(&self, _g: Duration) -> Result<ExitInfo, RuntimeError> {
        Ok(ExitInfo {
            code: 137,
            signal: Some("SIGKILL".into()),
        })
    }
    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
        Ok((vec![], b"slim: error: libfoo.so.1 missing\n".to_vec()))
    }
    fn cleanup(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
}

fn spec() -> RunSpec {
    RunSpec {
        source: pare_runtime::RunSource::Daemon("slim".into()),
        command: vec!["app".into()],
        env: vec![],
        user: String::new(),
        workdir: String::new(),
        ports: vec![8080],
        sensor: None,
        hostname: "pare".into(),
    }
}

fn get() -> ProbeRecord {
    ProbeRecord {
        spec: ProbeSpec::Http {
            port: 8080,
            method: "GET".into(),
            path: "/".into(),
            headers: vec![],
            body: None,
            https: false,
            expect_status: None,
        },
        outcome: ProbeOutcome {
            http_status: Some(200),
            headers: [("content-type".to_string(), "text/plain".to_string())].into(),
            body_digest: Some(pare_probe::digest(b"hello")),
            body_len: Some(5),
            ..Default::default()
        },
        millis: 1,
    }
}

fn record(after: AppState) -> RunRecord {
    RunRecord {
        readiness: "port 8080 answered (8080 http) after 0.1s".into(),
        ports: [(8080, "http".to_string())].into(),
        after_probes: Some(after),
        ..Default::default()
    }
}

fn opts(run: RunRecord) -> VerifyOptions {
    VerifyOptions {
        ready_timeout: Duration::from_secs(5),
        run: Some(run),
        ..Default::default()
    }
}

fn verdict<'a>(v: &'a pare_verify::Verification, probe: &str) -> &'a pare_verify::ProbeVerdict {
    v.probes
        .iter()
        .find(|p| p.probe == probe)
        .unwrap_or_else(|| panic!("no {probe} verdict in {:?}", v.probes))
}

#[test]
fn a_working_slim_image_passes_and_every_verdict_says_what_it_compared() {
    let v = verify(
        &Fake(Mode::Serve),
        &spec(),
        &[get()],
        &opts(record(AppState::Running)),
    )
    .unwrap();
    assert!(v.ok(), "{:?}", v.probes);
    let names: Vec<&str> = v.probes.iter().map(|p| p.probe.as_str()).collect();
    assert_eq!(
        names,
        ["GET http:8080/", "readiness", "state after the probes"]
    );
    assert!(
        v.probes.iter().all(|p| !p.compared.is_empty()),
        "{:?}",
        v.probes
    );
    assert!(v.probes[0].compared.contains("status") && v.probes[0].compared.contains("body"));
    assert_eq!(verdict(&v, "state after the probes").actual, "running");
}

#[test]
fn a_slim_app_that_exits_while_the_original_kept_running_fails() {
    // Readiness asks once, the probe once: then the slim app exits with 0.
    let v = verify(
        &Fake(Mode::ServeThenExit {
            requests: 2,
            code: 0,
        }),
        &spec(),
        &[get()],
        &opts(record(AppState::Running)),
    )
    .unwrap();
    assert!(!v.ok());
    assert!(
        verdict(&v, "GET http:8080/").ok,
        "the answer itself matched"
    );
    let s = verdict(&v, "state after the probes");
    assert!(!s.ok && s.actual == "exited with code 0", "{s:?}");
    assert!(!v.stderr_tail.is_empty(), "the slim app's stderr is shown");
}

#[test]
fn a_different_exit_code_fails_and_the_same_one_passes() {
    let exited = |code| AppState::Exited(ExitInfo { code, signal: None });
    let slim = Fake(Mode::ServeThenExit {
        requests: 2,
        code: 3,
    });
    let v = verify(&slim, &spec(), &[get()], &opts(record(exited(1)))).unwrap();
    assert!(!verdict(&v, "state after the probes").ok);
    let v = verify(&slim, &spec(), &[get()], &opts(record(exited(3)))).unwrap();
    assert!(v.ok(), "{:?}", v.probes);
}

#[test]
fn a_slim_app_that_exits_before_it_is_ready_fails_even_if_refusals_match() {
    // The recorded answer was a refusal (declared closed, so it would match): the slim app
    // exiting at once must still fail on readiness.
    let refused = ProbeRecord {
        spec: ProbeSpec::Tcp { port: 8080 },
        outcome: ProbeOutcome {
            connected: Some(false),
            ..Default::default()
        },
        millis: 1,
    };
    let mut run = record(AppState::Running);
    run.expected_closed = vec![8080];
    let v = verify(
        &Fake(Mode::ExitAtOnce { code: 0 }),
        &spec(),
        &[refused],
        &opts(run),
    )
    .unwrap();
    assert!(verdict(&v, "tcp :8080").ok, "{:?}", v.probes);
    let r = verdict(&v, "readiness");
    assert!(!r.ok && r.actual.contains("exited with code 0"), "{r:?}");
    assert!(v.early_exit.is_some());
    assert!(!v.ok());
}

#[test]
fn a_recorded_refusal_on_an_undeclared_port_is_no_evidence() {
    let refused = ProbeRecord {
        spec: ProbeSpec::Tcp { port: 5672 },
        outcome: ProbeOutcome {
            connected: Some(false),
            ..Default::default()
        },
        millis: 1,
    };
    // An old profile (no run record): the slim image refuses too, and still fails.
    let mut s = spec();
    s.ports = vec![5672];
    let v = verify(
        &Fake(Mode::ExitAtOnce { code: 0 }),
        &s,
        &[refused],
        &VerifyOptions {
            ready_timeout: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .unwrap();
    let t = verdict(&v, "tcp :5672");
    assert!(!t.ok, "{t:?}");
    assert!(
        t.difference
            .as_deref()
            .unwrap()
            .contains("--expect-closed 5672"),
        "{t:?}"
    );
    assert!(!v.ok());
}
