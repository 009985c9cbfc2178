//! The image model that every later stage reads: the manifest's layer list, the image config
//! (via `oci-spec`), the history, and the platform. No I/O happens here.

#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

pub mod digest;
pub mod path;

pub use digest::Digest;
pub use oci_spec::image::ImageConfiguration;
pub use path::{ImagePath, ImagePathError};

/// A platform as `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// The operating system, in OCI spelling (`linux`, `windows`).
    pub os: String,
    /// The CPU architecture, in OCI/GOARCH spelling (`amd64`, `arm64`, `arm`).
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The CPU variant (`v7` for `linux/arm/v7`, `v8` for arm64), when the image names one.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the running host, in OCI/GOARCH spelling.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split('/');
        let os = it.next()?.to_string();
        let architecture = it.next()?.to_string();
        let variant = it.next().map(str::to_string);
        if os.is_empty() || architecture.is_empty() || it.next().is_some() {
            return None;
        }
        Some(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// Whether a manifest for `other` can run here (variant only compared when both have one).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC), the form image configs
/// use for `created`. Howard Hinnant's civil-from-days; no date crate for one formatter.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar (`…layer.v1.tar`, or the Docker daemon's own layers).
    None,
    /// gzip (`…tar+gzip`, Docker's `…rootfs.diff.tar.gzip`).
    Gzip,
    /// zstd (`…tar+zstd`).
    Zstd,
}

/// One layer as the manifest (or the daemon's inspect data) describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDescriptor {
    /// Digest of the blob as stored (compressed for registries and OCI layouts).
    pub digest: String,
    /// Digest of the uncompressed tar (`rootfs.diff_ids[i]` in the config).
    pub diff_id: Option<String>,
    /// Stored size in bytes, when known (it is the uncompressed size for uncompressed blobs).
    pub compressed_size: Option<u64>,
    /// The descriptor's media type as written in the manifest.
    pub media_type: String,
    /// How the blob is compressed, as announced by `media_type` (readers still check the blob's
    /// first bytes).
    pub compression: Compression,
}

/// A fully resolved image: one platform, its manifest and config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// What the user asked for, for reports.
    pub name: String,
    /// `sha256:…` of the manifest when the source has one.
    pub manifest_digest: Option<Digest>,
    /// `sha256:…` of the config blob (the image ID for Docker).
    pub config_digest: Digest,
    /// The parsed image config: ENTRYPOINT/CMD/ENV/USER, exposed ports, history, `rootfs.diff_ids`.
    pub config: ImageConfiguration,
    /// Bottom layer first.
    pub layers: Vec<LayerDescriptor>,
}

/// One history entry paired with the layer it produced, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryStep {
    /// The instruction that made the step (`/bin/sh -c #(nop) COPY ...`); empty when the
    /// history entry has none.
    pub created_by: String,
    /// When the step ran, as the RFC 3339 text in the config.
    pub created: Option<String>,
    /// The entry's free-form comment (`buildkit.dockerfile.v0`), when set.
    pub comment: Option<String>,
    /// The step changed only the config (ENV, CMD, ...) and produced no layer.
    pub empty_layer: bool,
    /// Index into `ResolvedImage::layers` for non-empty steps.
    pub layer_index: Option<usize>,
}

impl ResolvedImage {
    /// History entries in order, each non-empty one mapped to its layer. When the history has
    /// fewer non-empty steps than there are layers (squashed or hand-made images), the extra
    /// layers get no step.
    pub fn history_steps(&self) -> Vec<HistoryStep> {
        let mut next_layer = 0usize;
        let mut out = Vec::new();
        for h in self.config.history().iter().flatten() {
            let empty = h.empty_layer().unwrap_or(false);
            let layer_index = if !empty && next_layer < self.layers.len() {
                next_layer += 1;
                Some(next_layer - 1)
            } else {
                None
            };
            out.push(HistoryStep {
                created_by: h.created_by().clone().unwrap_or_default(),
                created: h.created().clone(),
                comment: h.comment().clone(),
                empty_layer: empty,
                layer_index,
            });
        }
        out
    }

    /// `created_by` of the history step that produced layer `i`.
    pub fn created_by(&self, i: usize) -> Option<String> {
        self.history_steps()
            .into_iter()
            .find(|s| s.layer_index == Some(i))
            .map(|s| s.created_by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn platform_parse_and_match() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::host().matches(&Platform {
            variant: Some("v1".into()),
            ..Platform::host()
        }));
        assert!(
            !Platform::parse("windows/amd64")
                .unwrap()
                .matches(&Platform::parse("linux/amd64").unwrap())
        );
    }

    #[test]
    fn history_maps_to_layers() {
        let cfg: ImageConfiguration = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:a","sha256:b"]},
            "history":[{"created_by":"ADD x /"},{"created_by":"ENV A=1","empty_layer":true},{"created_by":"RUN y"}]}"#,
        )
        .unwrap();
        let layer = |d: &str| LayerDescriptor {
            digest: d.into(),
            diff_id: Some(d.into()),
            compressed_size: None,
            media_type: String::new(),
            compression: Compression::None,
        };
        let img = ResolvedImage {
            name: "t".into(),
            manifest_digest: None,
            config_digest: digest::sha256(&[0xc; 32]),
            config: cfg,
            layers: vec![layer("sha256:a"), layer("sha256:b")],
        };
        let steps = img.history_steps();
        assert_eq!(steps[0].layer_index, Some(0));
        assert_eq!(steps[1].layer_index, None);
        assert_eq!(steps[2].layer_index, Some(1));
        assert_eq!(img.created_by(1).as_deref(), Some("RUN y"));
    }
}
