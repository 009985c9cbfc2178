//! The text summary printed after a build, from its [`BuildReport`].

use crate::{BuildReport, SurfaceItem};

/// `12.3 MB` style sizes (decimal units, as registries and `docker images` show), always
/// with one decimal.
fn human(bytes: u64) -> String {
    pare_xray::render::format_bytes(bytes, pare_xray::render::Decimals::One)
}

fn opt_size(v: Option<u64>) -> String {
    v.map(human).unwrap_or_else(|| "?".into())
}

/// Surface items grouped by category, paths in order.
fn by_category(items: &[SurfaceItem]) -> std::collections::BTreeMap<&str, Vec<&str>> {
    let mut by_cat: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for i in items {
        by_cat.entry(&i.category).or_default().push(&i.path);
    }
    by_cat
}

/// The human summary printed after a build, wrapped at spaces to `width` columns (see
/// [`pare_xray::fit`]).
pub fn render_text(r: &BuildReport, width: usize) -> String {
    let mut out = String::new();
    for line in summary_lines(r, width).lines() {
        out.push_str(&pare_xray::fit::wrap(line, width));
    }
    out
}

fn summary_lines(r: &BuildReport, width: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    // References keep their end (the tag) when cut.
    let reference = |r: &str| pare_xray::fit::cut_start(r, width.saturating_sub(8));
    let _ = writeln!(s, "source  {}", reference(&r.source.reference));
    let _ = writeln!(s, "slim    {}", reference(&r.slim.reference));
    let _ = writeln!(s, "ID      {}", r.slim_config_digest);
    if !r.created.is_empty() {
        let _ = writeln!(s, "created {}  ({})", r.created, r.epoch_from);
    }
    let _ = writeln!(s);
    let count = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
    let rows: [(&str, String, String); 6] = [
        (
            "size (docker images)",
            opt_size(r.source.size),
            opt_size(r.slim.size),
        ),
        (
            "visible files",
            opt_size(r.source.visible_size),
            opt_size(r.slim.visible_size),
        ),
        (
            "compressed (gzip)",
            opt_size(r.source.compressed_size),
            opt_size(r.slim.compressed_size),
        ),
        (
            "layers",
            count(r.source.layers.map(|n| n as u64)),
            count(r.slim.layers.map(|n| n as u64)),
        ),
        ("entries", count(r.source.entries), count(r.slim.entries)),
        (
            "attack surface",
            count(r.source.surface_findings.map(|n| n as u64)),
            count(r.slim.surface_findings.map(|n| n as u64)),
        ),
    ];
    let _ = writeln!(s, "{:<20} {:>10} {:>10}", "", "original", "slim");
    for (label, a, b) in rows {
        let _ = writeln!(s, "{label:<20} {a:>10} {b:>10}");
    }
    if let Some(x) = r.reduction {
        let _ = writeln!(s, "reduction            {x:.1}× (by docker images size)");
    }
    let _ = writeln!(
        s,
        "size counts every layer's copy of a file; visible files, only what a container sees"
    );
    for (which, note) in [
        ("original", &r.source.compressed_note),
        ("slim", &r.slim.compressed_note),
    ] {
        if let Some(note) = note {
            let _ = writeln!(
                s,
                "compressed ? for the {which}: {note} (push it or `skopeo copy` to an oci: layout to measure)"
            );
        }
    }
    let _ = writeln!(
        s,
        "traced {} the app opened; kept {} with their libraries, parents and config",
        pare_xray::render::plural(r.traced_files as u64, "file"),
        pare_xray::render::plural(r.kept_paths as u64, "entry"),
    );
    if !r.surface_removed.is_empty() {
        let _ = writeln!(s, "\nattack surface removed:");
        for (cat, paths) in by_category(&r.surface_removed) {
            let shown: Vec<&str> = paths.iter().take(6).copied().collect();
            let more = if paths.len() > shown.len() {
                format!(" … (+{})", paths.len() - shown.len())
            } else {
                String::new()
            };
            let _ = writeln!(s, "  {cat:<16} {}{more}", shown.join(" "));
        }
    }
    if !r.surface_kept.is_empty() {
        let _ = writeln!(
            s,
            "\nattack surface left (the app uses it, or a flag kept it):"
        );
        for (cat, paths) in by_category(&r.surface_kept) {
            let _ = writeln!(s, "  {cat:<16} {}", paths.join(" "));
        }
    }
    if let Some(how) = &r.readiness {
        let _ = writeln!(s, "\nreadiness: {how}");
    }
    for f in &r.findings {
        let _ = writeln!(s, "finding: {f}");
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
            if !p.compared.is_empty() {
                let _ = writeln!(s, "       compared: {}", p.compared);
            }
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
    if !r.unexercised.is_empty() {
        let _ = writeln!(
            s,
            "\nnot exercised (no probe reached them, so verification says nothing about them):"
        );
        for u in &r.unexercised {
            let (them, n) = if u.files == 1 {
                ("it", pare_xray::render::plural(1, "file"))
            } else {
                ("them", pare_xray::render::plural(u.files, "file"))
            };
            let _ = writeln!(
                s,
                "  {n} under {} dropped: nothing asked for {them};",
                u.dir
            );
            let more = if u.files > u.examples.len() as u64 {
                ", …"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "    keep {them} with --include-path {}  ({}, {}: {}{more})",
                u.dir,
                u.why,
                human(u.bytes),
                u.examples.join(", ")
            );
        }
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
