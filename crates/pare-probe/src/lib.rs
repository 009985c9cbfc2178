//! HTTP/TCP/exec probes and their recorded answers.
//!
//! Probes reach the app through a [`Container`] (host-side endpoints for container ports, and
//! `exec`), so they work the same with every runtime. Each probe yields a [`ProbeOutcome`] that
//! keeps only stable facts (status, `content-type`, `location` with the origin stripped, body
//! digest and length, exit code, stdout digest), so that replaying the probes against a slim
//! image compares equal when the app behaves the same. Requests send `Host: localhost:PORT`
//! with the *container* port, so absolute links an app builds from `Host` do not depend on the
//! random host port a runtime picked.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pare_runtime::{Container, RuntimeError};
pub use pare_trace::{ExitInfo, ProbeOutcome, ProbeRecord, ProbeSpec, Protocol};
use sha2::{Digest, Sha256};

pub mod http;
pub mod links;
pub mod proto;
mod ready;
mod spec;

pub use ready::{Activity, ReadyPlan, ReadyReport, ReadySign, describe_exit, wait_until_ready};

pub use spec::{HttpFlag, exec_argv, parse_http_flag, parse_probe_file, parse_probes};

/// Errors of the probe machinery (a probe that gets a bad answer is not an error: it is
/// recorded in its outcome).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: TLS: {message}")]
    Tls { addr: SocketAddr, message: String },
    #[error("{addr}: not an HTTP answer: {message}")]
    NotHttp { addr: SocketAddr, message: String },
    #[error("container port {port} is not published by the runtime")]
    NoEndpoint { port: u16 },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error("--http-probe {flag:?}: {message}")]
    Flag { flag: String, message: String },
    #[error("host command {command:?}: {message}")]
    HostExec { command: String, message: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Limits for probing.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Per request / per command.
    pub timeout: Duration,
    /// How many link levels below `/` the crawl follows.
    pub crawl_depth: usize,
    /// Most requests one crawl makes (per port).
    pub crawl_max: usize,
    /// How long a job may run before it counts as hung.
    pub job_timeout: Duration,
    /// Told which probe runs (or that a job's exit is awaited).
    pub progress: pare_progress::Reporter,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_secs(10),
            crawl_depth: 3,
            crawl_max: 50,
            job_timeout: Duration::from_secs(60),
            progress: pare_progress::Reporter::default(),
        }
    }
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The `Host` header sent to container port `port`.
pub fn host_header(port: u16, https: bool) -> String {
    if (port == 80 && !https) || (port == 443 && https) {
        "localhost".into()
    } else {
        format!("localhost:{port}")
    }
}

/// Authorities that count as the app's own origin for container port `port` reached at `addr`.
fn origins(port: u16, https: bool, addr: SocketAddr) -> Vec<String> {
    let mut v = vec![
        host_header(port, https),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        addr.to_string(),
    ];
    if (port == 80 && !https) || (port == 443 && https) {
        v.push("127.0.0.1".into());
    }
    v
}

/// Headers kept in outcomes: they decide what a client does with the answer.
const KEPT_HEADERS: [&str; 3] = ["content-type", "location", "content-encoding"];

fn http_outcome(
    resp: &http::Response,
    path: &str,
    port: u16,
    https: bool,
    addr: SocketAddr,
) -> ProbeOutcome {
    let mut headers = BTreeMap::new();
    for name in KEPT_HEADERS {
        if let Some(v) = resp.header(name) {
            let v = if name == "location" {
                // Strip our own origin so the host port chosen by the runtime does not matter;
                // relative targets are resolved against the request path.
                links::resolve(path, v, https, &origins(port, https, addr))
                    .unwrap_or_else(|| v.to_string())
            } else {
                v.trim().to_string()
            };
            headers.insert(name.to_string(), v);
        }
    }
    ProbeOutcome {
        http_status: Some(resp.status),
        headers,
        body_digest: Some(digest(&resp.body)),
        body_len: Some(resp.body.len() as u64),
        ..Default::default()
    }
}

fn error_outcome(e: impl std::fmt::Display) -> ProbeOutcome {
    ProbeOutcome {
        error: Some(e.to_string()),
        ..Default::default()
    }
}

fn endpoint(container: &dyn Container, port: u16) -> Result<SocketAddr, ProbeError> {
    container
        .endpoint(port)
        .ok_or(ProbeError::NoEndpoint { port })
}

/// Runs one HTTP request described by an `Http` spec and returns the raw response too.
fn http_probe(
    container: &dyn Container,
    spec: &ProbeSpec,
    opts: &ProbeOptions,
) -> (ProbeOutcome, Option<http::Response>) {
    let ProbeSpec::Http {
        port,
        method,
        path,
        headers,
        body,
        https,
        ..
    } = spec
    else {
        return (error_outcome("not an HTTP probe"), None);
    };
    let addr = match endpoint(container, *port) {
        Ok(a) => a,
        Err(e) => return (error_outcome(e), None),
    };
    let host = host_header(*port, *https);
    let req = http::Request {
        method,
        path,
        host: &host,
        headers,
        body: body.as_deref().map(str::as_bytes),
        https: *https,
    };
    match http::request(addr, &req, opts.timeout) {
        Ok(resp) => (http_outcome(&resp, path, *port, *https, addr), Some(resp)),
        Err(e) => (error_outcome(e), None),
    }
}

/// Runs one probe and records its outcome. Never fails: problems land in `outcome.error`.
pub fn run_probe(container: &dyn Container, spec: &ProbeSpec, opts: &ProbeOptions) -> ProbeRecord {
    use pare_progress::Progress;
    opts.progress.waiting(&match spec {
        ProbeSpec::Job => "the job to exit".to_string(),
        other => format!("the probe {}", describe(other)),
    });
    let start = Instant::now();
    let outcome = match spec {
        ProbeSpec::Http { .. } => http_probe(container, spec, opts).0,
        ProbeSpec::Tcp { port } => match endpoint(container, *port) {
            Ok(addr) => ProbeOutcome {
                connected: Some(port_alive(container, *port, addr, opts.timeout)),
                ..Default::default()
            },
            Err(e) => error_outcome(e),
        },
        ProbeSpec::Exec { argv } => match container.exec(argv, opts.timeout) {
            Ok(out) => ProbeOutcome {
                exit_code: Some(out.exit_code),
                body_digest: Some(digest(&out.stdout)),
                body_len: Some(out.stdout.len() as u64),
                ..Default::default()
            },
            Err(e) => error_outcome(e),
        },
        ProbeSpec::HostExec { command } => match host_exec(container, command, opts.timeout) {
            Ok((code, stdout)) => ProbeOutcome {
                exit_code: Some(code),
                body_digest: Some(digest(&stdout)),
                body_len: Some(stdout.len() as u64),
                ..Default::default()
            },
            Err(e) => error_outcome(e),
        },
        ProbeSpec::Job => job_outcome(container, opts.job_timeout),
        ProbeSpec::Protocol { port, protocol } => {
            protocol_outcome(container, *port, *protocol, opts)
        }
    };
    ProbeRecord {
        spec: spec.clone(),
        outcome,
        millis: start.elapsed().as_millis() as u64,
    }
}

/// Waits for the container's own process to finish and records its exit code and stdout.
fn job_outcome(container: &dyn Container, timeout: Duration) -> ProbeOutcome {
    match container.wait(timeout) {
        Ok(Some(exit)) => {
            let stdout = container.logs().map(|(o, _)| o).unwrap_or_default();
            ProbeOutcome {
                exit_code: Some(exit.code),
                body_digest: Some(digest(&stdout)),
                body_len: Some(stdout.len() as u64),
                ..Default::default()
            }
        }
        Ok(None) => error_outcome(format!("still running after {}s", timeout.as_secs())),
        Err(e) => error_outcome(e),
    }
}

/// Talks `protocol` to container port `port` and records the server's masked answer.
fn protocol_outcome(
    container: &dyn Container,
    port: u16,
    protocol: Protocol,
    opts: &ProbeOptions,
) -> ProbeOutcome {
    let addr = match endpoint(container, port) {
        Ok(a) => a,
        Err(e) => return error_outcome(e),
    };
    // A server that says it is still starting gets asked again (for up to the probe timeout),
    // so the outcome is its answer once it serves, whenever the probe happened to run.
    match proto::handshake_when_serving(addr, protocol, opts.timeout, opts.timeout) {
        Ok(fields) => ProbeOutcome {
            fields,
            ..Default::default()
        },
        Err(e) => error_outcome(e.detail()),
    }
}

/// Whether the app accepts connections on container port `port` (published at `addr`): asked
/// directly when the runtime can ([`Container::listening`]: no proxy, a refusal is immediate),
/// else through the proxy with [`tcp_alive`].
pub fn port_alive(
    container: &dyn Container,
    port: u16,
    addr: SocketAddr,
    timeout: Duration,
) -> bool {
    container
        .listening(port)
        .unwrap_or_else(|| tcp_alive(addr, timeout))
}

/// Whether a TCP connection to `addr` is accepted *and kept* by the app. A proxy in front of
/// the container (docker's userland proxy) accepts and then closes at once when nothing
/// listens inside; that counts as not alive.
fn tcp_alive(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(250)));
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// What speaks on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    Http,
    Https,
    /// A database or broker whose handshake answered (see [`proto`]).
    Protocol(Protocol),
    /// Accepts connections but does not answer HTTP.
    Tcp,
    /// Accepts connections and says nothing back within the timeout (not even a hang-up): a
    /// server that waits for the client to speak first, or one still starting up.
    Silent,
    /// Nothing listens (or the runtime did not publish it).
    Closed,
}

impl PortKind {
    /// Whether the port answered something (readiness: its protocol is up).
    pub fn answers(self) -> bool {
        matches!(
            self,
            PortKind::Http | PortKind::Https | PortKind::Protocol(_) | PortKind::Tcp
        )
    }

    /// `http`, `https`, the protocol (`redis`…), `tcp`, `listening`, `closed`.
    pub fn name(self) -> &'static str {
        match self {
            PortKind::Http => "http",
            PortKind::Https => "https",
            PortKind::Protocol(p) => p.name(),
            PortKind::Tcp => "tcp",
            PortKind::Silent => "listening",
            PortKind::Closed => "closed",
        }
    }
}

/// Finds out what listens on container port `port` with one plain HTTP request: an HTTP
/// status line means HTTP; a MySQL greeting, an AMQP protocol header or a redis `-ERR`
/// means that protocol once its handshake confirms it; a TLS record or a dropped connection
/// means "try HTTPS", then the PostgreSQL handshake (it hangs up on HTTP without a word);
/// silence means "try the handshake the port number suggests" (6379 redis, 5432 postgres,
/// 3306 mysql, 5672 amqp); anything else (an SMTP banner…) means plain TCP. There is no
/// separate wait for a banner first: that cost every HTTP app 300 ms and tells nothing the
/// answer to the request does not. Readiness can call this too: a protocol port counts as
/// ready once it classifies as that protocol.
pub fn classify_port(container: &dyn Container, port: u16, opts: &ProbeOptions) -> PortKind {
    let Some(addr) = container.endpoint(port) else {
        return PortKind::Closed;
    };
    let short = opts.timeout.min(Duration::from_secs(5));
    // Nothing listening answers the request below with a hang-up, like a TLS server might:
    // rule that out first (at once when the runtime can ask directly).
    if !port_alive(container, port, addr, short) {
        return PortKind::Closed;
    }
    let Ok(mut s) = TcpStream::connect_timeout(&addr, short) else {
        return PortKind::Closed;
    };
    let _ = s.set_read_timeout(Some(short));
    let host = host_header(port, false);
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: pare-probe/1\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if std::io::Write::write_all(&mut s, req.as_bytes()).is_err() {
        return PortKind::Tcp;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    while got.len() < 5 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Silent: only the protocol the port number suggests is worth a try; a server
                // that accepted and said nothing at all is "listening", not answering.
                let fallback = if got.is_empty() {
                    PortKind::Silent
                } else {
                    PortKind::Tcp
                };
                return by_handshake(addr, Protocol::for_port(port).into_iter(), fallback);
            }
            Err(_) => break,
        }
    }
    drop(s);
    if got.starts_with(b"HTTP/") {
        return PortKind::Http;
    }
    // A greeting (MySQL), a refusal naming the protocol (AMQP) or a RESP error (redis).
    if let Some(p) = proto::from_greeting(&got) {
        if let kind @ PortKind::Protocol(_) = by_handshake(addr, [p].into_iter(), PortKind::Tcp) {
            return kind;
        }
    }
    // 0x15 = TLS alert, 0x16 = handshake: a TLS server that got plaintext. An empty answer may
    // be a TLS server that just hung up.
    if got.is_empty() || got[0] == 0x15 || got[0] == 0x16 {
        let host = host_header(port, true);
        let req = http::Request {
            method: "GET",
            path: "/",
            host: &host,
            headers: &[],
            body: None,
            https: true,
        };
        // A TLS server answers a ClientHello within milliseconds; don't wait long on servers
        // that merely hung up on the plaintext request (redis closes on a `Host:` line and then
        // waits forever for a newline after a ClientHello).
        if http::speaks_tls(addr, &host, short.min(Duration::from_millis(750)))
            && http::request(addr, &req, short).is_ok()
        {
            return PortKind::Https;
        }
        // PostgreSQL hangs up without a word on a request it cannot parse: try its handshake
        // (after the one the port number suggests).
        let hint = Protocol::for_port(port);
        let tries = hint
            .into_iter()
            .chain(Some(Protocol::Postgres).filter(|p| hint != Some(*p)));
        return by_handshake(addr, tries, PortKind::Tcp);
    }
    PortKind::Tcp
}

/// How long one handshake may take while classifying a port: real servers answer within
/// milliseconds, and a port that is not the protocol should not cost much.
const CLASSIFY_HANDSHAKE: Duration = Duration::from_millis(600);

/// The first of `tries` whose handshake shows the server speaks it, else `otherwise`.
fn by_handshake(
    addr: SocketAddr,
    tries: impl Iterator<Item = Protocol>,
    otherwise: PortKind,
) -> PortKind {
    for p in tries {
        if let Ok(fields) = proto::handshake(addr, p, CLASSIFY_HANDSHAKE) {
            if proto::speaks(p, &fields) {
                return PortKind::Protocol(p);
            }
        }
    }
    otherwise
}

/// Crawls the app on container port `port` from `/`: GET each page, follow same-origin
/// `href`/`src` links of HTML pages, `url()`/`@import` of stylesheets and same-origin redirects, breadth first, up to
/// `opts.crawl_depth` levels and `opts.crawl_max` requests.
pub fn crawl(
    container: &dyn Container,
    port: u16,
    https: bool,
    opts: &ProbeOptions,
) -> Vec<ProbeRecord> {
    let mut out = Vec::new();
    let Some(addr) = container.endpoint(port) else {
        return vec![ProbeRecord {
            spec: get_spec(port, "/", https),
            outcome: error_outcome(ProbeError::NoEndpoint { port }),
            millis: 0,
        }];
    };
    let origins = origins(port, https, addr);
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([("/".to_string(), 0usize)]);
    seen.insert("/".to_string());
    while let Some((path, depth)) = queue.pop_front() {
        if out.len() >= opts.crawl_max {
            break;
        }
        let spec = get_spec(port, &path, https);
        let start = Instant::now();
        let (outcome, resp) = http_probe(container, &spec, opts);
        out.push(ProbeRecord {
            spec,
            outcome,
            millis: start.elapsed().as_millis() as u64,
        });
        let Some(resp) = resp else { continue };
        if depth >= opts.crawl_depth {
            continue;
        }
        let mut found = Vec::new();
        if let Some(loc) = resp.header("location") {
            found.push(loc.to_string());
        }
        let is_html = resp
            .header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().contains("html"));
        let is_css = resp
            .header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().contains("text/css"));
        if is_html {
            found.extend(links::extract_links(&String::from_utf8_lossy(&resp.body)));
        } else if is_css {
            found.extend(links::extract_css_urls(&String::from_utf8_lossy(
                &resp.body,
            )));
        }
        for link in found {
            if let Some(p) = links::resolve(&path, &link, https, &origins) {
                if seen.insert(p.clone()) {
                    queue.push_back((p, depth + 1));
                }
            }
        }
    }
    out
}

fn get_spec(port: u16, path: &str, https: bool) -> ProbeSpec {
    ProbeSpec::Http {
        port,
        method: "GET".into(),
        path: path.into(),
        headers: Vec::new(),
        body: None,
        https,
        expect_status: None,
    }
}

/// How waiting for readiness ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// All listed ports accept (and keep) connections.
    Ready,
    /// The main process exited first.
    Exited(ExitInfo),
    /// Time ran out; the listed ports never answered.
    TimedOut { waiting_for: Vec<u16> },
}

/// Ports as `8080, 8443`.
pub fn port_list(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Readiness::Ready => write!(f, "ready"),
            Readiness::Exited(e) => write!(f, "the app exited with {} first", e.code),
            Readiness::TimedOut { waiting_for } => {
                write!(f, "port {} did not answer in time", port_list(waiting_for))
            }
        }
    }
}

/// Polls until every port in `ports` accepts connections, or the container exits, or
/// `timeout` passes. With no ports it returns `Ready` at once.
pub fn wait_ready(
    container: &dyn Container,
    ports: &[u16],
    timeout: Duration,
) -> Result<Readiness, ProbeError> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<u16> = ports.to_vec();
    // A direct check costs well under a millisecond, a check through the proxy 250 ms: poll
    // often at first (most apps are up within a second), then back off.
    let mut pause = Duration::from_millis(20);
    loop {
        pending.retain(|p| {
            !container
                .endpoint(*p)
                .is_some_and(|a| port_alive(container, *p, a, Duration::from_secs(1)))
        });
        if pending.is_empty() {
            return Ok(Readiness::Ready);
        }
        if let Some(exit) = container.wait(Duration::ZERO)? {
            return Ok(Readiness::Exited(exit));
        }
        if Instant::now() >= deadline {
            return Ok(Readiness::TimedOut {
                waiting_for: pending,
            });
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 3 / 2).min(Duration::from_millis(400));
    }
}

/// Runs a host command (`sh -c`) with `{host}` and `{port:N}` replaced by the endpoint of
/// container port N. Returns its exit code and stdout.
pub fn host_exec(
    container: &dyn Container,
    command: &str,
    timeout: Duration,
) -> Result<(i32, Vec<u8>), ProbeError> {
    let expanded = expand_host_command(command, &|p| container.endpoint(p))?;
    let err = |message: String| ProbeError::HostExec {
        command: command.to_string(),
        message,
    };
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(&expanded)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(http::MAX_BODY as u64).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(|e| err(e.to_string()))? {
            Some(st) => break st,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!("timed out after {}s", timeout.as_secs())));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let out = reader.join().unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok((code, out))
}

/// Replaces `{host}` with the IP of the endpoints (that of the first `{port:N}` named, else
/// `127.0.0.1`) and `{port:N}` with the host port of container port N. Other braces are kept.
pub fn expand_host_command(
    command: &str,
    endpoint: &dyn Fn(u16) -> Option<SocketAddr>,
) -> Result<String, ProbeError> {
    enum Tok<'a> {
        Text(&'a str),
        Host,
        Port(u16),
    }
    let mut toks = Vec::new();
    let mut rest = command;
    while let Some(i) = rest.find('{') {
        toks.push(Tok::Text(&rest[..i]));
        let tail = &rest[i..];
        let Some(end) = tail.find('}') else {
            rest = tail;
            break;
        };
        let token = &tail[1..end];
        if token == "host" {
            toks.push(Tok::Host);
        } else if let Some(n) = token.strip_prefix("port:") {
            let port: u16 = n.trim().parse().map_err(|_| ProbeError::HostExec {
                command: command.into(),
                message: format!("bad placeholder {{{token}}}"),
            })?;
            toks.push(Tok::Port(port));
        } else {
            toks.push(Tok::Text(&tail[..=end]));
        }
        rest = &tail[end + 1..];
    }
    toks.push(Tok::Text(rest));
    let mut ports = BTreeMap::new();
    let mut host = None;
    for t in &toks {
        if let Tok::Port(p) = t {
            let addr = endpoint(*p).ok_or(ProbeError::NoEndpoint { port: *p })?;
            host.get_or_insert_with(|| addr.ip().to_string());
            ports.insert(*p, addr.port());
        }
    }
    let host = host.unwrap_or_else(|| "127.0.0.1".into());
    let mut out = String::new();
    for t in toks {
        match t {
            Tok::Text(s) => out.push_str(s),
            Tok::Host => out.push_str(&host),
            Tok::Port(p) => out.push_str(&ports.get(&p).copied().unwrap_or(p).to_string()),
        }
    }
    Ok(out)
}

/// Re-runs idempotent probes (GET/HEAD HTTP requests) once and marks the fields that changed
/// as volatile, so that replays do not flag a page that prints the time.
pub fn mark_volatile(container: &dyn Container, records: &mut [ProbeRecord], opts: &ProbeOptions) {
    for rec in records.iter_mut() {
        let idempotent = matches!(&rec.spec, ProbeSpec::Http { method, .. } if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD"));
        if !idempotent || rec.outcome.error.is_some() {
            continue;
        }
        let again = http_probe(container, &rec.spec, opts).0;
        let mut volatile = Vec::new();
        if again.body_digest != rec.outcome.body_digest {
            volatile.push("body".to_string());
        }
        for (name, v) in &rec.outcome.headers {
            if again.headers.get(name) != Some(v) {
                volatile.push(format!("header:{name}"));
            }
        }
        rec.outcome.volatile = volatile;
    }
}

/// Whether a differing field may be excused as volatile (it legitimately changes between two
/// runs of the same image): the body and kept headers. Status, exit code, connectivity and
/// errors never are.
pub fn may_be_volatile(field: &str) -> bool {
    field == "body" || field.starts_with("header:")
}

/// Marks as volatile the fields that differ between `records` and the outcomes of the same
/// probes in another run of the same image (`other[i]` answers `records[i]`). Some answers
/// are stable within one container but not across containers — a page showing the start time
/// or the hostname — and only a second run can tell. A verifier can replay the recorded
/// probes against a fresh run of the original image, call this, then compare the candidate.
pub fn mark_volatile_across(records: &mut [ProbeRecord], other: &[ProbeOutcome]) {
    for (rec, again) in records.iter_mut().zip(other) {
        let Err(diff) = compare(&rec.outcome, again) else {
            continue;
        };
        for m in diff.mismatches {
            if may_be_volatile(&m.field) && !rec.outcome.volatile.contains(&m.field) {
                rec.outcome.volatile.push(m.field);
            }
        }
    }
}

/// One field that differs between a recorded outcome and a replayed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `status`, `header:content-type`, `body`, `exit_code`, `connected` or `error`.
    pub field: String,
    pub expected: String,
    pub actual: String,
}

/// Why two outcomes are not equivalent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.mismatches.iter().map(|m| format!("{}: expected {}, got {}", m.field, m.expected, m.actual)).collect::<Vec<_>>().join("; "))]
pub struct Difference {
    pub mismatches: Vec<Mismatch>,
}

fn show<T: std::fmt::Debug>(v: &Option<T>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "nothing".into(),
    }
}

/// Compares a replayed outcome with the recorded one. Compared: HTTP status, the kept
/// headers, body digest and length (unless recorded as volatile), exit code, TCP
/// connectivity, the fields of a protocol handshake (`field:NAME`), and whether the probe could run at all. Timing is never compared.
pub fn compare(expected: &ProbeOutcome, actual: &ProbeOutcome) -> Result<(), Difference> {
    let mut m = Vec::new();
    let mut diff = |field: &str, e: String, a: String| {
        m.push(Mismatch {
            field: field.into(),
            expected: e,
            actual: a,
        })
    };
    match (&expected.error, &actual.error) {
        (None, Some(a)) => diff("error", "no error".into(), format!("{a:?}")),
        (Some(e), None) => diff("error", format!("{e:?}"), "no error".into()),
        _ => {}
    }
    if expected.http_status != actual.http_status {
        diff(
            "status",
            show(&expected.http_status),
            show(&actual.http_status),
        );
    }
    let volatile = |f: &str| expected.volatile.iter().any(|v| v == f);
    let names: BTreeSet<&String> = expected
        .headers
        .keys()
        .chain(actual.headers.keys())
        .collect();
    for name in names {
        let field = format!("header:{name}");
        if volatile(&field) {
            continue;
        }
        let (e, a) = (expected.headers.get(name), actual.headers.get(name));
        if e != a {
            diff(&field, show(&e), show(&a));
        }
    }
    if !volatile("body")
        && (expected.body_digest != actual.body_digest || expected.body_len != actual.body_len)
    {
        let fmt = |d: &Option<String>, l: &Option<u64>| match (d, l) {
            (Some(d), Some(l)) => format!("{d} ({l} bytes)"),
            (Some(d), None) => d.clone(),
            _ => "nothing".into(),
        };
        diff(
            "body",
            fmt(&expected.body_digest, &expected.body_len),
            fmt(&actual.body_digest, &actual.body_len),
        );
    }
    if expected.exit_code != actual.exit_code {
        diff(
            "exit_code",
            show(&expected.exit_code),
            show(&actual.exit_code),
        );
    }
    let names: BTreeSet<&String> = expected.fields.keys().chain(actual.fields.keys()).collect();
    for name in names {
        let (e, a) = (expected.fields.get(name), actual.fields.get(name));
        if e != a {
            diff(&format!("field:{name}"), show(&e), show(&a));
        }
    }
    if expected.connected != actual.connected {
        diff(
            "connected",
            show(&expected.connected),
            show(&actual.connected),
        );
    }
    if m.is_empty() {
        Ok(())
    } else {
        Err(Difference { mismatches: m })
    }
}

/// Checks a spec's own expectation (`expect_status`) against an outcome.
pub fn check_expectation(spec: &ProbeSpec, outcome: &ProbeOutcome) -> Result<(), Difference> {
    if let ProbeSpec::Http {
        expect_status: Some(want),
        ..
    } = spec
    {
        if outcome.http_status != Some(*want) {
            return Err(Difference {
                mismatches: vec![Mismatch {
                    field: "status".into(),
                    expected: want.to_string(),
                    actual: show(&outcome.http_status),
                }],
            });
        }
    }
    Ok(())
}

/// One replayed probe.
#[derive(Debug, Clone)]
pub struct Replay {
    pub record: ProbeRecord,
    pub actual: ProbeOutcome,
    pub result: Result<(), Difference>,
}

impl Replay {
    pub fn ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// Runs the recorded probes again against `container` (in order; a `Job` record waits for the
/// exit) and compares each outcome with the recorded one.
pub fn replay(
    container: &dyn Container,
    records: &[ProbeRecord],
    opts: &ProbeOptions,
) -> Vec<Replay> {
    records
        .iter()
        .map(|rec| {
            let actual = run_probe(container, &rec.spec, opts).outcome;
            let result = compare(&rec.outcome, &actual);
            Replay {
                record: rec.clone(),
                actual,
                result,
            }
        })
        .collect()
}

/// A short one-line description of a probe, for summaries: `GET :8080/second`, `tcp :6379`.
pub fn describe(spec: &ProbeSpec) -> String {
    match spec {
        ProbeSpec::Http {
            port,
            method,
            path,
            https,
            ..
        } => {
            format!(
                "{method} {}:{port}{path}",
                if *https { "https" } else { "http" }
            )
        }
        ProbeSpec::Tcp { port } => format!("tcp :{port}"),
        ProbeSpec::Exec { argv } => format!("exec {}", argv.join(" ")),
        ProbeSpec::HostExec { command } => format!("host-exec {command}"),
        ProbeSpec::Job => "job (run to completion)".into(),
        ProbeSpec::Protocol { port, protocol } => format!("{} :{port}", protocol.name()),
    }
}

/// A short description of an outcome: `200 text/html 1234 B`, `connected`, `exit 0`.
pub fn describe_outcome(o: &ProbeOutcome) -> String {
    if let Some(e) = &o.error {
        return format!("error: {e}");
    }
    let mut parts = Vec::new();
    if let Some(s) = o.http_status {
        parts.push(s.to_string());
    }
    if let Some(ct) = o.headers.get("content-type") {
        parts.push(ct.split(';').next().unwrap_or(ct).to_string());
    }
    if let Some(l) = o.headers.get("location") {
        parts.push(format!("-> {l}"));
    }
    if let Some(c) = o.exit_code {
        parts.push(format!("exit {c}"));
    }
    if let Some(c) = o.connected {
        parts.push(if c {
            "connected".into()
        } else {
            "refused".into()
        });
    }
    if let Some(n) = o.body_len {
        parts.push(format!("{n} B"));
    }
    if !o.fields.is_empty() {
        parts.push(proto::summary(&o.fields));
    }
    parts.join(" ")
}

/// Reads a probe file (YAML or JSON). See [`parse_probes`] for the format.
pub fn read_probe_file(path: &Path) -> Result<Vec<ProbeSpec>, ProbeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProbeError::File {
        path: path.into(),
        source: e,
    })?;
    parse_probe_file(&text, path)
}

#[cfg(test)]
mod readiness_text {
    use super::*;

    #[test]
    fn readiness_reads_as_a_sentence() {
        let t = Readiness::TimedOut {
            waiting_for: vec![8080, 8443],
        }
        .to_string();
        assert_eq!(t, "port 8080, 8443 did not answer in time");
        assert!(!t.contains('{') && !t.contains('['));
    }
}
