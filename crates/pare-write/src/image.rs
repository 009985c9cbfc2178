//! Image config, manifest and index JSON.

use std::collections::BTreeMap;

use pare_image::Digest;
use serde_json::{Map, Value, json};

use pare_image::ImageConfiguration;

use crate::WriteError;
use crate::layer::LayerInfo;

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The source image's metadata the slim image inherits.
#[derive(Debug, Clone)]
pub struct ImageMeta {
    /// The source's OCI image configuration (entrypoint, env, user, labels, history…),
    /// copied into the slim config with pare's own labels and history added.
    pub config: ImageConfiguration,
    /// Docker's `config.Healthcheck` object (`{"Test": [...], "Interval": …}`), which
    /// oci-spec does not model.
    pub healthcheck: Option<Value>,
    /// `sha256:…` of the source config (labelled `io.pare.source.digest`).
    pub source_digest: Digest,
    /// The source reference as the user typed it (labelled `io.pare.source.ref`).
    pub source_ref: String,
}

impl ImageMeta {
    /// From the raw source config JSON: parses it with oci-spec, picks up `Healthcheck` and
    /// computes the digest from the exact bytes.
    pub fn from_config_json(raw: &[u8], source_ref: &str) -> Result<Self, WriteError> {
        let config: ImageConfiguration =
            serde_json::from_slice(raw).map_err(|e| WriteError::Config {
                what: "JSON".into(),
                reason: e.to_string(),
            })?;
        let value: Value = serde_json::from_slice(raw).map_err(|e| WriteError::Config {
            what: "JSON".into(),
            reason: e.to_string(),
        })?;
        let healthcheck = value
            .get("config")
            .and_then(|c| c.get("Healthcheck"))
            .filter(|h| !h.is_null())
            .cloned();
        Ok(ImageMeta {
            config,
            healthcheck,
            source_digest: digest(raw),
            source_ref: source_ref.to_string(),
        })
    }
}

impl ImageMeta {
    /// The source image's `created` as Unix seconds: a reproducible default epoch when
    /// `SOURCE_DATE_EPOCH` is not set.
    pub fn source_created_epoch(&self) -> Option<u64> {
        parse_rfc3339(self.config.created().as_deref()?)
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to Unix seconds (fractions dropped).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|x| x.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|x| x.parse::<i64>().ok())
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) && &r[3..4] == ":" => {
            let v = num(s.len() - 5..s.len() - 3)? * 3600 + num(s.len() - 2..s.len())? * 60;
            if r.starts_with('+') { v } else { -v }
        }
        _ => return None,
    };
    // days_from_civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se - offset).ok()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (proleptic Gregorian, UTC).
pub fn rfc3339(epoch: u64) -> String {
    pare_image::rfc3339(i64::try_from(epoch).unwrap_or(i64::MAX))
}

/// Re-collects a JSON object into sorted order (oci-spec keeps labels in a HashMap).
pub(crate) fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let b: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            let mut out = Map::new();
            for (k, v) in b {
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The slim image's config JSON.
pub fn config_json(meta: &ImageMeta, layer: &LayerInfo, epoch: u64) -> Result<Vec<u8>, WriteError> {
    let src = serde_json::to_value(&meta.config).map_err(|e| WriteError::Config {
        what: "serialize".into(),
        reason: e.to_string(),
    })?;
    let created = rfc3339(epoch);
    let mut top = Map::new();
    for k in ["architecture", "os", "os.version", "os.features", "variant"] {
        if let Some(v) = src.get(k).filter(|v| !v.is_null()) {
            top.insert(k.to_string(), sorted(v));
        }
    }
    let mut cfg = Map::new();
    let src_cfg = src.get("config");
    for k in [
        "User",
        "ExposedPorts",
        "Env",
        "Entrypoint",
        "Cmd",
        "Volumes",
        "WorkingDir",
        "Labels",
        "StopSignal",
    ] {
        if let Some(v) = src_cfg.and_then(|c| c.get(k)).filter(|v| !v.is_null()) {
            cfg.insert(k.to_string(), sorted(v));
        }
    }
    let mut labels = match cfg.remove("Labels") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    labels.insert(
        "io.pare.source.digest".into(),
        Value::String(meta.source_digest.to_string()),
    );
    labels.insert(
        "io.pare.source.ref".into(),
        Value::String(meta.source_ref.clone()),
    );
    cfg.insert("Labels".into(), sorted(&Value::Object(labels)));
    if let Some(h) = &meta.healthcheck {
        cfg.insert("Healthcheck".into(), sorted(h));
    }
    top.insert("config".into(), Value::Object(cfg));
    top.insert("created".into(), Value::String(created.clone()));
    top.insert(
        "history".into(),
        json!([{ "created": created, "created_by": "pare build", "comment": format!("slimmed from {}", meta.source_ref) }]),
    );
    top.insert(
        "rootfs".into(),
        json!({ "type": "layers", "diff_ids": [layer.diff_id] }),
    );
    serde_json::to_vec(&sorted(&Value::Object(top))).map_err(|e| WriteError::Config {
        what: "serialize".into(),
        reason: e.to_string(),
    })
}

/// The `sha256:` digest of a blob.
pub fn digest(bytes: &[u8]) -> Digest {
    pare_source::sha256_of(bytes)
}

/// The OCI image manifest (gzip layer).
pub fn manifest_json(config: &[u8], layer: &LayerInfo) -> Vec<u8> {
    manifest_json_with(config, layer, MEDIA_LAYER_GZIP)
}

/// The OCI image manifest with the layer's media type given (`…tar` for a plain layer).
pub fn manifest_json_with(config: &[u8], layer: &LayerInfo, layer_media: &str) -> Vec<u8> {
    let v = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": { "mediaType": MEDIA_CONFIG, "digest": digest(config), "size": config.len() },
        "layers": [{ "mediaType": layer_media, "digest": layer.digest, "size": layer.size }],
    });
    serde_json::to_vec(&sorted(&v)).unwrap_or_default()
}

/// An index descriptor for the manifest.
pub fn index_entry(manifest: &[u8], tag: Option<&str>, meta: &ImageMeta) -> Value {
    let mut d = json!({
        "mediaType": MEDIA_MANIFEST,
        "digest": digest(manifest),
        "size": manifest.len(),
    });
    let src = serde_json::to_value(&meta.config).unwrap_or(Value::Null);
    if let (Some(os), Some(arch)) = (src.get("os"), src.get("architecture")) {
        let mut p = json!({ "os": os, "architecture": arch });
        if let Some(v) = src.get("variant").filter(|v| !v.is_null()) {
            p["variant"] = v.clone();
        }
        d["platform"] = p;
    }
    if let Some(tag) = tag {
        d["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    }
    sorted(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_round_trips() {
        for t in [0u64, 951_782_400, 1_700_000_000, 4_102_444_799, 86_399] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456789+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T21:13:20-01:00"),
            Some(1_700_000_000)
        );
        for bad in [
            "",
            "2023-13-01T00:00:00Z",
            "yesterday",
            "2023-11-14T22:13:20",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
