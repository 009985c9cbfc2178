//! `report.json` and its text rendering.

use std::collections::BTreeSet;
use std::path::PathBuf;

use pare_select::Selection;
use pare_trace::Profile;
use pare_verify::Verification;
use pare_write::WrittenImage;
use pare_xray::Report as Xray;
use serde::{Deserialize, Serialize};

/// Time spent in one phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub phase: String,
    pub seconds: f64,
}

/// Sizes and counts of one image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageSummary {
    pub reference: String,
    /// Bytes of the files visible in the final filesystem.
    pub size: Option<u64>,
    /// Sum of the stored (compressed) layer sizes, when known.
    pub compressed_size: Option<u64>,
    /// Visible filesystem entries (files, directories, links).
    pub entries: Option<u64>,
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
    pub path: String,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildReport {
    pub schema_version: u32,
    pub source: ImageSummary,
    pub slim: ImageSummary,
    pub source_config_digest: String,
    /// The slim image's config digest (Docker's image ID) and manifest digest.
    pub slim_config_digest: String,
    pub slim_manifest_digest: String,
    pub runtime: String,
    /// Files the trace saw, and paths kept in the end.
    pub traced_files: usize,
    pub kept_paths: usize,
    /// Shrink factor of the visible bytes (source / slim).
    pub reduction: Option<f64>,
    pub surface_removed: Vec<SurfaceItem>,
    /// Findings still present in the slim image.
    pub surface_kept: Vec<SurfaceItem>,
    pub verification: Option<Verification>,
    pub timings: Vec<PhaseTiming>,
    pub total_seconds: f64,
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
    pub before: Option<&'a Xray>,
    pub after: Option<&'a Xray>,
    pub source_compressed: Option<u64>,
    pub timings: Vec<PhaseTiming>,
    pub total_seconds: f64,
    pub artifacts: PathBuf,
}

fn surface_items(x: &Xray) -> BTreeSet<SurfaceItem> {
    let s = &x.surface;
    let mut out = BTreeSet::new();
    let mut add = |category: &str, path: &str| {
        out.insert(SurfaceItem {
            category: category.into(),
            path: path.into(),
        });
    };
    s.shells.iter().for_each(|f| add("shell", &f.path));
    s.package_managers
        .iter()
        .for_each(|f| add("package_manager", &f.path));
    s.build_tools
        .iter()
        .for_each(|f| add("build_tool", &f.path));
    s.network_tools
        .iter()
        .for_each(|f| add("network_tool", &f.path));
    s.setuid.iter().for_each(|f| add("setuid", &f.path));
    s.setgid.iter().for_each(|f| add("setgid", &f.path));
    s.world_writable
        .iter()
        .for_each(|f| add("world_writable", &f.path));
    s.capabilities.iter().for_each(|p| add("capability", p));
    s.secret_files
        .iter()
        .for_each(|f| add("secret_file", &f.path));
    out
}

fn summary(reference: &str, x: Option<&Xray>) -> ImageSummary {
    match x {
        Some(x) => ImageSummary {
            reference: reference.to_string(),
            size: Some(x.final_size),
            compressed_size: x.compressed_size,
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

impl BuildReport {
    pub(crate) fn new(i: Inputs<'_>) -> Self {
        let mut source = summary(&i.source, i.before);
        if source.compressed_size.is_none() {
            source.compressed_size = i.source_compressed;
        }
        let mut slim = summary(&i.slim, i.after);
        slim.compressed_size = Some(i.written.layer.size);
        if slim.size.is_none() {
            slim.size = Some(i.written.layer.uncompressed_size);
        }
        let (removed, kept) = match (i.before, i.after) {
            (Some(b), Some(a)) => {
                let before = surface_items(b);
                let after = surface_items(a);
                (
                    before.difference(&after).cloned().collect(),
                    after.into_iter().collect(),
                )
            }
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
            slim_config_digest: i.written.config_digest.clone(),
            slim_manifest_digest: i.written.manifest_digest.clone(),
            runtime: i.runtime,
            traced_files: i.profile.sensor.files.values().filter(|r| r.found).count(),
            kept_paths: i.selection.entries.len(),
            reduction,
            surface_removed: removed,
            surface_kept: kept,
            verification: i.verification,
            timings: i.timings,
            total_seconds: i.total_seconds,
            artifacts: i.artifacts,
            selection: i.selection,
        }
    }

    /// Whether verification ran and every probe answered as the original did.
    pub fn verified(&self) -> Option<bool> {
        self.verification.as_ref().map(Verification::ok)
    }
}

/// `12.3 MB` style sizes (decimal units, as registries and `docker images` show).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn opt_size(v: Option<u64>) -> String {
    v.map(human).unwrap_or_else(|| "?".into())
}

/// The human summary printed after a build.
pub fn render_text(r: &BuildReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "source  {}", r.source.reference);
    let _ = writeln!(
        s,
        "slim    {}  (image ID {})",
        r.slim.reference, r.slim_config_digest
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "                 {:>12} {:>12}", "original", "slim");
    let _ = writeln!(
        s,
        "size             {:>12} {:>12}",
        opt_size(r.source.size),
        opt_size(r.slim.size)
    );
    let _ = writeln!(
        s,
        "compressed       {:>12} {:>12}",
        opt_size(r.source.compressed_size),
        opt_size(r.slim.compressed_size)
    );
    let count = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
    let _ = writeln!(
        s,
        "entries          {:>12} {:>12}",
        count(r.source.entries),
        count(r.slim.entries)
    );
    let _ = writeln!(
        s,
        "surface findings {:>12} {:>12}",
        count(r.source.surface_findings.map(|n| n as u64)),
        count(r.slim.surface_findings.map(|n| n as u64))
    );
    if let Some(x) = r.reduction {
        let _ = writeln!(s, "reduction        {x:.1}×");
    }
    let _ = writeln!(
        s,
        "traced files {}, kept paths {}",
        r.traced_files, r.kept_paths
    );
    if !r.surface_removed.is_empty() {
        let mut by_cat: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for i in &r.surface_removed {
            by_cat.entry(&i.category).or_default().push(&i.path);
        }
        let _ = writeln!(s, "\nattack surface removed:");
        for (cat, paths) in by_cat {
            let shown: Vec<&str> = paths.iter().take(6).copied().collect();
            let more = if paths.len() > shown.len() {
                format!(" … (+{})", paths.len() - shown.len())
            } else {
                String::new()
            };
            let _ = writeln!(s, "  {cat:<16} {}{more}", shown.join(" "));
        }
    }
    if let Some(v) = &r.verification {
        let _ = writeln!(
            s,
            "\nverification ({}):",
            if v.ok() { "passed" } else { "FAILED" }
        );
        if let Some(e) = &v.early_exit {
            let _ = writeln!(s, "  the slim image's app {e}");
        }
        for p in &v.probes {
            let mark = if p.ok { "ok  " } else { "FAIL" };
            let _ = writeln!(s, "  {mark} {:<40} {}", p.probe, p.actual);
            if !p.volatile.is_empty() {
                let _ = writeln!(
                    s,
                    "       {} differs between two runs of the original too: not compared",
                    p.volatile.join(", ")
                );
            } else if let Some(d) = &p.difference {
                let _ = writeln!(s, "       {d}");
            }
        }
        if !v.stderr_tail.is_empty() {
            let _ = writeln!(s, "  last lines of the slim image's stderr:");
            for l in &v.stderr_tail {
                let _ = writeln!(s, "    | {l}");
            }
        }
        if !v.likely_missing.is_empty() {
            let _ = writeln!(
                s,
                "  hint: likely missing files (the original used them, the slim image lacks them):"
            );
            for m in v.likely_missing.iter().take(10) {
                match r.selection.excluded_by(m) {
                    Some(glob) => {
                        let _ = writeln!(s, "    {m}  (removed by --exclude {glob})");
                    }
                    None => {
                        let _ = writeln!(s, "    {m}");
                    }
                }
            }
            let _ = writeln!(
                s,
                "  keep them with --include-path (or drop the --exclude that removed them)"
            );
        }
    } else {
        let _ = writeln!(s, "\nverification: skipped");
    }
    let _ = writeln!(s);
    let phases: Vec<String> = r
        .timings
        .iter()
        .map(|t| format!("{} {:.1}s", t.phase, t.seconds))
        .collect();
    let _ = writeln!(s, "time {:.1}s: {}", r.total_seconds, phases.join(", "));
    let _ = writeln!(
        s,
        "artifacts in {} (report.json, profile.json, seccomp.json, apparmor.profile)",
        r.artifacts.display()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(999), "999 B");
        assert_eq!(human(8_800_000), "8.8 MB");
        assert_eq!(human(1_500_000_000), "1.5 GB");
    }
}
