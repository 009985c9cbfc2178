//! Classifying ports, job and exec probes, waiting for readiness, listening checks.

use super::*;

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
