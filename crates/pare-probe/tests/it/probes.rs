//! Probes against real local servers through a fake container.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pare_probe::*;
use pare_runtime::{Container, ExecOutput, RuntimeError};

/// Maps container ports to local addresses; the "main process" exits when told to.
#[derive(Default)]
struct Fake {
    ports: BTreeMap<u16, SocketAddr>,
    exit: Mutex<Option<ExitInfo>>,
    stdout: Vec<u8>,
    /// Container port → the app's own address, asked by `listening` (no proxy in between),
    /// like the docker runtime asks the container's IP.
    direct: BTreeMap<u16, SocketAddr>,
}

impl Container for Fake {
    fn endpoint(&self, port: u16) -> Option<SocketAddr> {
        self.ports.get(&port).copied()
    }
    fn listening(&self, port: u16) -> Option<bool> {
        let addr = self.direct.get(&port)?;
        Some(TcpStream::connect_timeout(addr, Duration::from_secs(1)).is_ok())
    }
    fn exec(&self, argv: &[String], _timeout: Duration) -> Result<ExecOutput, RuntimeError> {
        // Stands in for running inside the container: `echo WORDS` prints them, else exit 127.
        match argv.split_first() {
            Some((c, rest)) if c == "echo" => Ok(ExecOutput {
                exit_code: 0,
                stdout: format!("{}\n", rest.join(" ")).into_bytes(),
                stderr: vec![],
            }),
            _ => Ok(ExecOutput {
                exit_code: 127,
                stdout: vec![],
                stderr: b"not found".to_vec(),
            }),
        }
    }
    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(e) = self.exit.lock().unwrap().clone() {
                return Ok(Some(e));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    fn stop(&self, _grace: Duration) -> Result<ExitInfo, RuntimeError> {
        Ok(ExitInfo {
            code: 143,
            signal: Some("SIGTERM".into()),
        })
    }
    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
        Ok((self.stdout.clone(), Vec::new()))
    }
    fn cleanup(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
}

/// A tiny web app: records each request line and Host header.
struct App {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<(String, String)>>>,
    /// Changes `/` when set (to test replays).
    broken: Arc<Mutex<bool>>,
}

fn page(status: &str, ctype: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nDate: Mon, 01 Jan 2026 00:00:0{}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len() % 10,
        body.len()
    )
}

fn app() -> App {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let broken = Arc::new(Mutex::new(false));
    let (log2, broken2) = (log.clone(), broken.clone());
    let counter = Arc::new(Mutex::new(0u32));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut host = String::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.strip_prefix("Host:") {
                    host = v.trim().to_string();
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            log2.lock().unwrap().push((path.clone(), host));
            let resp = match path.as_str() {
                "/" if *broken2.lock().unwrap() => {
                    page("500 Internal Server Error", "text/plain", "", "boom")
                }
                "/" => page(
                    "200 OK",
                    "text/html; charset=utf-8",
                    "",
                    r#"<a href="/second">2</a> <img src="img.png"> <a href="http://localhost:8080/abs#x">abs</a>
                       <a href="http://other.example/x">ext</a> <a href="/redirect">r</a> <a href="mailto:x@y">m</a>"#,
                ),
                "/second" => page(
                    "200 OK",
                    "text/html",
                    "",
                    "<a href='third?q=1'>3</a><a href='/'>home</a><link rel=stylesheet href=style.css>",
                ),
                "/redirect" => page(
                    "302 Found",
                    "text/html",
                    "Location: http://localhost:8080/moved\r\n",
                    "",
                ),
                "/time" => {
                    let mut c = counter.lock().unwrap();
                    *c += 1;
                    page("200 OK", "text/plain", "", &format!("now {c}"))
                }
                "/img.png" => {
                    // Chunked, to exercise the decoder against a live socket.
                    "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nPNG!\r\n0\r\n\r\n".to_string()
                }
                "/dir/rel" => page("302 Found", "text/plain", "Location: next?x=1\r\n", ""),
                "/style.css" => page(
                    "200 OK",
                    "text/css",
                    "",
                    "body { background: url('bg.png') }",
                ),
                "/abs" | "/third?q=1" | "/moved" | "/bg.png" => {
                    page("200 OK", "text/plain", "", &format!("page {path}"))
                }
                _ => page("404 Not Found", "text/plain", "", "nope"),
            };
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    App { addr, log, broken }
}

fn fake(ports: &[(u16, SocketAddr)]) -> Fake {
    Fake {
        ports: ports.iter().copied().collect(),
        ..Default::default()
    }
}

#[test]
fn crawl_follows_same_origin_links_and_redirects() {
    let app = app();
    let c = fake(&[(8080, app.addr)]);
    let recs = crawl(&c, 8080, false, &ProbeOptions::default());
    let paths: Vec<String> = recs
        .iter()
        .map(|r| match &r.spec {
            ProbeSpec::Http { path, .. } => path.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        paths,
        vec![
            "/",
            "/second",
            "/img.png",
            "/abs",
            "/redirect",
            "/third?q=1",
            "/style.css",
            "/moved",
            "/bg.png"
        ]
    );
    // The Host header carries the container port, not the host port.
    assert!(
        app.log
            .lock()
            .unwrap()
            .iter()
            .all(|(_, h)| h == "localhost:8080")
    );
    let root = &recs[0].outcome;
    assert_eq!(root.http_status, Some(200));
    assert_eq!(
        root.headers.get("content-type").map(String::as_str),
        Some("text/html; charset=utf-8")
    );
    assert!(
        !root.headers.contains_key("date"),
        "volatile headers are not kept"
    );
    let redirect = &recs[4].outcome;
    assert_eq!(redirect.http_status, Some(302));
    assert_eq!(
        redirect.headers.get("location").map(String::as_str),
        Some("/moved"),
        "own origin stripped"
    );
    let img = &recs[2].outcome;
    assert_eq!(img.body_len, Some(4));
    assert_eq!(img.body_digest.as_deref(), Some(digest(b"PNG!").as_str()));
}

#[test]
fn crawl_respects_limits() {
    let app = app();
    let c = fake(&[(8080, app.addr)]);
    let opts = ProbeOptions {
        crawl_max: 2,
        ..Default::default()
    };
    assert_eq!(crawl(&c, 8080, false, &opts).len(), 2);
    let opts = ProbeOptions {
        crawl_depth: 0,
        ..Default::default()
    };
    assert_eq!(crawl(&c, 8080, false, &opts).len(), 1);
}

/// Real redis closes the connection when it sees a `Host:` line (cross-protocol attack guard)
/// and, sent a TLS ClientHello, waits for a newline forever. Classifying such a port must
/// not wait out the HTTPS request timeout. (This one never answers PING either, so the redis
/// and PostgreSQL handshakes tried after the TLS check give up after 600 ms each.)
#[test]
fn classify_redis_like_server_quickly() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = Vec::new();
                let mut b = [0u8; 512];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&b[..n]);
                    if buf.windows(5).any(|w| w == b"Host:") {
                        return; // hang up without an answer
                    }
                    // anything else: wait for more input, like an inline command without '\n'
                }
            });
        }
    });
    let c = fake(&[(6379, addr)]);
    let o = ProbeOptions {
        timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    assert_eq!(classify_port(&c, 6379, &o), PortKind::Tcp);
    assert!(
        t.elapsed() < Duration::from_millis(2700),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn classify_http_tcp_and_closed_ports() {
    let app = app();
    // A server that talks first, like SMTP or MySQL.
    let banner = TcpListener::bind("127.0.0.1:0").unwrap();
    let banner_addr = banner.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in banner.incoming().flatten() {
            let mut s = s;
            let _ = s.write_all(b"220 hello\r\n");
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    // A server that waits and answers non-HTTP, like redis.
    let quiet = TcpListener::bind("127.0.0.1:0").unwrap();
    let quiet_addr = quiet.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in quiet.incoming().flatten() {
            let mut s = s;
            let mut b = [0u8; 256];
            if s.read(&mut b).unwrap_or(0) > 0 {
                let _ = s.write_all(b"-ERR unknown command\r\n");
            }
        }
    });
    let closed = closed_addr();
    let c = fake(&[
        (80, app.addr),
        (25, banner_addr),
        (6379, quiet_addr),
        (9, closed),
    ]);
    let o = ProbeOptions {
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    assert_eq!(classify_port(&c, 80, &o), PortKind::Http);
    assert_eq!(classify_port(&c, 25, &o), PortKind::Tcp);
    assert_eq!(classify_port(&c, 6379, &o), PortKind::Tcp);
    assert_eq!(classify_port(&c, 9, &o), PortKind::Closed);
    assert_eq!(classify_port(&c, 1234, &o), PortKind::Closed);
    assert_eq!(
        run_probe(&c, &ProbeSpec::Tcp { port: 6379 }, &o)
            .outcome
            .connected,
        Some(true)
    );
    assert_eq!(
        run_probe(&c, &ProbeSpec::Tcp { port: 9 }, &o)
            .outcome
            .connected,
        Some(false)
    );
}

#[test]
fn job_exec_and_host_exec_probes() {
    let mut c = fake(&[]);
    c.stdout = b"done\n".to_vec();
    *c.exit.lock().unwrap() = Some(ExitInfo {
        code: 3,
        signal: None,
    });
    let o = ProbeOptions::default();
    let job = run_probe(&c, &ProbeSpec::Job, &o).outcome;
    assert_eq!(job.exit_code, Some(3));
    assert_eq!(job.body_digest.as_deref(), Some(digest(b"done\n").as_str()));

    let ex = run_probe(
        &c,
        &ProbeSpec::Exec {
            argv: exec_argv("echo hi there"),
        },
        &o,
    )
    .outcome;
    assert_eq!((ex.exit_code, ex.body_len), (Some(0), Some(9)));
    let missing = run_probe(
        &c,
        &ProbeSpec::Exec {
            argv: vec!["nope".into()],
        },
        &o,
    )
    .outcome;
    assert_eq!(missing.exit_code, Some(127));

    let c = fake(&[(8080, "127.0.0.1:40000".parse().unwrap())]);
    let he = run_probe(
        &c,
        &ProbeSpec::HostExec {
            command: "printf '%s' {host}:{port:8080}; exit 4".into(),
        },
        &o,
    )
    .outcome;
    assert_eq!(he.exit_code, Some(4));
    assert_eq!(
        he.body_digest.as_deref(),
        Some(digest(b"127.0.0.1:40000").as_str())
    );
    let bad = run_probe(
        &c,
        &ProbeSpec::HostExec {
            command: "echo {port:9999}".into(),
        },
        &o,
    )
    .outcome;
    assert!(bad.error.unwrap().contains("9999"));
}

#[test]
fn still_running_job_is_an_error_outcome() {
    let c = fake(&[]);
    let o = ProbeOptions {
        job_timeout: Duration::from_millis(100),
        ..Default::default()
    };
    assert!(
        run_probe(&c, &ProbeSpec::Job, &o)
            .outcome
            .error
            .unwrap()
            .contains("still running")
    );
}

#[test]
fn replay_detects_changed_status_and_body() {
    let app = app();
    let c = fake(&[(8080, app.addr)]);
    let o = ProbeOptions::default();
    let recs = crawl(&c, 8080, false, &o);
    let same = replay(&c, &recs, &o);
    assert!(
        same.iter().all(|r| r.ok()),
        "{:?}",
        same.iter().map(|r| &r.result).collect::<Vec<_>>()
    );
    *app.broken.lock().unwrap() = true;
    let after = replay(&c, &recs, &o);
    let diff = after[0].result.clone().unwrap_err();
    let fields: Vec<&str> = diff.mismatches.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, vec!["status", "header:content-type", "body"]);
    assert!(
        diff.to_string().contains("status: expected 200, got 500"),
        "{diff}"
    );
    assert!(after[1..].iter().all(|r| r.ok()));
}

#[test]
fn volatile_bodies_are_not_compared() {
    let app = app();
    let c = fake(&[(8080, app.addr)]);
    let o = ProbeOptions::default();
    let spec = ProbeSpec::Http {
        port: 8080,
        method: "GET".into(),
        path: "/time".into(),
        headers: vec![],
        body: None,
        https: false,
        expect_status: Some(200),
    };
    let mut stable = spec.clone();
    if let ProbeSpec::Http { path, .. } = &mut stable {
        *path = "/abs".into();
    }
    let mut recs = vec![run_probe(&c, &spec, &o), run_probe(&c, &stable, &o)];
    // Without the volatility mark, a page that prints a counter differs on replay.
    assert!(!replay(&c, &recs, &o)[0].ok());
    mark_volatile(&c, &mut recs, &o);
    assert_eq!(recs[0].outcome.volatile, vec!["body".to_string()]);
    assert!(recs[1].outcome.volatile.is_empty());
    assert!(replay(&c, &recs, &o).iter().all(|r| r.ok()));
    assert!(check_expectation(&spec, &recs[0].outcome).is_ok());
}

#[test]
fn compare_flags_each_field() {
    let base = ProbeOutcome {
        http_status: Some(200),
        body_digest: Some(digest(b"a")),
        body_len: Some(1),
        ..Default::default()
    };
    assert!(compare(&base, &base.clone()).is_ok());
    let other_body = ProbeOutcome {
        body_digest: Some(digest(b"b")),
        ..base.clone()
    };
    assert_eq!(
        compare(&base, &other_body).unwrap_err().mismatches[0].field,
        "body"
    );
    let failed = ProbeOutcome {
        error: Some("connection refused".into()),
        ..Default::default()
    };
    let fields: Vec<String> = compare(&base, &failed)
        .unwrap_err()
        .mismatches
        .into_iter()
        .map(|m| m.field)
        .collect();
    assert_eq!(fields, vec!["error", "status", "body"]);
    let exit = |c| ProbeOutcome {
        exit_code: Some(c),
        ..Default::default()
    };
    assert!(compare(&exit(0), &exit(1)).is_err());
    let conn = |c| ProbeOutcome {
        connected: Some(c),
        ..Default::default()
    };
    assert!(compare(&conn(true), &conn(false)).is_err());
}

#[test]
fn wait_ready_sees_port_exit_and_timeout() {
    // A port that starts listening after 300 ms.
    let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let l = TcpListener::bind(addr).unwrap();
        let mut held = Vec::new();
        for s in l.incoming().take(3).flatten() {
            held.push(s);
        }
        std::thread::sleep(Duration::from_millis(300));
    });
    let c = fake(&[(80, addr)]);
    assert_eq!(
        wait_ready(&c, &[80], Duration::from_secs(10)).unwrap(),
        Readiness::Ready
    );
    drop(t);

    let exited = fake(&[(80, "127.0.0.1:1".parse().unwrap())]);
    *exited.exit.lock().unwrap() = Some(ExitInfo {
        code: 1,
        signal: None,
    });
    assert!(
        matches!(wait_ready(&exited, &[80], Duration::from_secs(5)).unwrap(), Readiness::Exited(e) if e.code == 1)
    );

    let never = fake(&[(80, "127.0.0.1:1".parse().unwrap())]);
    let start = Instant::now();
    assert_eq!(
        wait_ready(&never, &[80], Duration::from_millis(400)).unwrap(),
        Readiness::TimedOut {
            waiting_for: vec![80]
        }
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

/// A local address where nothing listens (bound, then released).
fn closed_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A server that accepts every connection and holds it without a word (redis waiting for a
/// command, or a proxy slow to hang up).
fn silent_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

/// A docker-proxy stand-in: accepts every connection on the host side, connects to
/// `backend`, and hangs up at once when nothing listens there.
fn proxy(backend: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in l.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(up) = TcpStream::connect(backend) else {
                    return; // drops `client`: accepted, then closed
                };
                let (mut cr, mut uw) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut cr, &mut uw);
                });
                let (mut ur, mut cw) = (up, client);
                let _ = std::io::copy(&mut ur, &mut cw);
            });
        }
    });
    addr
}

#[test]
fn direct_listening_checks_behind_a_proxy() {
    // Nothing listens in the container, and the published port is held by something that
    // accepts and stays silent (a proxy slow to hang up): only the direct question can tell,
    // and every check must trust it.
    let gone = closed_addr();
    let mut c = fake(&[(80, silent_server())]);
    c.direct.insert(80, gone);
    let o = ProbeOptions {
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    assert_eq!(classify_port(&c, 80, &o), PortKind::Closed);
    assert_eq!(
        run_probe(&c, &ProbeSpec::Tcp { port: 80 }, &o)
            .outcome
            .connected,
        Some(false)
    );
    assert_eq!(
        wait_ready(&c, &[80], Duration::from_millis(300)).unwrap(),
        Readiness::TimedOut {
            waiting_for: vec![80]
        }
    );

    // A silent server (redis waits for a command) and a web app behind proxies: the direct
    // check says "listening", classification still tells HTTP from plain TCP.
    let quiet_addr = silent_server();
    let app = app();
    let mut c = fake(&[(6379, proxy(quiet_addr)), (8080, proxy(app.addr))]);
    c.direct.insert(6379, quiet_addr);
    c.direct.insert(8080, app.addr);
    assert_eq!(
        wait_ready(&c, &[6379, 8080], Duration::from_secs(5)).unwrap(),
        Readiness::Ready
    );
    assert_eq!(
        run_probe(&c, &ProbeSpec::Tcp { port: 6379 }, &o)
            .outcome
            .connected,
        Some(true)
    );
    assert_eq!(classify_port(&c, 8080, &o), PortKind::Http);
    assert_eq!(
        classify_port(
            &c,
            6379,
            &ProbeOptions {
                timeout: Duration::from_millis(500),
                ..Default::default()
            }
        ),
        // Accepts but never answers: listening is not answering (issue 8).
        PortKind::Silent
    );
}

#[test]
fn https_with_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: openssl not available");
        return;
    }
    let port = closed_addr().port();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(port.to_string())
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = fake(&[(8443, addr)]);
    let o = ProbeOptions {
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let kind = classify_port(&c, 8443, &o);
    let rec = crawl(&c, 8443, true, &ProbeOptions { crawl_max: 1, ..o });
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(kind, PortKind::Https);
    assert_eq!(
        rec[0].outcome.http_status,
        Some(200),
        "{:?}",
        rec[0].outcome
    );
    assert!(rec[0].outcome.body_len.unwrap() > 0);
}

#[test]
fn relative_redirect_is_resolved_against_the_request_path() {
    let app = app();
    let c = fake(&[(8080, app.addr)]);
    let spec = ProbeSpec::Http {
        port: 8080,
        method: "GET".into(),
        path: "/dir/rel".into(),
        headers: vec![],
        body: None,
        https: false,
        expect_status: None,
    };
    let o = run_probe(&c, &spec, &ProbeOptions::default()).outcome;
    assert_eq!(o.http_status, Some(302));
    assert_eq!(
        o.headers.get("location").map(String::as_str),
        Some("/dir/next?x=1")
    );
}

#[test]
fn volatility_across_runs_excuses_bodies_not_statuses() {
    let rec = |status, body: &[u8]| ProbeRecord {
        spec: ProbeSpec::Tcp { port: 1 },
        outcome: ProbeOutcome {
            http_status: Some(status),
            body_digest: Some(digest(body)),
            body_len: Some(body.len() as u64),
            ..Default::default()
        },
        millis: 0,
    };
    let mut recs = vec![rec(200, b"started at 10:00"), rec(200, b"same")];
    let other = vec![
        rec(200, b"started at 10:01").outcome,
        rec(500, b"same").outcome,
    ];
    mark_volatile_across(&mut recs, &other);
    assert_eq!(recs[0].outcome.volatile, vec!["body".to_string()]);
    assert!(recs[1].outcome.volatile.is_empty());
    assert!(compare(&recs[0].outcome, &rec(200, b"started at 10:02").outcome).is_ok());
    assert!(compare(&recs[1].outcome, &other[1]).is_err());
}

// ---- protocol probes against in-process fakes that answer as the real servers did.

/// Accepts connections on a fresh port and runs `serve` on each in its own thread.
fn serve_each(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let serve = serve.clone();
            std::thread::spawn(move || serve(s));
        }
    });
    addr
}

/// Redis as redis-server 7.0 answers: RESP and inline commands, `-ERR` for `GET / HTTP/1.1`,
/// a hang-up on a `Host:` line; `INFO server` with a per-process `run_id`.
fn fake_redis(version: &'static str) -> SocketAddr {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    serve_each(move |mut s| {
        let run = RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut buf = Vec::new();
        let mut b = [0u8; 1024];
        while let Ok(n) = s.read(&mut b) {
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&b[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if text.starts_with("GET ") {
                let _ = s.write_all(b"-ERR wrong number of arguments for 'get' command\r\n");
                return; // then the Host: line: hang up
            }
            if text.contains("PING\r\n") {
                let _ = s.write_all(b"+PONG\r\n");
                buf.clear();
            } else if text.contains("server\r\n") {
                let body = format!(
                    "# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\nprocess_id:{run}\r\nrun_id:{run:040}\r\nuptime_in_seconds:{run}\r\n"
                );
                let _ = s.write_all(format!("${}\r\n{body}\r\n", body.len()).as_bytes());
                buf.clear();
            }
        }
    })
}

/// PostgreSQL 15 with scram host auth: 'N' to SSLRequest, AuthenticationSASL to the startup
/// message; a request it cannot parse (HTTP) gets a silent hang-up.
fn fake_postgres() -> SocketAddr {
    serve_each(|mut s| {
        let mut ssl = [0u8; 8];
        if s.read_exact(&mut ssl).is_err() || ssl != [0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f] {
            return;
        }
        let _ = s.write_all(b"N");
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut rest = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        if s.read_exact(&mut rest).is_err() {
            return;
        }
        let _ = s.write_all(b"R\x00\x00\x00\x17\x00\x00\x00\nSCRAM-SHA-256\x00\x00");
        std::thread::sleep(Duration::from_millis(200));
    })
}

/// MariaDB 10.11: the greeting arrives on connect, with a new connection id and salt each
/// time.
fn fake_mariadb() -> SocketAddr {
    static CONN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    serve_each(|mut s| {
        let id = CONN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let salt = [id as u8 | 0x21; 20];
        let mut p = vec![0x0a];
        p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&salt[..8]);
        p.extend_from_slice(&[
            0, 0xfe, 0xf7, 45, 2, 0, 0xff, 0x81, 21, 0, 0, 0, 0, 0, 0, 0x1d, 0, 0, 0,
        ]);
        p.extend_from_slice(&salt[8..]);
        p.extend_from_slice(b"\0mysql_native_password\0");
        let mut pkt = (p.len() as u32).to_le_bytes()[..3].to_vec();
        pkt.push(0);
        pkt.extend(p);
        let _ = s.write_all(&pkt);
        std::thread::sleep(Duration::from_millis(300));
    })
}

/// RabbitMQ: `Connection.Start` to the AMQP 0-9-1 header, its own header to anything else.
fn fake_rabbitmq() -> SocketAddr {
    serve_each(|mut s| {
        let mut h = [0u8; 8];
        if s.read_exact(&mut h).is_err() {
            return;
        }
        if &h != b"AMQP\x00\x00\x09\x01" {
            let _ = s.write_all(b"AMQP\x00\x00\x09\x01");
            return;
        }
        let props: &[u8] = b"\x07productS\x00\x00\x00\x08RabbitMQ\x07versionS\x00\x00\x00\x063.10.8\x0ccluster_nameS\x00\x00\x00\x0brabbit@host";
        let mut payload = vec![0, 10, 0, 10, 0, 9];
        payload.extend((props.len() as u32).to_be_bytes());
        payload.extend_from_slice(props);
        payload.extend(b"\x00\x00\x00\x0eAMQPLAIN PLAIN\x00\x00\x00\x05en_US");
        let mut frame = vec![1, 0, 0];
        frame.extend((payload.len() as u32).to_be_bytes());
        frame.extend(payload);
        frame.push(0xce);
        let _ = s.write_all(&frame);
        std::thread::sleep(Duration::from_millis(200));
    })
}

#[test]
fn classify_database_and_broker_ports_by_what_they_answer() {
    let (redis, pg, my, amqp) = (
        fake_redis("7.0.15"),
        fake_postgres(),
        fake_mariadb(),
        fake_rabbitmq(),
    );
    // Unusual port numbers: no hint from the number, the answers decide.
    let c = fake(&[
        (7001, redis),
        (7002, pg),
        (7003, my),
        (7004, amqp),
        (6379, pg),
    ]);
    let o = ProbeOptions {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    assert_eq!(
        classify_port(&c, 7001, &o),
        PortKind::Protocol(Protocol::Redis)
    );
    assert_eq!(
        classify_port(&c, 7002, &o),
        PortKind::Protocol(Protocol::Postgres)
    );
    assert_eq!(
        classify_port(&c, 7003, &o),
        PortKind::Protocol(Protocol::Mysql)
    );
    assert_eq!(
        classify_port(&c, 7004, &o),
        PortKind::Protocol(Protocol::Amqp)
    );
    // A misleading port number: postgres on 6379 is still postgres.
    assert_eq!(
        classify_port(&c, 6379, &o),
        PortKind::Protocol(Protocol::Postgres)
    );
}

#[test]
fn protocol_probes_replay_masked_and_catch_a_different_server() {
    let o = ProbeOptions {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let original = fake(&[
        (6379, fake_redis("7.0.15")),
        (5432, fake_postgres()),
        (3306, fake_mariadb()),
        (5672, fake_rabbitmq()),
    ]);
    let specs: Vec<ProbeSpec> = [
        (6379, Protocol::Redis),
        (5432, Protocol::Postgres),
        (3306, Protocol::Mysql),
        (5672, Protocol::Amqp),
    ]
    .into_iter()
    .map(|(port, protocol)| ProbeSpec::Protocol { port, protocol })
    .collect();
    let records: Vec<ProbeRecord> = specs.iter().map(|s| run_probe(&original, s, &o)).collect();
    for r in &records {
        assert!(r.outcome.error.is_none(), "{:?}", r.outcome);
        assert!(!r.outcome.fields.is_empty(), "{:?}", r.outcome);
    }
    assert_eq!(describe(&specs[1]), "postgres :5432");
    assert!(describe_outcome(&records[3].outcome).contains("RabbitMQ 3.10.8"));
    // The same servers again (new run ids, connection ids, salts): every probe compares equal.
    let same = fake(&[
        (6379, fake_redis("7.0.15")),
        (5432, fake_postgres()),
        (3306, fake_mariadb()),
        (5672, fake_rabbitmq()),
    ]);
    for r in replay(&same, &records, &o) {
        assert!(r.ok(), "{}: {:?}", describe(&r.record.spec), r.result);
    }
    // Another redis version, and a postgres port where nothing answers: both caught.
    let other = fake(&[(6379, fake_redis("7.2.4")), (5432, closed_addr())]);
    let r = replay(&other, &records[..2], &o);
    let diff = r[0].result.as_ref().unwrap_err();
    assert_eq!(diff.mismatches[0].field, "field:redis.version");
    assert!(r[1].actual.error.is_some());
    assert!(!r[1].ok());
}
