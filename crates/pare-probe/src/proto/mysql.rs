//! MySQL/MariaDB: the server speaks first with its initial handshake packet (protocol 10),
//! or an error packet when it refuses the client (too many connections, host not allowed).
//!
//! Kept: the protocol version, the server version (whole and major), the capability flags
//! (MariaDB's extended ones too), the default character set, the status flags and the auth
//! plugin name; for an error packet its code and SQLSTATE. Masked: the connection id and
//! both parts of the auth salt.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Cursor, Fields, HandshakeError, Protocol, Wire, text};

const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
/// Bit 0 (CLIENT_MYSQL / CLIENT_LONG_PASSWORD) unset means a MariaDB server that puts its
/// extended capabilities in the last 4 reserved bytes.
const CLIENT_MYSQL: u32 = 1;

/// Whether `got` starts like a MySQL packet from the server: a 3-byte length that fits what
/// a greeting is, sequence 0, then protocol 10 (or 9) or an error packet (0xff).
pub(super) fn looks_like_greeting(got: &[u8]) -> bool {
    if got.len() < 5 {
        return false;
    }
    let len = u32::from_le_bytes([got[0], got[1], got[2], 0]);
    (8..=1024).contains(&len) && got[3] == 0 && matches!(got[4], 0x0a | 0x09 | 0xff)
}

/// Parses the first packet's payload into fields.
pub(super) fn parse(payload: &[u8], fields: &mut Fields) -> Result<(), String> {
    let mut c = Cursor::new(payload);
    let proto = c.u8("protocol version")?;
    match proto {
        0xff => {
            let code = c.u16_le("error code")?;
            fields.insert("mysql.error".into(), code.to_string());
            if c.rest().first() == Some(&b'#') {
                let state = c.bytes(6, "SQLSTATE")?;
                fields.insert("mysql.sqlstate".into(), text(&state[1..]));
            }
            return Ok(());
        }
        0x0a => {}
        n => {
            // Protocol 9 (MySQL < 3.21) and anything else: record the version byte only.
            fields.insert("mysql.protocol".into(), n.to_string());
            return Ok(());
        }
    }
    fields.insert("mysql.protocol".into(), "10".into());
    let version = c.cstr("server version")?;
    // MariaDB prefixes "5.5.5-" so that old replication clients accept it.
    let real = version.strip_prefix("5.5.5-").unwrap_or(&version);
    let major: String = real.chars().take_while(char::is_ascii_digit).collect();
    fields.insert("mysql.version_major".into(), major);
    fields.insert("mysql.version".into(), version.clone());
    c.bytes(4, "connection id")?; // masked
    c.bytes(8, "auth salt")?; // masked
    c.bytes(1, "filler")?;
    let mut caps = u32::from(c.u16_le("capability flags")?);
    if c.is_empty() {
        fields.insert("mysql.capabilities".into(), format!("{caps:08x}"));
        return Ok(());
    }
    let charset = c.u8("character set")?;
    let status = c.u16_le("status flags")?;
    caps |= u32::from(c.u16_le("upper capability flags")?) << 16;
    let auth_len = c.u8("auth data length")?;
    let reserved = c.bytes(10, "reserved bytes")?;
    fields.insert("mysql.capabilities".into(), format!("{caps:08x}"));
    if caps & CLIENT_MYSQL == 0 {
        let ext = u32::from_le_bytes([reserved[6], reserved[7], reserved[8], reserved[9]]);
        fields.insert("mysql.mariadb_capabilities".into(), format!("{ext:08x}"));
    }
    fields.insert("mysql.charset".into(), charset.to_string());
    fields.insert("mysql.status".into(), format!("{status:04x}"));
    if caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = usize::from(auth_len).saturating_sub(8).max(13);
        c.bytes(n, "auth salt part 2")?; // masked
    }
    if caps & CLIENT_PLUGIN_AUTH != 0 {
        // Some servers leave out the final NUL.
        let rest = c.rest();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        fields.insert("mysql.auth_plugin".into(), text(&rest[..end]));
    }
    Ok(())
}

pub(super) fn handshake(
    addr: SocketAddr,
    timeout: Duration,
    fields: &mut Fields,
) -> Result<(), HandshakeError> {
    let mut w = Wire::connect(Protocol::Mysql, addr, timeout)?;
    let head = w.take(4)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    if head[3] != 0 {
        return Err(w.malformed(format!("first packet has sequence {}, not 0", head[3])));
    }
    if len == 0 {
        return Err(w.malformed("empty first packet"));
    }
    let payload = w.take(len)?;
    parse(&payload, fields).map_err(|m| w.malformed(m))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::tests::serve;
    use super::super::{Protocol, handshake, speaks};
    use super::*;

    /// The greeting of MariaDB 10.11.6 (Debian bookworm), with the connection id and salt
    /// given as arguments.
    pub(crate) fn mariadb_greeting(conn_id: u32, salt: [u8; 20]) -> Vec<u8> {
        let mut p = vec![0x0a];
        p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        p.extend_from_slice(&conn_id.to_le_bytes());
        p.extend_from_slice(&salt[..8]);
        p.push(0);
        p.extend_from_slice(&[0xfe, 0xf7]); // caps lower (no CLIENT_MYSQL)
        p.push(45); // utf8mb4_general_ci
        p.extend_from_slice(&[0x02, 0x00]); // SERVER_STATUS_AUTOCOMMIT
        p.extend_from_slice(&[0xff, 0x81]); // caps upper
        p.push(21);
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x1d, 0, 0, 0]); // MariaDB ext caps
        p.extend_from_slice(&salt[8..]);
        p.push(0);
        p.extend_from_slice(b"mysql_native_password\0");
        let mut pkt = (p.len() as u32).to_le_bytes()[..3].to_vec();
        pkt.push(0);
        pkt.extend(p);
        pkt
    }

    #[test]
    fn greeting_fields_mask_connection_and_salt() {
        let a = serve(0, mariadb_greeting(7, [1; 20]));
        let b = serve(0, mariadb_greeting(4242, [0x5a; 20]));
        let fa = handshake(a, Protocol::Mysql, Duration::from_secs(5)).unwrap();
        let fb = handshake(b, Protocol::Mysql, Duration::from_secs(5)).unwrap();
        assert_eq!(fa, fb);
        assert_eq!(fa["mysql.protocol"], "10");
        assert_eq!(fa["mysql.version_major"], "10");
        assert_eq!(fa["mysql.version"], "5.5.5-10.11.6-MariaDB-0+deb12u1");
        assert_eq!(fa["mysql.capabilities"], "81fff7fe");
        assert_eq!(fa["mysql.mariadb_capabilities"], "0000001d");
        assert_eq!(fa["mysql.auth_plugin"], "mysql_native_password");
        assert_eq!(fa["mysql.status"], "0002");
        assert!(speaks(Protocol::Mysql, &fa));
        assert!(looks_like_greeting(&mariadb_greeting(1, [0; 20])));
    }

    #[test]
    fn error_packet() {
        // 1130: Host '172.17.0.1' is not allowed to connect to this MariaDB server
        let mut p = vec![0xff, 0x6a, 0x04];
        p.extend_from_slice(b"Host '172.17.0.1' is not allowed to connect");
        let mut pkt = (p.len() as u32).to_le_bytes()[..3].to_vec();
        pkt.push(0);
        pkt.extend(p);
        assert!(looks_like_greeting(&pkt));
        let f = handshake(serve(0, pkt), Protocol::Mysql, Duration::from_secs(5)).unwrap();
        assert_eq!(f["mysql.error"], "1130");
        assert!(!f.values().any(|v| v.contains("172.17")));
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let full = mariadb_greeting(1, [3; 20]);
        let payload = &full[4..];
        // Cutting the payload anywhere before the auth plugin name loses a required part.
        let plugin_at = payload.len() - b"mysql_native_password\0".len();
        let pre_41_end = 1 + b"5.5.5-10.11.6-MariaDB-0+deb12u1\0".len() + 4 + 8 + 1 + 2;
        for cut in 0..plugin_at {
            let mut f = Fields::new();
            let r = parse(&payload[..cut], &mut f);
            // A greeting cut right after the lower capability flags is a valid pre-4.1 one.
            assert!(r.is_err() || cut == pre_41_end, "cut at {cut}: {f:?}");
        }
    }

    #[test]
    fn hostile_packets() {
        for bytes in [
            &b"\0\0\0\0"[..],         // empty packet
            b"\xff\xff\xff\0\x0a",    // 16 MB announced, 1 byte sent
            b"\x05\0\0\x01\x0a5.7\0", // sequence 1
            b"\x20\0\0\0\x0a5.7.44-no-terminator",
        ] {
            let r = handshake(
                serve(0, bytes.to_vec()),
                Protocol::Mysql,
                Duration::from_millis(500),
            );
            assert!(r.is_err(), "{bytes:?}: {r:?}");
        }
    }
}
