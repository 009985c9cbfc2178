//! Renderers: human tables (comfy-table) and JSON.

use std::fmt::Write as _;

use comfy_table::Color;

use crate::fit::{Fit, Grid, GridCell as C, cut_end};

use crate::ci::{RuleOutcome, RuleStatus};
use crate::{ModeFinding, Report, ToolFinding};

/// SI sizes like dive's: `0 B`, `999 B`, `1.2 kB`, `34 MB`, `1.5 GB`
/// ([`format_bytes`] with [`Decimals::Dive`]).
pub fn human_bytes(n: u64) -> String {
    format_bytes(n, Decimals::Dive)
}

/// How many decimals [`format_bytes`] gives a size of 1 kB or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decimals {
    /// One under 10 units, none above (`1.2 kB`, `75 MB`), as dive shows sizes.
    Dive,
    /// Always one (`48.0 kB`, `300.1 MB`), as the build summary shows them.
    One,
}

/// A byte count in SI units (powers of 1000, as registries and `docker images` show):
/// `999 B` below 1 kB, then `kB`, `MB`, `GB`, `TB`, `PB` with `decimals`.
pub fn format_bytes(n: u64, decimals: Decimals) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if v < 10.0 || decimals == Decimals::One {
        format!("{v:.1} {}", UNITS[i])
    } else {
        format!("{v:.0} {}", UNITS[i])
    }
}

/// `1 layer`, `3 layers`, `2 entries`: a count with its noun, plural when it is not 1
/// (regular English nouns: a consonant before a final `y` makes `ies`).
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    match noun.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

/// The report as pretty JSON (see `docs/xray-json.md`): the bytes [`write_json`] writes.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Streams the report to `out` as pretty JSON (no final newline) while serializing it, so the
/// whole document is never held as text; give it a buffered writer. A failed write (a closed
/// pipe) comes back as that `io::Error`, its kind kept.
pub fn write_json<W: std::io::Write>(report: &Report, out: W) -> std::io::Result<()> {
    serde_json::to_writer_pretty(out, report).map_err(std::io::Error::from)
}

struct Style {
    color: bool,
}

impl Style {
    fn title(&self, out: &mut String, s: &str) {
        if self.color {
            let _ = writeln!(out, "\n\x1b[1m{s}\x1b[0m");
        } else {
            let _ = writeln!(out, "\n{s}");
        }
    }
}

fn pct(r: f64) -> String {
    format!("{:.1} %", r * 100.0)
}

fn tools(list: &[ToolFinding]) -> String {
    list.iter()
        .map(|t| match &t.link {
            Some(l) => format!("{} → {l}", t.path),
            None => t.path.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn paths(list: &[ModeFinding]) -> String {
    list.iter()
        .map(|m| m.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report as human tables, `width` columns wide (see [`crate::fit`]). `color` adds ANSI
/// styling (use it only on a TTY).
pub fn table(report: &Report, color: bool, width: usize) -> String {
    let st = Style { color };
    let mut out = String::new();
    let r = report;
    let img = &r.image;
    // The summary lines: labels 8 wide so that `Config  sha256:…` (79) fits 80 columns.
    let mut line = |label: &str, text: String| {
        let _ = writeln!(
            out,
            "{label:<8}{}",
            cut_end(&text, width.saturating_sub(8).max(20))
        );
    };
    line(
        "Image",
        format!(
            "{}  ({}, {}/{})",
            img.name, img.source, img.os, img.architecture
        ),
    );
    line("Config", img.config_digest.clone());
    if let Some(os) = &r.os {
        line(
            "OS",
            os.pretty_name.clone().unwrap_or_else(|| {
                format!("{} {}", os.id, os.version_id.clone().unwrap_or_default())
            }),
        );
    }
    line(
        "Size",
        format!(
            "{} in {}{}, {} visible ({})",
            human_bytes(r.total_size),
            plural(r.layers.len() as u64, "layer"),
            r.compressed_size
                .map(|c| format!(" ({} stored)", human_bytes(c)))
                .unwrap_or_default(),
            human_bytes(r.final_size),
            plural(r.entries, "entry")
        ),
    );
    let eff = format!("{:.2} %", r.efficiency * 100.0);
    let waste = cut_end(
        &format!(
            "{} wasted, efficiency {eff}, user wasted {}",
            human_bytes(r.wasted_bytes),
            pct(r.user_wasted_percent)
        ),
        width.saturating_sub(8).max(20),
    );
    // Red below dive's default 90 %, on a terminal.
    let waste = if color && r.efficiency < 0.9 {
        waste.replacen(&eff, &format!("\x1b[31m{eff}\x1b[0m"), 1)
    } else {
        waste
    };
    let _ = writeln!(out, "Waste   {waste}");

    st.title(&mut out, "Layers");
    // A daemon keeps no stored (compressed) form: no column of dashes then, which leaves
    // the Instruction column room on a narrow terminal.
    let stored = r.layers.iter().any(|l| l.compressed_size.is_some());
    let mut columns = vec![("#", Fit::Keep), ("Size", Fit::Keep)];
    if stored {
        columns.push(("Stored", Fit::Keep));
    }
    columns.extend([
        ("Added", Fit::Keep),
        ("Modified", Fit::Keep),
        ("Deleted", Fit::Keep),
        ("Wasted", Fit::Keep),
        ("Instruction", Fit::End),
    ]);
    let mut t = Grid::new(&columns, color);
    for l in &r.layers {
        let wasted = C::right(human_bytes(l.wasted_bytes));
        let mut row = vec![C::right(l.index), C::right(human_bytes(l.size))];
        if stored {
            row.push(C::right(
                l.compressed_size
                    .map(human_bytes)
                    .unwrap_or_else(|| "-".into()),
            ));
        }
        row.extend([
            C::right(format!("{} ({})", l.added, human_bytes(l.added_bytes))),
            C::right(format!(
                "{} ({})",
                l.modified,
                human_bytes(l.modified_bytes)
            )),
            C::right(format!("{} ({})", l.deleted, human_bytes(l.deleted_bytes))),
            if l.wasted_bytes > 0 {
                wasted.color(Color::Yellow)
            } else {
                wasted
            },
            C::left(&l.instruction),
        ]);
        t.row(row);
    }
    out.push_str(&t.render(width));

    if !r.wasted_files.is_empty() {
        st.title(&mut out, "Wasted space (superseded copies)");
        let mut t = Grid::new(
            &[
                ("Wasted", Fit::Keep),
                ("Copies", Fit::Keep),
                ("Path", Fit::Start),
                ("Now", Fit::Keep),
            ],
            color,
        );
        for w in &r.wasted_files {
            t.row(vec![
                C::right(human_bytes(w.wasted_bytes)),
                C::right(w.copies),
                C::left(&w.path),
                C::left(if w.visible { "overwritten" } else { "deleted" }),
            ]);
        }
        out.push_str(&t.render(width));
    }

    st.title(&mut out, "Largest files");
    let mut t = Grid::new(
        &[
            ("Size", Fit::Keep),
            ("Layer", Fit::Keep),
            ("Path", Fit::Start),
        ],
        color,
    );
    for f in r.largest_files.iter().take(10) {
        t.row(vec![
            C::right(human_bytes(f.size)),
            C::right(f.layer),
            C::left(&f.path),
        ]);
    }
    out.push_str(&t.render(width));

    st.title(&mut out, "Largest directories");
    let mut t = Grid::new(
        &[
            ("Size", Fit::Keep),
            ("Files", Fit::Keep),
            ("Path", Fit::Start),
        ],
        color,
    );
    for d in r.largest_dirs.iter().take(10) {
        t.row(vec![
            C::right(human_bytes(d.size)),
            C::right(d.files),
            C::left(&d.path),
        ]);
    }
    out.push_str(&t.render(width));

    if !r.duplicates.is_empty() {
        st.title(
            &mut out,
            &format!(
                "Duplicate contents ({} could be saved)",
                human_bytes(r.duplicate_bytes)
            ),
        );
        let mut t = Grid::new(
            &[
                ("Size", Fit::Keep),
                ("Copies", Fit::Keep),
                ("Paths", Fit::End),
            ],
            color,
        );
        for d in r.duplicates.iter().take(10) {
            let mut paths = d
                .paths
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if d.copies() > 3 {
                let _ = write!(paths, ", … ({} more)", d.copies() - 3);
            }
            t.row(vec![
                C::right(human_bytes(d.size)),
                C::right(d.copies()),
                C::left(paths),
            ]);
        }
        out.push_str(&t.render(width));
    }

    st.title(&mut out, "Attack surface");
    let s = &r.surface;
    let mut t = Grid::new(&[("Check", Fit::Keep), ("Findings", Fit::End)], color);
    let mut row = |name: &str, n: usize, detail: String, bad: bool| {
        let count = if n == 0 {
            C::left("none")
        } else {
            C::left(format!("{n}: {detail}"))
        };
        t.row(vec![
            C::left(name),
            if n > 0 && bad {
                count.color(Color::Red)
            } else {
                count
            },
        ]);
    };
    row("Shells", s.shells.len(), tools(&s.shells), true);
    row(
        "Package managers",
        s.package_managers.len(),
        tools(&s.package_managers),
        true,
    );
    row(
        "Compilers, build tools",
        s.build_tools.len(),
        tools(&s.build_tools),
        true,
    );
    row(
        "Network tools",
        s.network_tools.len(),
        tools(&s.network_tools),
        true,
    );
    row("Setuid", s.setuid.len(), paths(&s.setuid), true);
    row("Setgid", s.setgid.len(), paths(&s.setgid), true);
    row(
        "World-writable (no sticky bit)",
        s.world_writable.len(),
        paths(&s.world_writable),
        true,
    );
    row(
        "File capabilities",
        s.capabilities.len(),
        s.capabilities.join(", "),
        true,
    );
    row(
        "Secret files",
        s.secret_files.len(),
        s.secret_files
            .iter()
            .map(|p| format!("{} ({})", p.path, p.reason))
            .collect::<Vec<_>>()
            .join(", "),
        true,
    );
    row(
        "Secret env vars",
        s.secret_env.len(),
        s.secret_env
            .iter()
            .map(|e| format!("{} ({})", e.name, e.reason))
            .collect::<Vec<_>>()
            .join(", "),
        true,
    );
    t.row(vec![
        C::left("User"),
        if s.runs_as_root {
            C::left(format!("root ({})", s.user.as_deref().unwrap_or("not set"))).color(Color::Red)
        } else {
            C::left(s.user.clone().unwrap_or_default())
        },
    ]);
    t.row(vec![
        C::left("Exposed ports"),
        C::left(if s.exposed_ports.is_empty() {
            "none".into()
        } else {
            s.exposed_ports.join(", ")
        }),
    ]);
    t.row(vec![
        C::left("HEALTHCHECK"),
        C::left(match s.healthcheck {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }),
    ]);
    out.push_str(&t.render(width));

    let p = &r.packages;
    let _ = writeln!(
        out,
        "\nPackages {} dpkg, {} apk, {} python, {} node",
        p.dpkg.len(),
        p.apk.len(),
        p.python.len(),
        p.node.len()
    );
    st.title(&mut out, "Dockerfile (from history)");
    for line in &r.dockerfile {
        let _ = writeln!(out, "  {}", cut_end(line, width.saturating_sub(2)));
    }
    if let Some(ci) = &r.ci {
        out.push_str(&ci_table(ci, color, width));
    }
    out
}

/// The CI rule outcomes as a short table, `width` columns wide.
pub fn ci_table(outcomes: &[RuleOutcome], color: bool, width: usize) -> String {
    let st = Style { color };
    let mut out = String::new();
    st.title(&mut out, "CI rules");
    let mut t = Grid::new(
        &[
            ("Rule", Fit::Keep),
            ("Result", Fit::Keep),
            ("Detail", Fit::End),
        ],
        color,
    );
    for o in outcomes {
        let (txt, c) = match o.status {
            RuleStatus::Pass => ("PASS", Color::Green),
            RuleStatus::Fail => ("FAIL", Color::Red),
            RuleStatus::Disabled => ("SKIP", Color::Grey),
        };
        t.row(vec![
            C::left(&o.rule),
            C::left(txt).color(c),
            C::left(&o.message),
        ]);
    }
    out.push_str(&t.render(width));
    let _ = writeln!(
        out,
        "Result: {}",
        if crate::ci::passed(outcomes) {
            "PASS"
        } else {
            "FAIL"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1234), "1.2 kB");
        assert_eq!(human_bytes(74_800_000), "75 MB");
        assert_eq!(plural(1, "layer"), "1 layer");
        assert_eq!(plural(0, "layer"), "0 layers");
        assert_eq!(plural(2, "entry"), "2 entries");
        assert_eq!(plural(2, "key"), "2 keys");
    }
}
