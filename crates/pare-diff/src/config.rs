//! Image config comparison: scalar fields compare whole, map-like fields entry by entry.

use std::collections::BTreeMap;

use pare_source::ImageSource;
use serde_json::Value;

use crate::{Change, ConfigChange};

const SCALARS: &[&str] = &[
    "Entrypoint",
    "Cmd",
    "User",
    "WorkingDir",
    "StopSignal",
    "Healthcheck",
];
const MAPS: &[&str] = &["Env", "Labels", "ExposedPorts", "Volumes"];

/// The `config` object of the image config, as stored when the source has it (it keeps
/// Docker-only fields such as `Healthcheck`), else as oci-spec parsed it.
fn config_object(source: &dyn ImageSource) -> serde_json::Map<String, Value> {
    let stored = source
        .raw_config()
        .and_then(|raw| serde_json::from_slice::<Value>(raw).ok());
    let whole = stored.or_else(|| serde_json::to_value(&source.image().config).ok());
    match whole.and_then(|mut v| v.get_mut("config").map(Value::take)) {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// A map-like field as key → value.
fn entries(cfg: &serde_json::Map<String, Value>, field: &str) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    match cfg.get(field) {
        Some(Value::Array(list)) if field == "Env" => {
            for kv in list.iter().filter_map(Value::as_str) {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                m.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
        Some(Value::Object(o)) => {
            for (k, v) in o {
                let v = if field == "Labels" {
                    v.clone()
                } else {
                    Value::Bool(true)
                };
                m.insert(k.clone(), v);
            }
        }
        _ => {}
    }
    m
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    })
}

fn change(key: String, x: Option<&Value>, y: Option<&Value>) -> Option<ConfigChange> {
    let (x, y) = (present(x), present(y));
    let change = match (x, y) {
        (Some(x), Some(y)) if x == y => return None,
        (None, None) => return None,
        (Some(_), Some(_)) => Change::Changed,
        (Some(_), None) => Change::Removed,
        (None, Some(_)) => Change::Added,
    };
    Some(ConfigChange {
        key,
        change,
        a: x.cloned(),
        b: y.cloned(),
    })
}

/// Config differences between `a` and `b`, fields in a fixed order, map entries sorted.
pub fn config_changes(a: &dyn ImageSource, b: &dyn ImageSource) -> Vec<ConfigChange> {
    let (ca, cb) = (config_object(a), config_object(b));
    let mut out = Vec::new();
    for &k in SCALARS {
        out.extend(change(k.to_string(), ca.get(k), cb.get(k)));
    }
    for &field in MAPS {
        let (ma, mb) = (entries(&ca, field), entries(&cb, field));
        let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            let mut c = change(format!("{field}.{k}"), ma.get(k), mb.get(k));
            if field == "Env" {
                // Compared as stored, shown redacted when the name or value looks secret.
                for v in c.iter_mut().flat_map(|c| [&mut c.a, &mut c.b]).flatten() {
                    if let Some(reason) = pare_xray::env_secret_reason(k, v.as_str().unwrap_or(""))
                    {
                        *v = Value::String(format!("<redacted: {reason}>"));
                    }
                }
            }
            out.extend(c);
        }
    }
    out
}
