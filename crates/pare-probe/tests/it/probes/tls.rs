//! HTTPS with a self-signed certificate and relative redirects.

use super::*;

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
