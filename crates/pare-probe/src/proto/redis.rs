//! Redis (RESP): `PING`, then `INFO server`.
//!
//! Kept: the `PING` answer (`PONG`, or the error class such as `NOAUTH`/`DENIED`), and from
//! `INFO server` only the fields that describe the build and its mode: `redis_version`,
//! `redis_git_sha1`, `redis_mode`, `arch_bits`, `multiplexing_api`, `atomicvar_api`,
//! `executable`, `config_file`. Masked (never read): `run_id`, `process_id`, `tcp_port`,
//! uptimes, clocks, `os` (the kernel) and anything else.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Fields, HandshakeError, Protocol, Wire, text};

/// `INFO server` fields that are the same on every start of the same build.
const KEPT: [&str; 8] = [
    "redis_version",
    "redis_git_sha1",
    "redis_mode",
    "arch_bits",
    "multiplexing_api",
    "atomicvar_api",
    "executable",
    "config_file",
];

/// One RESP reply, as far as the probe cares.
enum Reply {
    Simple(String),
    Error(String),
    Bulk(Vec<u8>),
    Other(char),
}

fn reply(w: &mut Wire) -> Result<Reply, HandshakeError> {
    let line = w.line()?;
    let Some((&kind, rest)) = line.split_first() else {
        return Err(w.malformed("empty RESP reply line"));
    };
    match kind {
        b'+' => Ok(Reply::Simple(text(rest))),
        b'-' => Ok(Reply::Error(text(rest))),
        b'$' => {
            let n: i64 = std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| w.malformed(format!("bad bulk length {:?}", text(rest))))?;
            if n < 0 {
                return Ok(Reply::Bulk(Vec::new()));
            }
            let n = usize::try_from(n).map_err(|_| w.malformed("bulk length out of range"))?;
            let mut body = w.take(n.saturating_add(2))?;
            if !body.ends_with(b"\r\n") {
                return Err(w.malformed("bulk string without CRLF"));
            }
            body.truncate(n);
            Ok(Reply::Bulk(body))
        }
        b':' | b'*' | b'%' | b'~' | b'_' | b',' | b'#' | b'=' | b'(' | b'!' | b'|' | b'>' => {
            Ok(Reply::Other(kind as char))
        }
        other => Err(w.malformed(format!("not a RESP reply (starts with byte 0x{other:02x})"))),
    }
}

/// The error class of a RESP error: its first word (`ERR`, `NOAUTH`, `DENIED`…).
fn error_class(e: &str) -> String {
    e.split_whitespace().next().unwrap_or("").to_string()
}

pub(super) fn handshake(
    addr: SocketAddr,
    timeout: Duration,
    fields: &mut Fields,
) -> Result<(), HandshakeError> {
    let mut w = Wire::connect(Protocol::Redis, addr, timeout)?;
    w.send(b"*1\r\n$4\r\nPING\r\n")?;
    match reply(&mut w)? {
        Reply::Simple(s) => {
            fields.insert("redis.ping".into(), s);
        }
        Reply::Error(e) => {
            // No INFO without a login: the refusal is the answer.
            fields.insert("redis.ping".into(), format!("error {}", error_class(&e)));
            return Ok(());
        }
        Reply::Bulk(b) => {
            fields.insert("redis.ping".into(), text(&b));
        }
        Reply::Other(k) => return Err(w.malformed(format!("PING answered with a {k:?} reply"))),
    }
    w.send(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")?;
    match reply(&mut w)? {
        Reply::Bulk(info) => {
            for line in String::from_utf8_lossy(&info).lines() {
                if let Some((k, v)) = line.split_once(':') {
                    if KEPT.contains(&k) {
                        fields.insert(
                            format!("redis.{}", k.trim_start_matches("redis_")),
                            text(v.as_bytes()),
                        );
                    }
                }
            }
        }
        Reply::Error(e) => {
            fields.insert("redis.info".into(), format!("error {}", error_class(&e)));
        }
        Reply::Simple(_) | Reply::Other(_) => {
            return Err(w.malformed("INFO did not answer with a bulk string"));
        }
    }
    Ok(())
}

/// Redis' own answers to `PING`: `PONG`, or its refusals (auth required, protected mode).
pub(super) fn speaks(fields: &Fields) -> bool {
    matches!(
        fields.get("redis.ping").map(String::as_str),
        Some("PONG" | "error NOAUTH" | "error DENIED" | "error WRONGPASS" | "error LOADING")
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::serve_script;
    use super::super::{Protocol, handshake};
    use super::*;

    const PING: usize = 14;
    const INFO: usize = 26;

    /// `INFO server` as redis-server 7.0.15 (Debian bookworm) answered it.
    const INFO_SERVER: &str = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:3dfc0d3d2e8b9a35\r\nredis_mode:standalone\r\nos:Linux 6.1.0-18-amd64 x86_64\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:12.2.0\r\nprocess_id:RUNPID\r\nprocess_supervised:no\r\nrun_id:RUNID\r\ntcp_port:6379\r\nserver_time_usec:1733461234567890\r\nuptime_in_seconds:3\r\nuptime_in_days:0\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:6051234\r\nexecutable:/var/lib/redis/redis-server\r\nconfig_file:\r\nio_threads_active:0\r\n";

    fn info(pid: &str, run_id: &str) -> Vec<u8> {
        let body = INFO_SERVER.replace("RUNPID", pid).replace("RUNID", run_id);
        format!("${}\r\n{body}\r\n", body.len()).into_bytes()
    }

    #[test]
    fn ping_and_info_with_per_process_fields_masked() {
        let a = serve_script(vec![
            (PING, b"+PONG\r\n".to_vec()),
            (INFO, info("7", "a1b2")),
        ]);
        let b = serve_script(vec![
            (PING, b"+PONG\r\n".to_vec()),
            (INFO, info("99", "ffee")),
        ]);
        let fa = handshake(a, Protocol::Redis, Duration::from_secs(5)).unwrap();
        let fb = handshake(b, Protocol::Redis, Duration::from_secs(5)).unwrap();
        assert_eq!(fa, fb, "process id and run id are masked");
        assert_eq!(fa["redis.ping"], "PONG");
        assert_eq!(fa["redis.version"], "7.0.15");
        assert_eq!(fa["redis.mode"], "standalone");
        assert_eq!(fa["redis.executable"], "/var/lib/redis/redis-server");
        assert!(
            !fa.keys()
                .any(|k| k.contains("process_id") || k.contains("run_id") || k.contains("os"))
        );
        assert!(speaks(&fa));
    }

    #[test]
    fn auth_refusal_is_the_answer() {
        let a = serve_script(vec![(
            PING,
            b"-NOAUTH Authentication required.\r\n".to_vec(),
        )]);
        let f = handshake(a, Protocol::Redis, Duration::from_secs(5)).unwrap();
        assert_eq!(f["redis.ping"], "error NOAUTH");
        assert!(speaks(&f));
        let other = serve_script(vec![(PING, b"-ERR unknown command\r\n".to_vec())]);
        let f = handshake(other, Protocol::Redis, Duration::from_secs(5)).unwrap();
        assert!(
            !speaks(&f),
            "an unknown-command error is not redis' own answer"
        );
    }

    #[test]
    fn hostile_replies() {
        for answer in [
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
            b"\r\n",
            b"$99999999999999999999\r\n",
            b"$-5\r\n",
            b"+PONG\r\n$10\r\nshort",
            b"+PONG\r\n$4\r\nabcdXX",
        ] {
            let a = serve_script(vec![(PING, answer.to_vec()), (INFO, Vec::new())]);
            let r = handshake(a, Protocol::Redis, Duration::from_millis(500));
            if let Ok(f) = &r {
                // `$-5` is a null bulk string: an odd but well-formed answer to PING.
                assert_eq!(answer, b"$-5\r\n", "{f:?}");
            }
        }
    }
}
