//! `report.json`: what a build made, from the phases' outputs (its text form is in `summary.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pare_select::Selection;
use pare_select::unexercised::Unexercised;
use pare_trace::Profile;
use pare_verify::Verification;
use pare_write::WrittenImage;
use pare_xray::{Report as Xray, Surface};
use serde::{Deserialize, Serialize};

use crate::BuildError;
use crate::error::file_err;

/// Time spent in one phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseTiming {
    /// The phase (`open`, `extract`, `profile`, `select`, `write`, `verify`, …).
    pub phase: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Sizes and counts of one image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageSummary {
    /// The image reference as given (the source) or written (the slim image).
    pub reference: String,
    /// What `docker images` shows as SIZE: the file bytes of every layer, each copy counted
    /// (a file replaced or deleted in a later layer still takes space below it).
    pub size: Option<u64>,
    /// Bytes of the files visible in the final filesystem (what a container sees).
    #[serde(default)]
    pub visible_size: Option<u64>,
    /// The gzip layers' total, as a registry stores and sends them: measured for the slim
    /// image, summed from the manifest for a source whose layers are stored compressed.
    pub compressed_size: Option<u64>,
    /// Why `compressed_size` is unknown (the daemon and `docker save` keep layers
    /// uncompressed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed_note: Option<String>,
    /// Visible filesystem entries (files, directories, links).
    pub entries: Option<u64>,
    /// Layer count.
    pub layers: Option<usize>,
    /// Attack-surface findings (shells, package managers, setuid files, …).
    pub surface_findings: Option<usize>,
}

/// One attack-surface finding of the original that the slim image no longer has.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct SurfaceItem {
    /// `shell`, `package_manager`, `build_tool`, `network_tool`, `setuid`, `setgid`,
    /// `world_writable`, `capability`, `secret_file`.
    pub category: String,
    /// The file it is about.
    pub path: pare_image::ImagePath,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildReport {
    /// Version of this format (1).
    pub schema_version: u32,
    /// The original image.
    pub source: ImageSummary,
    /// The slim image.
    pub slim: ImageSummary,
    /// The original's config digest (its image ID).
    pub source_config_digest: String,
    /// The slim image's config digest (Docker's image ID) and manifest digest.
    pub slim_config_digest: String,
    /// The slim image's manifest digest.
    pub slim_manifest_digest: String,
    /// The runtime that ran the images (`docker`, `embedded`, or `none`).
    pub runtime: String,
    /// Files the trace saw the app open.
    pub traced_files: usize,
    /// The slim image's entries (the same count as `slim.entries`).
    pub kept_paths: usize,
    /// Shrink factor of `size`, as `docker images` shows it (source / slim).
    pub reduction: Option<f64>,
    /// The Unix time of every timestamp in the slim image (its `created`, every mtime).
    #[serde(default)]
    pub epoch: u64,
    /// `epoch` as RFC 3339.
    #[serde(default)]
    pub created: String,
    /// Where `epoch` came from: `--epoch`, `$SOURCE_DATE_EPOCH`, the source image's creation
    /// time, or none (1970).
    #[serde(default)]
    pub epoch_from: String,
    /// Attack-surface findings of the original that the slim image no longer has.
    pub surface_removed: Vec<SurfaceItem>,
    /// Findings still present in the slim image.
    pub surface_kept: Vec<SurfaceItem>,
    /// The verification of the slim image; `None` when skipped.
    pub verification: Option<Verification>,
    /// Files under the app's WORKDIR, VOLUMEs and served directories that the slim image
    /// drops because no probe asked for them (verification cannot vouch for them).
    #[serde(default)]
    pub unexercised: Vec<Unexercised>,
    /// How the profiled run was found ready (from profile.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<String>,
    /// Findings of the profiled run (`EXPOSE 80/tcp: nothing listens`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// Each phase, in the order it ran.
    pub timings: Vec<PhaseTiming>,
    /// The whole build, in seconds.
    pub total_seconds: f64,
    /// The artifacts directory (report.json, profile.json, seccomp.json, apparmor.profile).
    pub artifacts: PathBuf,
    /// Every kept path with its reasons (what `pare why` reads).
    pub selection: Selection,
}

pub(crate) struct Inputs<'a> {
    pub source: String,
    pub source_config_digest: String,
    pub slim: String,
    pub written: &'a WrittenImage,
    pub runtime: String,
    pub profile: &'a Profile,
    pub selection: Selection,
    pub verification: Option<Verification>,
    pub unexercised: Vec<Unexercised>,
    pub before: Option<&'a Xray>,
    pub after: Option<&'a Xray>,
    pub source_layers: &'a [pare_image::LayerDescriptor],
    pub source_is_daemon: bool,
    pub epoch: u64,
    pub epoch_from: pare_write::EpochFrom,
    pub timings: Vec<PhaseTiming>,
    pub total_seconds: f64,
    pub artifacts: PathBuf,
}

/// The file findings (tools, setuid, capabilities, secret files…) the original had that the
/// slim image no longer has, and the ones it still has. Computed by pare-diff, as `pare diff
/// ORIGINAL SLIM` computes its attack-surface section: what it lost, less any file still found
/// under the same category (its detail, a link target or mode, may differ).
fn surface_change(before: &Surface, after: &Surface) -> (Vec<SurfaceItem>, Vec<SurfaceItem>) {
    let items = |list: &[pare_diff::Finding]| -> BTreeSet<SurfaceItem> {
        list.iter()
            .filter_map(|f| {
                f.path().map(|path| SurfaceItem {
                    category: f.category.to_string(),
                    path,
                })
            })
            .collect()
    };
    let kept = items(&pare_diff::findings(after));
    let lost = items(&pare_diff::surface_changes(before, after).lost);
    (
        lost.difference(&kept).cloned().collect(),
        kept.into_iter().collect(),
    )
}

fn summary(reference: &str, x: Option<&Xray>) -> ImageSummary {
    match x {
        Some(x) => ImageSummary {
            reference: reference.to_string(),
            size: Some(x.total_size),
            visible_size: Some(x.final_size),
            compressed_size: None,
            compressed_note: None,
            entries: Some(x.entries),
            layers: Some(x.layers.len()),
            surface_findings: Some(x.surface.findings()),
        },
        None => ImageSummary {
            reference: reference.to_string(),
            ..Default::default()
        },
    }
}

/// The source's compressed size: the manifest's layer sizes when every layer is stored
/// compressed; otherwise `None` and why (a docker-archive's tar sizes are not compressed
/// sizes, and the daemon keeps no compressed form).
fn source_compressed(
    layers: &[pare_image::LayerDescriptor],
    daemon: bool,
) -> (Option<u64>, Option<String>) {
    let compressed = layers
        .iter()
        .all(|l| l.compression != pare_image::Compression::None);
    match layers
        .iter()
        .map(|l| l.compressed_size)
        .sum::<Option<u64>>()
    {
        Some(total) if compressed && !layers.is_empty() => (Some(total), None),
        _ if daemon => (
            None,
            Some("the docker daemon keeps layers uncompressed".into()),
        ),
        _ => (None, Some("the input's layers are not compressed".into())),
    }
}

impl BuildReport {
    pub(crate) fn new(i: Inputs<'_>) -> Self {
        let mut source = summary(&i.source, i.before);
        (source.compressed_size, source.compressed_note) =
            source_compressed(i.source_layers, i.source_is_daemon);
        let mut slim = summary(&i.slim, i.after);
        // Measured: the gzip layer that was written, or the gzip form measured beside a
        // `docker load` of the plain layer.
        slim.compressed_size = Some(i.written.layer.size);
        if slim.size.is_none() {
            slim.size = Some(i.written.layer.uncompressed_size);
        }
        let (removed, kept) = match (i.before, i.after) {
            (Some(b), Some(a)) => surface_change(&b.surface, &a.surface),
            _ => (Vec::new(), Vec::new()),
        };
        let reduction = match (source.size, slim.size) {
            (Some(b), Some(a)) if a > 0 => Some(b as f64 / a as f64),
            _ => None,
        };
        BuildReport {
            schema_version: 1,
            source,
            slim,
            source_config_digest: i.source_config_digest,
            slim_config_digest: i.written.config_digest.to_string(),
            slim_manifest_digest: i.written.manifest_digest.to_string(),
            runtime: i.runtime,
            traced_files: i.profile.sensor.files.values().filter(|r| r.found).count(),
            // What the image holds, counted as `slim.entries` counts it, so the summary
            // never shows two different counts of the same thing.
            kept_paths: i
                .after
                .map(|a| a.entries as usize)
                .unwrap_or(i.written.layer.entries as usize),
            reduction,
            epoch: i.epoch,
            created: pare_write::rfc3339(i.epoch),
            epoch_from: i.epoch_from.describe().to_string(),
            surface_removed: removed,
            surface_kept: kept,
            verification: i.verification,
            unexercised: i.unexercised,
            readiness: i.profile.run.as_ref().map(|r| r.readiness.clone()),
            findings: i
                .profile
                .run
                .as_ref()
                .map(|r| r.findings.clone())
                .unwrap_or_default(),
            timings: i.timings,
            total_seconds: i.total_seconds,
            artifacts: i.artifacts,
            selection: i.selection,
        }
    }

    /// Writes `ARTIFACTS/report.json` (through a temp file, so a reader never sees half of
    /// it) and returns its path.
    pub(crate) fn save(&self, artifacts: &Path) -> Result<PathBuf, BuildError> {
        let report_path = artifacts.join("report.json");
        let json = serde_json::to_vec_pretty(self).map_err(|source| BuildError::Json {
            path: report_path.clone(),
            source,
        })?;
        let tmp = artifacts.join(".report.json.tmp");
        std::fs::write(&tmp, json).map_err(file_err(&tmp))?;
        std::fs::rename(&tmp, &report_path).map_err(file_err(&report_path))?;
        Ok(report_path)
    }

    /// Whether verification ran and every probe answered as the original did.
    pub fn verified(&self) -> Option<bool> {
        self.verification.as_ref().map(Verification::ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_size_is_never_a_tar_size() {
        let layer = |size, compression| pare_image::LayerDescriptor {
            digest: "sha256:x".into(),
            diff_id: None,
            compressed_size: Some(size),
            media_type: String::new(),
            compression,
        };
        use pare_image::Compression::{Gzip, None as Plain};
        // An OCI layout of gzip layers: the manifest's sizes are compressed sizes.
        assert_eq!(
            source_compressed(&[layer(10, Gzip), layer(5, Gzip)], false),
            (Some(15), None)
        );
        // A docker-archive's layers are plain tars: their size is not a compressed size.
        let (size, note) = source_compressed(&[layer(10, Gzip), layer(500, Plain)], false);
        assert_eq!(size, None);
        assert!(note.unwrap().contains("not compressed"));
        // The daemon keeps no compressed form.
        let (size, note) = source_compressed(&[layer(500, Plain)], true);
        assert_eq!(size, None);
        assert!(note.unwrap().contains("daemon"));
    }

    #[test]
    fn surface_removed_is_what_pare_diff_finds_lost_less_what_is_left() {
        use pare_xray::{ModeFinding, ToolFinding};
        let tool = |path: &str, link: Option<&str>| ToolFinding {
            path: path.parse().unwrap(),
            name: path.rsplit('/').next().unwrap().into(),
            link: link.map(Into::into),
        };
        let setuid = |path: &str, mode: &str| ModeFinding {
            path: path.parse().unwrap(),
            mode: mode.into(),
            uid: 0,
            gid: 0,
            kind: pare_layerfs::Kind::File,
        };
        let before = Surface {
            shells: vec![tool("/bin/bash", None), tool("/bin/sh", Some("dash"))],
            package_managers: vec![tool("/usr/bin/apt-get", None)],
            setuid: vec![
                setuid("/usr/bin/su", "4755"),
                setuid("/usr/lib/helper", "4755"),
            ],
            capabilities: vec!["/usr/bin/ping".parse().unwrap()],
            runs_as_root: true,
            exposed_ports: vec!["80/tcp".into()],
            ..Default::default()
        };
        // The slim image keeps /bin/sh (another link target) and the helper (another mode):
        // neither counts as removed. Non-file findings (root, ports) are never listed.
        let after = Surface {
            shells: vec![tool("/bin/sh", Some("busybox"))],
            setuid: vec![setuid("/usr/lib/helper", "4750")],
            runs_as_root: false,
            ..Default::default()
        };
        let item = |category: &str, path: &str| SurfaceItem {
            category: category.into(),
            path: path.parse().unwrap(),
        };
        let (removed, kept) = surface_change(&before, &after);
        assert_eq!(
            removed,
            vec![
                item("capability", "/usr/bin/ping"),
                item("package_manager", "/usr/bin/apt-get"),
                item("setuid", "/usr/bin/su"),
                item("shell", "/bin/bash"),
            ]
        );
        assert_eq!(
            kept,
            vec![item("setuid", "/usr/lib/helper"), item("shell", "/bin/sh")]
        );
    }
}
