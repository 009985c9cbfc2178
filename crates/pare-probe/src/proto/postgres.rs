//! PostgreSQL: an `SSLRequest`, then a `StartupMessage` for user and database `postgres`.
//!
//! Kept: the answer to `SSLRequest` (`N`/`S`), the authentication request type (`ok`, `md5`,
//! `sasl` with its mechanism list, …) or the error's severity and SQLSTATE, a
//! `NegotiateProtocolVersion` answer, and — when the server lets us in without a password —
//! the stable `ParameterStatus` values (`server_version`, `server_encoding`,
//! `integer_datetimes`, `standard_conforming_strings`, `DateStyle`). Masked: the MD5 salt,
//! the SCRAM nonce (never requested), `BackendKeyData` (process id and secret key), error
//! message texts (they may carry the client address or be translated).

use std::net::SocketAddr;
use std::time::Duration;

use super::{Cursor, Fields, HandshakeError, Protocol, Wire};

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// `ParameterStatus` values that do not change between starts of the same server.
const KEPT_PARAMS: [&str; 5] = [
    "server_version",
    "server_encoding",
    "integer_datetimes",
    "standard_conforming_strings",
    "DateStyle",
];
/// Most messages read after the startup message (a login that succeeds sends ~15).
const MAX_MESSAGES: usize = 64;

fn startup_message() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    for (k, v) in [
        ("user", "postgres"),
        ("database", "postgres"),
        ("application_name", "pare-probe"),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// One backend message: its type byte and body.
fn message(w: &mut Wire) -> Result<(u8, Vec<u8>), HandshakeError> {
    let head = w.take(5)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len < 4 {
        return Err(w.malformed(format!("message length {len} below 4")));
    }
    let body = w.take(len - 4)?;
    Ok((head[0], body))
}

/// `ErrorResponse` → `SEVERITY SQLSTATE` (the non-localised severity when the server sends it).
fn error_fields(body: &[u8]) -> Result<String, String> {
    let mut c = Cursor::new(body);
    let (mut severity, mut localized, mut code) = (None, None, None);
    while !c.is_empty() {
        let t = c.u8("error field type")?;
        if t == 0 {
            break;
        }
        let v = c.cstr("error field")?;
        match t {
            b'V' => severity = Some(v),
            b'S' => localized = Some(v),
            b'C' => code = Some(v),
            _ => {}
        }
    }
    let severity = severity.or(localized).unwrap_or_else(|| "?".into());
    Ok(format!("{severity} {}", code.unwrap_or_else(|| "?".into())))
}

fn auth_name(code: u32) -> String {
    match code {
        0 => "ok".into(),
        2 => "kerberos".into(),
        3 => "password".into(),
        5 => "md5".into(),
        7 => "gss".into(),
        9 => "sspi".into(),
        10 => "sasl".into(),
        n => format!("type {n}"),
    }
}

pub(super) fn handshake(
    addr: SocketAddr,
    timeout: Duration,
    fields: &mut Fields,
) -> Result<(), HandshakeError> {
    let mut w = Wire::connect(Protocol::Postgres, addr, timeout)?;
    w.send(&SSL_REQUEST)?;
    let first = w.take(1)?[0];
    match first {
        b'N' => {
            fields.insert("postgres.ssl".into(), "N".into());
        }
        b'S' => {
            // It wants TLS on this connection: ask again in plain text on a new one.
            fields.insert("postgres.ssl".into(), "S".into());
            w = Wire::connect(Protocol::Postgres, addr, timeout)?;
        }
        b'E' => {
            // A server too old for SSLRequest answers with an error right away.
            let rest = w.take(4)?;
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len < 4 {
                return Err(w.malformed("bad error length"));
            }
            let body = w.take(len - 4)?;
            let e = error_fields(&body).map_err(|m| w.malformed(m))?;
            fields.insert("postgres.error".into(), e);
            return Ok(());
        }
        other => {
            return Err(w.malformed(format!(
                "SSLRequest answered with byte 0x{other:02x}, not N or S"
            )));
        }
    }
    w.send(&startup_message())?;
    for _ in 0..MAX_MESSAGES {
        let (t, body) = message(&mut w)?;
        let mut c = Cursor::new(&body);
        let bad = |w: &Wire, m: String| w.malformed(m);
        match t {
            b'R' => {
                let code = c.u32_be("authentication type").map_err(|m| bad(&w, m))?;
                fields.insert("postgres.auth".into(), auth_name(code));
                match code {
                    0 => continue, // logged in: parameters follow
                    10 => {
                        let mut mechs = Vec::new();
                        while !c.is_empty() {
                            let m = c.cstr("SASL mechanism").map_err(|m| bad(&w, m))?;
                            if m.is_empty() {
                                break;
                            }
                            mechs.push(m);
                        }
                        fields.insert("postgres.mechanisms".into(), mechs.join(","));
                    }
                    _ => {} // md5's salt and the rest: masked
                }
                return Ok(());
            }
            b'E' => {
                let e = error_fields(&body).map_err(|m| bad(&w, m))?;
                fields.insert("postgres.error".into(), e);
                return Ok(());
            }
            b'v' => {
                let minor = c.u32_be("protocol minor version").map_err(|m| bad(&w, m))?;
                fields.insert("postgres.negotiate".into(), format!("3.{minor}"));
            }
            b'S' => {
                let name = c.cstr("parameter name").map_err(|m| bad(&w, m))?;
                let value = c.cstr("parameter value").map_err(|m| bad(&w, m))?;
                if KEPT_PARAMS.contains(&name.as_str()) {
                    fields.insert(format!("postgres.{name}"), value);
                }
            }
            b'K' | b'N' => {} // backend key (masked), notices
            b'Z' => {
                let _ = w.send(b"X\0\0\0\x04"); // Terminate
                return Ok(());
            }
            other => {
                return Err(w.malformed(format!("unexpected message type 0x{other:02x}")));
            }
        }
    }
    Err(w.malformed(format!("no end of login after {MAX_MESSAGES} messages")))
}

#[cfg(test)]
mod tests {
    use super::super::tests::serve_script;
    use super::super::{Protocol, handshake};
    use super::*;

    fn msg(t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn startup_len() -> usize {
        startup_message().len()
    }

    /// PostgreSQL 15 (Debian) with `host all all 0.0.0.0/0 scram-sha-256`: 'N' to SSL, then
    /// AuthenticationSASL listing SCRAM-SHA-256.
    #[test]
    fn scram_request() {
        let sasl = msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0");
        let a = serve_script(vec![(8, b"N".to_vec()), (startup_len(), sasl)]);
        let f = handshake(a, Protocol::Postgres, Duration::from_secs(5)).unwrap();
        assert_eq!(f["postgres.ssl"], "N");
        assert_eq!(f["postgres.auth"], "sasl");
        assert_eq!(f["postgres.mechanisms"], "SCRAM-SHA-256");
        assert!(super::super::speaks(Protocol::Postgres, &f));
    }

    #[test]
    fn md5_salt_is_masked() {
        let one = serve_script(vec![
            (8, b"N".to_vec()),
            (startup_len(), msg(b'R', b"\0\0\0\x05\x01\x02\x03\x04")),
        ]);
        let two = serve_script(vec![
            (8, b"N".to_vec()),
            (startup_len(), msg(b'R', b"\0\0\0\x05\xaa\xbb\xcc\xdd")),
        ]);
        let f1 = handshake(one, Protocol::Postgres, Duration::from_secs(5)).unwrap();
        let f2 = handshake(two, Protocol::Postgres, Duration::from_secs(5)).unwrap();
        assert_eq!(f1, f2);
        assert_eq!(f1["postgres.auth"], "md5");
    }

    /// `no pg_hba.conf entry`: FATAL 28000 (message text dropped).
    #[test]
    fn error_class() {
        let e = msg(
            b'E',
            b"SFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry for host \"172.17.0.1\", user \"postgres\"\0Fauth.c\0L543\0RClientAuthentication\0\0",
        );
        let a = serve_script(vec![(8, b"N".to_vec()), (startup_len(), e)]);
        let f = handshake(a, Protocol::Postgres, Duration::from_secs(5)).unwrap();
        assert_eq!(f["postgres.error"], "FATAL 28000");
        assert!(!f.values().any(|v| v.contains("172.17")));
    }

    /// Trust auth: AuthenticationOk, parameters, a backend key that differs per connection.
    #[test]
    fn trusted_login_keeps_parameters_masks_key() {
        let run = |key: &[u8]| {
            let mut answer = msg(b'R', b"\0\0\0\0");
            answer.extend(msg(
                b'S',
                b"server_version\x0015.8 (Debian 15.8-0+deb12u1)\0",
            ));
            answer.extend(msg(b'S', b"server_encoding\0UTF8\0"));
            answer.extend(msg(b'K', key));
            answer.extend(msg(b'Z', b"I"));
            let a = serve_script(vec![(8, b"N".to_vec()), (startup_len(), answer)]);
            handshake(a, Protocol::Postgres, Duration::from_secs(5)).unwrap()
        };
        let a = run(b"\0\0\x01\x02\xde\xad\xbe\xef");
        let b = run(b"\0\0\x09\x09\x01\x02\x03\x04");
        assert_eq!(a, b);
        assert_eq!(a["postgres.auth"], "ok");
        assert_eq!(a["postgres.server_version"], "15.8 (Debian 15.8-0+deb12u1)");
    }

    #[test]
    fn hostile_answers() {
        for (ssl, rest) in [
            (&b"X"[..], &b""[..]),
            (b"N", b"R\0\0\0\x02"),                // length below 4
            (b"N", b"R\xff\xff\xff\xff"),          // 4 GiB message
            (b"N", b"R\0\0\0\x06\0"),              // truncated auth type
            (b"N", b"E\0\0\0\x08SFAT"),            // unterminated field
            (b"N", b"R\0\0\0\x0c\0\0\0\x0aSCRAM"), // unterminated mechanism
            (b"N", b"\x01\0\0\0\x04"),             // unknown message type
            (b"E", b"\0\0\0\x02"),
        ] {
            let a = serve_script(vec![(8, ssl.to_vec()), (startup_len(), rest.to_vec())]);
            assert!(
                handshake(a, Protocol::Postgres, Duration::from_millis(500)).is_err(),
                "{ssl:?} {rest:?}"
            );
        }
    }
}
