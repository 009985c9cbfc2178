//! Renderers: human tables (comfy-table) and JSON.

use std::fmt::Write as _;

use comfy_table::{
    Attribute, Cell, CellAlignment, Color, ContentArrangement, Table, TableComponent, presets,
};

use crate::ci::{RuleOutcome, RuleStatus};
use crate::{ModeFinding, Report, ToolFinding};

/// SI sizes like dive's: `0 B`, `999 B`, `1.2 kB`, `34 MB`, `1.5 GB`.
pub fn human_bytes(n: u64) -> String {
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
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[i])
    } else {
        format!("{v:.0} {}", UNITS[i])
    }
}

/// The report as pretty JSON (see `docs/xray-json.md`).
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

struct Style {
    color: bool,
}

impl Style {
    fn table(&self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_HORIZONTAL_ONLY);
        for c in [
            TableComponent::HorizontalLines,
            TableComponent::MiddleIntersections,
            TableComponent::LeftBorderIntersections,
            TableComponent::RightBorderIntersections,
        ] {
            t.remove_style(c);
        }
        t.set_content_arrangement(ContentArrangement::Dynamic);
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t.set_header(header.iter().map(|h| self.head(h)).collect::<Vec<_>>());
        t
    }

    fn head(&self, s: &str) -> Cell {
        let c = Cell::new(s);
        if self.color {
            c.add_attribute(Attribute::Bold)
        } else {
            c
        }
    }

    fn colored(&self, s: impl ToString, color: Color) -> Cell {
        let c = Cell::new(s.to_string());
        if self.color { c.fg(color) } else { c }
    }

    fn right(&self, s: impl ToString) -> Cell {
        Cell::new(s.to_string()).set_alignment(CellAlignment::Right)
    }

    fn title(&self, out: &mut String, s: &str) {
        if self.color {
            let _ = writeln!(out, "\n\x1b[1m{s}\x1b[0m");
        } else {
            let _ = writeln!(out, "\n{s}");
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    let s = s.replace(['\n', '\t'], " ");
    if s.chars().count() <= n {
        s
    } else {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    }
}

fn pct(r: f64) -> String {
    format!("{:.1} %", r * 100.0)
}

fn tools(list: &[ToolFinding]) -> String {
    list.iter()
        .map(|t| match &t.link {
            Some(l) => format!("{} → {l}", t.path),
            None => t.path.clone(),
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

/// The report as human tables. `color` adds ANSI styling (use it only on a TTY).
pub fn table(report: &Report, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    let r = report;
    let img = &r.image;
    let _ = writeln!(
        out,
        "Image      {}  ({}, {}/{})",
        img.name, img.source, img.os, img.architecture
    );
    let _ = writeln!(out, "Config     {}", img.config_digest);
    if let Some(os) = &r.os {
        let _ = writeln!(
            out,
            "OS         {}",
            os.pretty_name.clone().unwrap_or_else(|| format!(
                "{} {}",
                os.id,
                os.version_id.clone().unwrap_or_default()
            ))
        );
    }
    let _ = writeln!(
        out,
        "Size       {} in {} layers{}, {} visible ({} entries)",
        human_bytes(r.total_size),
        r.layers.len(),
        r.compressed_size
            .map(|c| format!(" ({} stored)", human_bytes(c)))
            .unwrap_or_default(),
        human_bytes(r.final_size),
        r.entries
    );
    let eff = format!("{:.2} %", r.efficiency * 100.0);
    let eff = if color && r.efficiency < 0.9 {
        format!("\x1b[31m{eff}\x1b[0m")
    } else {
        eff
    };
    let _ = writeln!(
        out,
        "Waste      {} wasted, efficiency {eff}, user wasted {}",
        human_bytes(r.wasted_bytes),
        pct(r.user_wasted_percent)
    );

    st.title(&mut out, "Layers");
    let mut t = st.table(&[
        "#",
        "Size",
        "Stored",
        "Added",
        "Modified",
        "Deleted",
        "Wasted",
        "Instruction",
    ]);
    for l in &r.layers {
        t.add_row(vec![
            st.right(l.index),
            st.right(human_bytes(l.size)),
            st.right(
                l.compressed_size
                    .map(human_bytes)
                    .unwrap_or_else(|| "-".into()),
            ),
            st.right(format!("{} ({})", l.added, human_bytes(l.added_bytes))),
            st.right(format!(
                "{} ({})",
                l.modified,
                human_bytes(l.modified_bytes)
            )),
            st.right(format!("{} ({})", l.deleted, human_bytes(l.deleted_bytes))),
            if l.wasted_bytes > 0 {
                st.colored(human_bytes(l.wasted_bytes), Color::Yellow)
            } else {
                st.right("0 B")
            },
            Cell::new(truncate(&l.instruction, 70)),
        ]);
    }
    let _ = writeln!(out, "{t}");

    if !r.wasted_files.is_empty() {
        st.title(&mut out, "Wasted space (superseded copies)");
        let mut t = st.table(&["Wasted", "Copies", "Path", "Now"]);
        for w in &r.wasted_files {
            t.add_row(vec![
                st.right(human_bytes(w.wasted_bytes)),
                st.right(w.copies),
                Cell::new(&w.path),
                Cell::new(if w.visible { "overwritten" } else { "deleted" }),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }

    st.title(&mut out, "Largest files");
    let mut t = st.table(&["Size", "Layer", "Path"]);
    for f in r.largest_files.iter().take(10) {
        t.add_row(vec![
            st.right(human_bytes(f.size)),
            st.right(f.layer),
            Cell::new(&f.path),
        ]);
    }
    let _ = writeln!(out, "{t}");

    st.title(&mut out, "Largest directories");
    let mut t = st.table(&["Size", "Files", "Path"]);
    for d in r.largest_dirs.iter().take(10) {
        t.add_row(vec![
            st.right(human_bytes(d.size)),
            st.right(d.files),
            Cell::new(&d.path),
        ]);
    }
    let _ = writeln!(out, "{t}");

    if !r.duplicates.is_empty() {
        st.title(
            &mut out,
            &format!(
                "Duplicate contents ({} could be saved)",
                human_bytes(r.duplicate_bytes)
            ),
        );
        let mut t = st.table(&["Size", "Copies", "Paths"]);
        for d in r.duplicates.iter().take(10) {
            let mut paths = d
                .paths
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if d.paths.len() > 3 {
                let _ = write!(paths, ", … ({} more)", d.paths.len() - 3);
            }
            t.add_row(vec![
                st.right(human_bytes(d.size)),
                st.right(d.paths.len()),
                Cell::new(paths),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }

    st.title(&mut out, "Attack surface");
    let s = &r.surface;
    let mut t = st.table(&["Check", "Findings"]);
    let mut row = |name: &str, n: usize, detail: String, bad: bool| {
        let count = if n == 0 {
            "none".to_string()
        } else {
            truncate(&format!("{n}: {detail}"), 110)
        };
        t.add_row(vec![
            Cell::new(name),
            if n > 0 && bad {
                st.colored(count, Color::Red)
            } else {
                Cell::new(count)
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
    t.add_row(vec![
        Cell::new("User"),
        if s.runs_as_root {
            st.colored(
                format!("root ({})", s.user.as_deref().unwrap_or("not set")),
                Color::Red,
            )
        } else {
            Cell::new(s.user.clone().unwrap_or_default())
        },
    ]);
    t.add_row(vec![
        Cell::new("Exposed ports"),
        Cell::new(if s.exposed_ports.is_empty() {
            "none".into()
        } else {
            s.exposed_ports.join(", ")
        }),
    ]);
    t.add_row(vec![
        Cell::new("HEALTHCHECK"),
        Cell::new(match s.healthcheck {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }),
    ]);
    let _ = writeln!(out, "{t}");

    let p = &r.packages;
    let _ = writeln!(
        out,
        "\nPackages   {} dpkg, {} apk, {} python, {} node",
        p.dpkg.len(),
        p.apk.len(),
        p.python.len(),
        p.node.len()
    );
    st.title(&mut out, "Dockerfile (from history)");
    for line in &r.dockerfile {
        let _ = writeln!(out, "  {}", truncate(line, 160));
    }
    if let Some(ci) = &r.ci {
        out.push_str(&ci_table(ci, color));
    }
    out
}

/// The CI rule outcomes as a short table.
pub fn ci_table(outcomes: &[RuleOutcome], color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    st.title(&mut out, "CI rules");
    let mut t = st.table(&["Rule", "Result", "Detail"]);
    for o in outcomes {
        let (txt, c) = match o.status {
            RuleStatus::Pass => ("PASS", Color::Green),
            RuleStatus::Fail => ("FAIL", Color::Red),
            RuleStatus::Disabled => ("SKIP", Color::Grey),
        };
        t.add_row(vec![
            Cell::new(&o.rule),
            st.colored(txt, c),
            Cell::new(&o.message),
        ]);
    }
    let _ = writeln!(out, "{t}");
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
    }
}
