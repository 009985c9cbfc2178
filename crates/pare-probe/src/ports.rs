//! Whether a port is up and what answers on it: a connect without or through the runtime's
//! proxy, the protocol classification readiness relies on, and waiting until listed ports
//! accept.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use pare_runtime::Container;

use crate::{ExitInfo, ProbeError, ProbeOptions, Protocol, host_header, http, proto};

/// Whether the app accepts connections on container port `port` (published at `addr`): asked
/// directly when the runtime can ([`Container::listening`]: no proxy, a refusal is immediate),
/// else through the proxy with `tcp_alive`.
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
    /// HTTP/1.x in plain text.
    Http,
    /// HTTP over TLS.
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
    /// The kind [`PortKind::name`] names (as recorded in a profile), if any.
    pub fn from_name(name: &str) -> Option<PortKind> {
        Some(match name {
            "http" => PortKind::Http,
            "https" => PortKind::Https,
            "tcp" => PortKind::Tcp,
            "listening" => PortKind::Silent,
            "closed" => PortKind::Closed,
            other => PortKind::Protocol(Protocol::ALL.into_iter().find(|p| p.name() == other)?),
        })
    }

    /// Whether the port spoke a protocol readiness can recognise again (HTTP, TLS or a
    /// handshake): a replay then waits for that very answer, not for any.
    pub fn is_protocol(self) -> bool {
        matches!(
            self,
            PortKind::Http | PortKind::Https | PortKind::Protocol(_)
        )
    }

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
    classify_port_within(container, port, opts, opts.timeout)
}

/// [`classify_port`], waiting at most `first` for the first answer to the plain request (the
/// rest of the classification keeps the usual timeouts): readiness retries a silent port with
/// short attempts, so that a server still starting up is seen answering soon after it does.
pub(crate) fn classify_port_within(
    container: &dyn Container,
    port: u16,
    opts: &ProbeOptions,
    first: Duration,
) -> PortKind {
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
    let _ = s.set_read_timeout(Some(short.min(first).max(Duration::from_millis(1))));
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

/// How waiting for readiness ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// All listed ports accept (and keep) connections.
    Ready,
    /// The main process exited first.
    Exited(ExitInfo),
    /// Time ran out; the listed ports never answered.
    TimedOut {
        /// The ports that never answered.
        waiting_for: Vec<u16>,
    },
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
