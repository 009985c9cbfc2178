//! AMQP 0-9-1: the client sends the protocol header; the server answers with a
//! `Connection.Start` method frame, or with its own protocol header when it speaks another
//! version.
//!
//! Kept: the protocol version the server offers, from its server properties `product`,
//! `version`, `platform` and the `capabilities` table (name=value, sorted), the SASL
//! mechanisms and the locales; for a header answer, the header. Masked: `cluster_name` (it
//! holds the node and host name) and every other property.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::{Cursor, Fields, HandshakeError, Protocol, Wire, text};

const HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
const FRAME_END: u8 = 0xce;
/// How deep nested tables and arrays may go.
const MAX_DEPTH: usize = 4;
const KEPT_PROPERTIES: [&str; 3] = ["product", "version", "platform"];

/// A field-table value, as far as the probe keeps it.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Table(BTreeMap<String, Value>),
    Other,
}

impl Value {
    fn show(&self) -> String {
        match self {
            Value::Text(s) => s.clone(),
            Value::Table(_) => "table".into(),
            Value::Other => "?".into(),
        }
    }
}

fn long_bytes<'a>(c: &mut Cursor<'a>, what: &str) -> Result<&'a [u8], String> {
    let n = c.u32_be(what)? as usize;
    c.bytes(n, what)
}

fn value(c: &mut Cursor<'_>, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("field tables nested too deep".into());
    }
    let t = c.u8("field type")?;
    let fixed = |c: &mut Cursor<'_>, n: usize| c.bytes(n, "field value").map(|_| Value::Other);
    Ok(match t {
        b't' => Value::Text(
            if c.u8("boolean")? != 0 {
                "true"
            } else {
                "false"
            }
            .into(),
        ),
        b'b' | b'B' => Value::Text(c.u8("octet")?.to_string()),
        b's' | b'u' => Value::Text(c.u16_be("short")?.to_string()),
        b'I' | b'i' => Value::Text(c.u32_be("long")?.to_string()),
        b'l' | b'L' | b'd' | b'T' => fixed(c, 8)?,
        b'f' => fixed(c, 4)?,
        b'D' => fixed(c, 5)?,
        b'V' => Value::Other,
        b'S' => Value::Text(text(long_bytes(c, "long string")?)),
        b'x' => {
            long_bytes(c, "byte array")?;
            Value::Other
        }
        b'F' => Value::Table(table(&mut Cursor::new(long_bytes(c, "table")?), depth + 1)?),
        b'A' => {
            let mut inner = Cursor::new(long_bytes(c, "array")?);
            while !inner.is_empty() {
                value(&mut inner, depth + 1)?;
            }
            Value::Other
        }
        other => return Err(format!("unknown field type 0x{other:02x}")),
    })
}

/// A field table's entries (the caller has cut out its bytes).
fn table(c: &mut Cursor<'_>, depth: usize) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    while !c.is_empty() {
        let n = usize::from(c.u8("field name length")?);
        let name = text(c.bytes(n, "field name")?);
        let v = value(c, depth)?;
        out.insert(name, v);
    }
    Ok(out)
}

/// Parses a `Connection.Start` method payload into fields.
pub(super) fn parse_start(payload: &[u8], fields: &mut Fields) -> Result<(), String> {
    let mut c = Cursor::new(payload);
    let (class, method) = (c.u16_be("class id")?, c.u16_be("method id")?);
    if (class, method) != (10, 10) {
        return Err(format!(
            "first method is {class}.{method}, not Connection.Start (10.10)"
        ));
    }
    let (major, minor) = (c.u8("version major")?, c.u8("version minor")?);
    fields.insert("amqp.version".into(), format!("{major}-{minor}"));
    let props = table(
        &mut Cursor::new(long_bytes(&mut c, "server properties")?),
        0,
    )?;
    for k in KEPT_PROPERTIES {
        if let Some(v) = props.get(k) {
            let key = if k == "version" { "server_version" } else { k };
            fields.insert(format!("amqp.{key}"), v.show());
        }
    }
    if let Some(Value::Table(caps)) = props.get("capabilities") {
        let list: Vec<String> = caps
            .iter()
            .map(|(k, v)| format!("{k}={}", v.show()))
            .collect();
        fields.insert("amqp.capabilities".into(), list.join(","));
    }
    fields.insert(
        "amqp.mechanisms".into(),
        text(long_bytes(&mut c, "mechanisms")?),
    );
    fields.insert("amqp.locales".into(), text(long_bytes(&mut c, "locales")?));
    Ok(())
}

pub(super) fn handshake(
    addr: SocketAddr,
    timeout: Duration,
    fields: &mut Fields,
) -> Result<(), HandshakeError> {
    let mut w = Wire::connect(Protocol::Amqp, addr, timeout)?;
    w.send(HEADER)?;
    let head = w.take(7)?;
    if head.starts_with(b"AMQP") {
        // The server wants another protocol version and says which.
        let tail = w.take(1)?;
        let h: Vec<String> = head[4..].iter().chain(&tail).map(u8::to_string).collect();
        fields.insert("amqp.header".into(), format!("AMQP {}", h.join(" ")));
        return Ok(());
    }
    if head[0] != 1 || head[1..3] != [0, 0] {
        return Err(w.malformed(format!(
            "first frame is type {} on channel {}, not a method on channel 0",
            head[0],
            u16::from_be_bytes([head[1], head[2]])
        )));
    }
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
    let payload = w.take(size.saturating_add(1))?;
    if payload.last() != Some(&FRAME_END) {
        return Err(w.malformed("frame does not end with 0xCE"));
    }
    parse_start(&payload[..size], fields).map_err(|m| w.malformed(m))
}

#[cfg(test)]
mod tests {
    use super::super::tests::serve;
    use super::super::{Protocol, handshake, speaks};
    use super::*;

    fn short(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn long(b: &[u8]) -> Vec<u8> {
        let mut v = (b.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(b);
        v
    }

    fn string_field(name: &str, value: &str) -> Vec<u8> {
        let mut v = short(name);
        v.push(b'S');
        v.extend(long(value.as_bytes()));
        v
    }

    /// `Connection.Start` as RabbitMQ 3.10.8 (Debian bookworm) sends it, with the node name
    /// given.
    pub(crate) fn rabbitmq_start(node: &str) -> Vec<u8> {
        let mut caps = Vec::new();
        for c in [
            "publisher_confirms",
            "exchange_exchange_bindings",
            "basic.nack",
            "consumer_cancel_notify",
            "connection.blocked",
            "consumer_priorities",
            "authentication_failure_close",
            "per_consumer_qos",
            "direct_reply_to",
        ] {
            caps.extend(short(c));
            caps.extend([b't', 1]);
        }
        let mut props = short("capabilities");
        props.push(b'F');
        props.extend(long(&caps));
        props.extend(string_field("cluster_name", node));
        props.extend(string_field(
            "copyright",
            "Copyright (c) 2007-2022 VMware, Inc. or its affiliates.",
        ));
        props.extend(string_field(
            "information",
            "Licensed under the MPL 2.0. Website: https://rabbitmq.com",
        ));
        props.extend(string_field("platform", "Erlang/OTP 25.2.3"));
        props.extend(string_field("product", "RabbitMQ"));
        props.extend(string_field("version", "3.10.8"));
        let mut payload = vec![0, 10, 0, 10, 0, 9];
        payload.extend(long(&props));
        payload.extend(long(b"AMQPLAIN PLAIN"));
        payload.extend(long(b"en_US"));
        let mut frame = vec![1, 0, 0];
        frame.extend((payload.len() as u32).to_be_bytes());
        frame.extend(payload);
        frame.push(FRAME_END);
        frame
    }

    #[test]
    fn connection_start_with_node_name_masked() {
        let a = serve(8, rabbitmq_start("rabbit@localhost"));
        let b = serve(8, rabbitmq_start("rabbit@3f9a0c1d2e4b"));
        let fa = handshake(a, Protocol::Amqp, Duration::from_secs(5)).unwrap();
        let fb = handshake(b, Protocol::Amqp, Duration::from_secs(5)).unwrap();
        assert_eq!(fa, fb);
        assert_eq!(fa["amqp.version"], "0-9");
        assert_eq!(fa["amqp.product"], "RabbitMQ");
        assert_eq!(fa["amqp.server_version"], "3.10.8");
        assert_eq!(fa["amqp.mechanisms"], "AMQPLAIN PLAIN");
        assert_eq!(fa["amqp.locales"], "en_US");
        assert!(fa["amqp.capabilities"].contains("publisher_confirms=true"));
        assert!(!fa.values().any(|v| v.contains("rabbit@")));
        assert!(speaks(Protocol::Amqp, &fa));
    }

    /// The bytes RabbitMQ 3.10.8 (Debian bookworm, `pare-example/rabbitmq`) sent, recorded.
    const RECORDED: &[u8] = b"\x01\x00\x00\x00\x00\x01\xfa\x00\n\x00\n\x00\t\x00\x00\x01\xd5\x0ccapabilitiesF\x00\x00\x00\xc7\x12publisher_confirmst\x01\x1aexchange_exchange_bindingst\x01\nbasic.nackt\x01\x16consumer_cancel_notifyt\x01\x12connection.blockedt\x01\x13consumer_prioritiest\x01\x1cauthentication_failure_closet\x01\x10per_consumer_qost\x01\x0fdirect_reply_tot\x01\x0ccluster_nameS\x00\x00\x00\x13rabbit@fe40e71c762b\tcopyrightS\x00\x00\x007Copyright (c) 2007-2022 VMware, Inc. or its affiliates.\x0binformationS\x00\x00\x009Licensed under the MPL 2.0. Website: https://rabbitmq.com\x08platformS\x00\x00\x00\x11Erlang/OTP 25.2.3\x07productS\x00\x00\x00\x08RabbitMQ\x07versionS\x00\x00\x00\x063.10.8\x00\x00\x00\x0eAMQPLAIN PLAIN\x00\x00\x00\x05en_US\xce";

    #[test]
    fn recorded_rabbitmq_answer() {
        let recorded = handshake(
            serve(8, RECORDED.to_vec()),
            Protocol::Amqp,
            Duration::from_secs(5),
        )
        .unwrap();
        let built = handshake(
            serve(8, rabbitmq_start("rabbit@localhost")),
            Protocol::Amqp,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(recorded, built);
    }

    #[test]
    fn protocol_header_answer() {
        let f = handshake(
            serve(8, b"AMQP\x01\x01\x00\x0a".to_vec()),
            Protocol::Amqp,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(f["amqp.header"], "AMQP 1 1 0 10");
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let frame = rabbitmq_start("rabbit@x");
        let payload = &frame[7..frame.len() - 1];
        for cut in 0..payload.len() {
            let mut f = Fields::new();
            assert!(
                parse_start(&payload[..cut], &mut f).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn hostile_frames() {
        let mut deep = vec![0, 10, 0, 10, 0, 9];
        // A table nested 100 deep.
        let mut t: Vec<u8> = Vec::new();
        for _ in 0..100 {
            let mut outer = short("x");
            outer.push(b'F');
            outer.extend(long(&t));
            t = outer;
        }
        deep.extend(long(&t));
        let mut deep_frame = vec![1, 0, 0];
        deep_frame.extend((deep.len() as u32).to_be_bytes());
        deep_frame.extend(deep);
        deep_frame.push(FRAME_END);
        let mut no_end = rabbitmq_start("r");
        *no_end.last_mut().unwrap() = 0;
        for bytes in [
            deep_frame,
            no_end,
            vec![1, 0, 0, 0xff, 0xff, 0xff, 0xff], // 4 GiB frame
            vec![3, 0, 0, 0, 0, 0, 0, FRAME_END],  // heartbeat first
            b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        ] {
            let r = handshake(
                serve(8, bytes.clone()),
                Protocol::Amqp,
                Duration::from_millis(500),
            );
            assert!(r.is_err(), "{:?}: {r:?}", &bytes[..bytes.len().min(16)]);
        }
    }
}
