//! A small HTTP/1.1 client: one request per connection (`Connection: close`), plain TCP or TLS
//! that accepts any certificate (apps under test use self-signed ones). It never follows
//! redirects: the caller decides what a `Location` means.
//!
//! Why our own client and not a crate (issue 13 item 7)? A probe is a measurement of the app,
//! not a download, and the two candidates pare already has would each bend it:
//!
//! * **hyper 1** (already in the build through bollard) is async: pare-probe is synchronous and
//!   has no runtime, so it would need tokio, hyper-util and a rustls connector plus an adapter
//!   around them — more code than this file. Its `HeaderMap` groups values by name, so the
//!   order the app sent its headers in (kept in [`Response::headers`]) is lost.
//! * **ureq 3** (a workspace dependency nothing uses) is synchronous and can be told not to
//!   follow redirects, not to turn 4xx/5xx into errors, to ignore `HTTP_PROXY`, to bound the
//!   whole call and to skip certificate checks. What it cannot give is what the probes and
//!   readiness rely on: the connect address comes from the URL, while a probe connects to
//!   whatever [`SocketAddr`] the runtime hands out (a published port on 127.0.0.1, or the
//!   container's own IP) and sends `Host: localhost:CONTAINER_PORT`
//!   ([`crate::host_header`]); and a head that is not HTTP must come back as
//!   [`ProbeError::NotHttp`] quoting the first bytes the port sent, since that text is what
//!   the probe records as its outcome. `classify_port` also needs [`speaks_tls`], which sends
//!   a bare ClientHello and reads one byte: no client crate exposes that step.
//!
//! What this file does, and what a replacement would have to do the same way: one overall
//! deadline over connect, write and every read (a trickling server cannot stretch a probe);
//! a status line of any `HTTP/1.x` (or an `HTTP/2` line on HTTP/1 framing) accepted; header
//! names lower-cased in the order received; chunked, `Content-Length` and read-to-close bodies
//! cut at [`MAX_BODY`] with [`Response::truncated`] set rather than failing; a head capped at
//! 64 KiB; no proxies, no redirects, no connection reuse, no `Accept-Encoding` of its own. The
//! framing of HTTP/1.1 responses is small and line based; TLS is rustls, as everywhere in pare.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ProbeError;

/// Most bytes of a body that are read; larger bodies are cut (the digest covers this prefix).
pub const MAX_BODY: usize = 32 << 20;
const MAX_HEAD: usize = 64 << 10;

/// One request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The method, sent as given.
    pub method: &'a str,
    /// Path and query, starting with `/`.
    pub path: &'a str,
    /// Value of the `Host` header.
    pub host: &'a str,
    /// Extra headers, sent as given (`Host` and `Connection` are the client's own).
    pub headers: &'a [(String, String)],
    /// The request body, sent with a `Content-Length`.
    pub body: Option<&'a [u8]>,
    /// Speak TLS (any certificate is accepted).
    pub https: bool,
}

/// A parsed response.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked, at most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
    /// True when the body was longer than [`MAX_BODY`] and was cut.
    pub truncated: bool,
}

impl Response {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// Sends `req` to `addr` and reads the whole response, all within `timeout`.
pub fn request(
    addr: SocketAddr,
    req: &Request<'_>,
    timeout: Duration,
) -> Result<Response, ProbeError> {
    let deadline = Instant::now() + timeout;
    let io = |e: std::io::Error| ProbeError::Io { addr, source: e };
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    tcp.set_read_timeout(Some(timeout)).map_err(io)?;
    tcp.set_write_timeout(Some(timeout)).map_err(io)?;
    let _ = tcp.set_nodelay(true);
    let mut stream: Box<dyn Stream> = if req.https {
        let conn = rustls::ClientConnection::new(tls_config(), server_name(req.host))
            .map_err(|e| ProbeError::Tls { addr, source: e })?;
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        req.method, req.path, req.host
    );
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !has("user-agent") {
        head.push_str("User-Agent: pare-probe/1\r\n");
    }
    if !has("accept") {
        head.push_str("Accept: */*\r\n");
    }
    for (n, v) in req.headers {
        if n.eq_ignore_ascii_case("host") || n.eq_ignore_ascii_case("connection") {
            continue;
        }
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n");
    if let Some(body) = req.body {
        if !has("content-length") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
    }
    head.push_str("\r\n");
    let mut wire = head.into_bytes();
    if let Some(body) = req.body {
        wire.extend_from_slice(body);
    }
    stream.write_all(&wire).map_err(io)?;
    stream.flush().map_err(io)?;

    let mut reader = BufReader::new(Deadline {
        inner: stream,
        deadline,
    });
    let resp = read_response(&mut reader, req.method.eq_ignore_ascii_case("HEAD")).map_err(
        |e| match e {
            ReadError::Io(e) => io(e),
            ReadError::Malformed(message) => ProbeError::NotHttp { addr, message },
        },
    )?;
    Ok(resp)
}

/// Stops reading once the overall deadline has passed, so a slow trickle cannot hang a probe.
struct Deadline {
    inner: Box<dyn Stream>,
    deadline: Instant,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if Instant::now() > self.deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "response took too long",
            ));
        }
        match self.inner.read(buf) {
            // A TLS peer that closes without close_notify: treat as end of stream.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            r => r,
        }
    }
}

#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    Malformed(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn read_line(r: &mut impl BufRead, budget: &mut usize) -> Result<Option<String>, ReadError> {
    let mut buf = Vec::new();
    let n = r.take(*budget as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return Err(ReadError::Malformed("response head too large".into()));
    }
    *budget -= n;
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn read_response(r: &mut impl BufRead, head_only: bool) -> Result<Response, ReadError> {
    let mut budget = MAX_HEAD;
    let status_line = read_line(r, &mut budget)?
        .ok_or_else(|| ReadError::Malformed("connection closed before a response".into()))?;
    let status = parse_status_line(&status_line).ok_or_else(|| {
        ReadError::Malformed(format!(
            "not an HTTP status line: {:?}",
            truncate(&status_line, 40)
        ))
    })?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut budget)?
            .ok_or_else(|| ReadError::Malformed("connection closed inside the headers".into()))?;
        if line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
        truncated: false,
    };
    if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(resp);
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let mut b = MAX_HEAD;
            let line = read_line(r, &mut b)?.ok_or_else(|| {
                ReadError::Malformed("connection closed inside a chunked body".into())
            })?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| {
                ReadError::Malformed(format!("bad chunk size {:?}", truncate(size_text, 20)))
            })?;
            if size == 0 {
                // Trailers, up to the empty line (or EOF).
                while let Some(l) = read_line(r, &mut b)? {
                    if l.is_empty() {
                        break;
                    }
                }
                break;
            }
            let room = MAX_BODY.saturating_sub(resp.body.len());
            let start = resp.body.len();
            let keep = size.min(room);
            resp.body.resize(start + keep, 0);
            r.read_exact(&mut resp.body[start..])?;
            if keep < size {
                resp.truncated = true;
                break;
            }
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
        }
    } else if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        let keep = (len as usize).min(MAX_BODY);
        r.take(keep as u64).read_to_end(&mut resp.body)?;
        resp.truncated = (len as usize) > MAX_BODY;
    } else {
        r.take(MAX_BODY as u64 + 1).read_to_end(&mut resp.body)?;
        if resp.body.len() > MAX_BODY {
            resp.body.truncate(MAX_BODY);
            resp.truncated = true;
        }
    }
    Ok(resp)
}

fn parse_status_line(line: &str) -> Option<u16> {
    let mut it = line.split_whitespace();
    let version = it.next()?;
    if !version.starts_with("HTTP/1.") && !version.starts_with("HTTP/2") {
        return None;
    }
    let code = it.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Whether the server at `addr` answers a TLS ClientHello with a TLS record (a handshake or an
/// alert) within `timeout`. Cheaper than a full request, and it does not wait for an HTTP
/// answer: a TLS server replies to the hello at once, while a plaintext server (redis, say)
/// just waits for a newline, so the timeout can be short.
pub fn speaks_tls(addr: SocketAddr, host: &str, timeout: Duration) -> bool {
    let Ok(mut tcp) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let _ = tcp.set_nodelay(true);
    let Ok(mut conn) = rustls::ClientConnection::new(tls_config(), server_name(host)) else {
        return false;
    };
    let mut hello = Vec::new();
    while conn.wants_write() {
        if conn.write_tls(&mut hello).is_err() {
            return false;
        }
    }
    if std::io::Write::write_all(&mut tcp, &hello).is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    // 0x16 = handshake record (ServerHello), 0x15 = alert (e.g. no common cipher): both TLS.
    matches!(std::io::Read::read(&mut tcp, &mut first), Ok(1) if first[0] == 0x16 || first[0] == 0x15)
}

fn server_name(host: &str) -> rustls::pki_types::ServerName<'static> {
    let bare = host
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(host)
        .trim_matches(['[', ']']);
    rustls::pki_types::ServerName::try_from(bare.to_string()).unwrap_or_else(|_| {
        rustls::pki_types::ServerName::try_from("localhost").expect("static name is valid")
    })
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AcceptAny(provider.clone()));
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Accepts any server certificate: the app under test is ours, run locally, and typically uses
/// a self-signed certificate. Handshake signatures are still checked so the TLS session works.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Response, ReadError> {
        read_response(&mut BufReader::new(raw), false)
    }

    #[test]
    fn content_length_body() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/html"));
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn chunked_body() {
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn body_to_eof_and_no_body_statuses() {
        assert_eq!(
            parse(b"HTTP/1.0 404 Not Found\r\n\r\ngone").unwrap().body,
            b"gone"
        );
        assert!(
            parse(b"HTTP/1.1 204 No Content\r\n\r\n")
                .unwrap()
                .body
                .is_empty()
        );
    }

    #[test]
    fn rejects_non_http() {
        assert!(matches!(
            parse(b"-ERR unknown command\r\n"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(parse(b""), Err(ReadError::Malformed(_))));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(ReadError::Malformed(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), head in proptest::prelude::any::<bool>()) {
            let _ = read_response(&mut BufReader::new(&raw[..]), head);
            let mut framed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            framed.extend_from_slice(&raw);
            let _ = read_response(&mut BufReader::new(&framed[..]), false);
        }
    }
}
