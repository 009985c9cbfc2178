//! Protocol probes: just enough of the Redis, PostgreSQL, MySQL/MariaDB and AMQP 0-9-1 wire
//! protocols to get a server's own answer to a handshake, and to keep the parts of it that
//! stay the same from one connection to the next.
//!
//! Why hand-written: the client crates for these servers (redis, tokio-postgres/postgres,
//! mysql, lapin/amiquip) all drive a full login and session, pull in an async runtime or TLS
//! stack, and turn the server's first answer into an error type that hides it. A probe needs
//! the opposite: one request, the raw answer (greeting, authentication request, error class),
//! strict size and time limits, and no login. Each parser below is a few dozen lines over a
//! bounded reader; every length is checked before it is used, so a truncated, oversized or
//! garbage answer ends in a [`HandshakeError`], never a panic.
//!
//! What is kept (the outcome's `fields`) and what is masked is listed per protocol; anything
//! that changes per connection or per process — salts, connection ids, backend keys, process
//! ids, run ids, uptimes, node names — is left out, so a replay on the slim image compares
//! equal when the server behaves the same.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use pare_trace::Protocol;

mod amqp;
mod mysql;
mod postgres;
mod redis;

/// Most bytes one handshake reads from a server; longer answers are refused as malformed.
pub const MAX_ANSWER: usize = 64 * 1024;

/// What a handshake learned: stable fields, named `PROTOCOL.NAME`.
pub type Fields = BTreeMap<String, String>;

/// Why a handshake got no usable answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A socket operation failed.
    #[error("{protocol} {addr}: {op} failed")]
    Io {
        /// The protocol spoken (`redis`, `postgres`…).
        protocol: &'static str,
        /// The server's address.
        addr: SocketAddr,
        /// What was being done (`connect`, `send`, `receive`).
        op: &'static str,
        /// What the socket said.
        #[source]
        source: std::io::Error,
    },
    /// The server said nothing in time.
    #[error("{protocol} {addr}: no answer within {}ms", .waited.as_millis())]
    Timeout {
        /// The protocol spoken.
        protocol: &'static str,
        /// The server's address.
        addr: SocketAddr,
        /// How long it was waited for.
        waited: Duration,
    },
    /// The server hung up before a whole answer.
    #[error("{protocol} {addr}: the server closed the connection after {got} bytes")]
    Closed {
        /// The protocol spoken.
        protocol: &'static str,
        /// The server's address.
        addr: SocketAddr,
        /// How many bytes had arrived.
        got: usize,
    },
    /// The answer is not what the protocol sends.
    #[error("{protocol} {addr}: {what}")]
    Malformed {
        /// The protocol spoken.
        protocol: &'static str,
        /// The server's address.
        addr: SocketAddr,
        /// What was wrong with it.
        what: String,
    },
}

impl HandshakeError {
    /// The message with its cause, for a probe outcome's `error`.
    pub fn detail(&self) -> String {
        match self {
            HandshakeError::Io { source, .. } => format!("{self}: {source}"),
            _ => self.to_string(),
        }
    }
}

/// A TCP connection with one deadline for the whole handshake and a cap on what it reads.
pub(crate) struct Wire {
    stream: TcpStream,
    protocol: &'static str,
    addr: SocketAddr,
    started: Instant,
    deadline: Instant,
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Bytes received in all.
    total: usize,
}

impl Wire {
    pub(crate) fn connect(
        protocol: Protocol,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Wire, HandshakeError> {
        let protocol = protocol.name();
        let stream =
            TcpStream::connect_timeout(&addr, timeout).map_err(|source| HandshakeError::Io {
                protocol,
                addr,
                op: "connect",
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(timeout));
        let now = Instant::now();
        Ok(Wire {
            stream,
            protocol,
            addr,
            started: now,
            deadline: now + timeout,
            buf: Vec::new(),
            total: 0,
        })
    }

    pub(crate) fn malformed(&self, what: impl Into<String>) -> HandshakeError {
        HandshakeError::Malformed {
            protocol: self.protocol,
            addr: self.addr,
            what: what.into(),
        }
    }

    pub(crate) fn send(&mut self, data: &[u8]) -> Result<(), HandshakeError> {
        self.stream
            .write_all(data)
            .map_err(|source| HandshakeError::Io {
                protocol: self.protocol,
                addr: self.addr,
                op: "send",
                source,
            })
    }

    /// Reads whatever arrives next (at least one byte) into the buffer.
    fn fill(&mut self) -> Result<(), HandshakeError> {
        if self.total >= MAX_ANSWER {
            return Err(self.malformed(format!("answer longer than {MAX_ANSWER} bytes")));
        }
        let timeout_err = |w: &Wire| HandshakeError::Timeout {
            protocol: w.protocol,
            addr: w.addr,
            waited: w.started.elapsed(),
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout_err(self));
        }
        let _ = self.stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 4096];
        let room = (MAX_ANSWER - self.total).min(chunk.len());
        match self.stream.read(&mut chunk[..room]) {
            Ok(0) => Err(HandshakeError::Closed {
                protocol: self.protocol,
                addr: self.addr,
                got: self.total,
            }),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.total += n;
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(timeout_err(self))
            }
            // A reset after some bytes is the server hanging up.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                Err(HandshakeError::Closed {
                    protocol: self.protocol,
                    addr: self.addr,
                    got: self.total,
                })
            }
            Err(source) => Err(HandshakeError::Io {
                protocol: self.protocol,
                addr: self.addr,
                op: "receive",
                source,
            }),
        }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<Vec<u8>, HandshakeError> {
        if n > MAX_ANSWER {
            return Err(self.malformed(format!("announces {n} bytes (more than {MAX_ANSWER})")));
        }
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// The next line ending in `\r\n`, without it.
    pub(crate) fn line(&mut self) -> Result<Vec<u8>, HandshakeError> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return Ok(line);
            }
            self.fill()?;
        }
    }
}

/// A cursor over one received message: every read is bounds-checked and fails with the name
/// of what was missing.
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.data.len() => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => Err(format!("truncated {what}")),
        }
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.bytes(1, what)?[0])
    }

    pub(crate) fn u16_be(&mut self, what: &str) -> Result<u16, String> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u16_le(&mut self, what: &str) -> Result<u16, String> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32_be(&mut self, what: &str) -> Result<u32, String> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated string (the NUL is consumed, not returned).
    pub(crate) fn cstr(&mut self, what: &str) -> Result<String, String> {
        let rest = self.rest();
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("unterminated {what}"))?;
        let s = text(&rest[..n]);
        self.pos += n + 1;
        Ok(s)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// Server text as a field value: lossy UTF-8, control characters dropped, at most 200 chars.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

/// Talks `protocol` to `addr` and returns what the server's answer says, masked. The whole
/// exchange gets `timeout`; at most [`MAX_ANSWER`] bytes are read.
pub fn handshake(
    addr: SocketAddr,
    protocol: Protocol,
    timeout: Duration,
) -> Result<Fields, HandshakeError> {
    let mut fields = Fields::new();
    match protocol {
        Protocol::Redis => redis::handshake(addr, timeout, &mut fields)?,
        Protocol::Postgres => postgres::handshake(addr, timeout, &mut fields)?,
        Protocol::Mysql => mysql::handshake(addr, timeout, &mut fields)?,
        Protocol::Amqp => amqp::handshake(addr, timeout, &mut fields)?,
    }
    Ok(fields)
}

/// Whether a handshake's fields show the server really speaks the protocol (and is not just
/// some server that answered): redis' own `PONG` or its auth/protected-mode refusals, a
/// PostgreSQL authentication request or error, a MySQL greeting or error packet, an AMQP
/// `Connection.Start` or protocol header.
pub fn speaks(protocol: Protocol, fields: &Fields) -> bool {
    match protocol {
        Protocol::Redis => redis::speaks(fields),
        Protocol::Postgres => {
            fields.contains_key("postgres.auth") || fields.contains_key("postgres.error")
        }
        Protocol::Mysql => {
            fields.contains_key("mysql.protocol") || fields.contains_key("mysql.error")
        }
        Protocol::Amqp => fields.contains_key("amqp.version") || fields.contains_key("amqp.header"),
    }
}

/// Whether the answer says the server is up but not serving yet: PostgreSQL's `57P03`
/// ("the database system is starting up"), redis' `LOADING` (reading its dataset). Such a
/// server is asked again (see [`handshake_when_serving`]); its answer would differ from a
/// replay made a moment later.
pub fn starting(protocol: Protocol, fields: &Fields) -> bool {
    match protocol {
        Protocol::Postgres => fields
            .get("postgres.error")
            .is_some_and(|e| e.ends_with(" 57P03")),
        Protocol::Redis => fields
            .get("redis.ping")
            .is_some_and(|p| p == "error LOADING"),
        Protocol::Mysql | Protocol::Amqp => false,
    }
}

/// [`handshake`], asked again every 200 ms while the server answers that it is still
/// starting ([`starting`]), until `patience` has passed; then the last answer stands.
pub fn handshake_when_serving(
    addr: SocketAddr,
    protocol: Protocol,
    timeout: Duration,
    patience: Duration,
) -> Result<Fields, HandshakeError> {
    let deadline = Instant::now() + patience;
    loop {
        let r = handshake(addr, protocol, timeout);
        match &r {
            Ok(f) if starting(protocol, f) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            _ => return r,
        }
    }
}

/// The protocol a server's first bytes reveal, whatever was sent to it (`got` is its answer
/// to a plain HTTP request): a MySQL greeting or error packet (servers that talk first), an
/// AMQP protocol header (a broker refusing a foreign protocol), or a RESP reply (redis
/// answering an inline command). A hint: the caller confirms it with [`handshake`].
pub fn from_greeting(got: &[u8]) -> Option<Protocol> {
    if got.starts_with(b"AMQP") {
        return Some(Protocol::Amqp);
    }
    if mysql::looks_like_greeting(got) {
        return Some(Protocol::Mysql);
    }
    if matches!(got.first(), Some(b'-' | b'+')) {
        return Some(Protocol::Redis);
    }
    None
}

/// A one-line summary of a protocol outcome's fields: `redis 7.0.15`, `postgres 15.8 sasl
/// SCRAM-SHA-256`, `mysql 10.11.6-MariaDB…`, `amqp RabbitMQ 3.10.8`.
pub fn summary(fields: &Fields) -> String {
    const KEYS: [&str; 12] = [
        "redis.ping",
        "redis.version",
        "postgres.server_version",
        "postgres.auth",
        "postgres.mechanisms",
        "postgres.error",
        "mysql.version",
        "mysql.auth_plugin",
        "mysql.error",
        "amqp.product",
        "amqp.server_version",
        "amqp.header",
    ];
    KEYS.iter()
        .filter_map(|k| fields.get(*k))
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server: reads up to `expect` bytes (0: none), then writes `answer` and
    /// holds the connection for a moment.
    pub(crate) fn serve(expect: usize, answer: Vec<u8>) -> SocketAddr {
        serve_script(vec![(expect, answer)])
    }

    /// A server that, for every connection, runs the steps (read N bytes, write bytes) in
    /// order, then holds the connection for a moment.
    pub(crate) fn serve_script(steps: Vec<(usize, Vec<u8>)>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let steps = steps.clone();
                std::thread::spawn(move || {
                    let mut s = s;
                    for (expect, answer) in steps {
                        let mut got = vec![0u8; expect];
                        if s.read_exact(&mut got).is_err() {
                            return;
                        }
                        if s.write_all(&answer).is_err() {
                            return;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(300));
                });
            }
        });
        addr
    }

    /// PostgreSQL right after it binds: `FATAL 57P03` (starting up) twice, then its real
    /// answer. The probe waits it out; with no patience it records the first answer.
    #[test]
    fn a_starting_server_is_asked_again() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for (n, s) in l.incoming().flatten().enumerate() {
                let mut s = s;
                let mut ssl = [0u8; 8];
                if s.read_exact(&mut ssl).is_err() || s.write_all(b"N").is_err() {
                    continue;
                }
                let mut len = [0u8; 4];
                let _ = s.read_exact(&mut len);
                let mut rest = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
                let _ = s.read_exact(&mut rest);
                let answer: &[u8] = if n < 2 {
                    b"E\0\0\0\x21SFATAL\0VFATAL\0C57P03\0Mstart\0\0"
                } else {
                    b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"
                };
                let _ = s.write_all(answer);
            }
        });
        let t = Duration::from_secs(2);
        let first = handshake_when_serving(addr, Protocol::Postgres, t, Duration::ZERO).unwrap();
        assert_eq!(first["postgres.error"], "FATAL 57P03");
        assert!(starting(Protocol::Postgres, &first));
        let f =
            handshake_when_serving(addr, Protocol::Postgres, t, Duration::from_secs(5)).unwrap();
        assert_eq!(f["postgres.auth"], "sasl", "{f:?}");
    }

    #[test]
    fn greeting_hints() {
        assert_eq!(from_greeting(b"AMQP\0\0\x09\x01"), Some(Protocol::Amqp));
        assert_eq!(from_greeting(b"-ERR wrong number"), Some(Protocol::Redis));
        assert_eq!(
            from_greeting(b"\x5b\0\0\0\x0a10.11.6-MariaDB\0"),
            Some(Protocol::Mysql)
        );
        assert_eq!(from_greeting(b"HTTP/1.1 200 OK"), None);
        assert_eq!(from_greeting(b""), None);
        assert_eq!(from_greeting(b"220 smtp ready"), None);
    }

    #[test]
    fn answers_past_the_cap_are_refused() {
        // An endless stream of bytes without a line end.
        let addr = serve(0, vec![b'x'; MAX_ANSWER + 10]);
        let mut w = Wire::connect(Protocol::Redis, addr, Duration::from_secs(5)).unwrap();
        let e = w.line().unwrap_err();
        assert!(matches!(e, HandshakeError::Malformed { .. }), "{e}");
        let mut w = Wire::connect(Protocol::Redis, addr, Duration::from_secs(5)).unwrap();
        assert!(matches!(
            w.take(MAX_ANSWER + 1).unwrap_err(),
            HandshakeError::Malformed { .. }
        ));
    }

    #[test]
    fn silence_times_out_within_the_limit() {
        let addr = serve(1_000_000, vec![]);
        let t = Instant::now();
        for p in Protocol::ALL {
            let e = handshake(addr, p, Duration::from_millis(200)).unwrap_err();
            assert!(matches!(e, HandshakeError::Timeout { .. }), "{p:?}: {e}");
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn hang_ups_are_closed_errors() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                drop(s);
            }
        });
        for p in Protocol::ALL {
            let e = handshake(addr, p, Duration::from_secs(2)).unwrap_err();
            assert!(
                matches!(e, HandshakeError::Closed { .. } | HandshakeError::Io { .. }),
                "{p:?}: {e}"
            );
        }
    }

    #[test]
    fn refused_is_an_io_error() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = handshake(addr, Protocol::Mysql, Duration::from_secs(1)).unwrap_err();
        assert!(e.detail().contains("connect failed"), "{}", e.detail());
    }
}
