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

mod crawl;
mod ports;
mod proto;
mod replay;
mod tls;
