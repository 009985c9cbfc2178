//! Self-contained HTML reports for `pare xray`, `pare build` and `pare diff`: one file with its
//! CSS, script and data inline (askama templates, SVG drawn by a small inline script), nothing
//! fetched from anywhere.
//!
//! Every name from an image reaches the page either through askama's HTML escaping or as JSON
//! in a `<script type="application/json">` block whose `<`, `>` and `&` are `\u` escapes, and
//! the script writes names with `textContent` only: a file named `<script>` shows as text.

mod tree;

use std::path::{Path, PathBuf};

use askama::Template;
use pare_diff::{Change, Diff, Finding};
use pare_xray::render::human_bytes;
use serde_json::Value;

pub use tree::{Mark, Tree, TreeBuilder};

/// Rows of a table listing paths stop here; the rest are in the JSON outputs.
pub const MAX_ROWS: usize = 5000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("rendering the {what} report")]
    Render {
        what: &'static str,
        #[source]
        source: askama::Error,
    },
    #[error("{path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// JSON safe inside `<script>`: no `<`, `>` or `&` that could close the element or start a
/// comment.
fn script_json(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The rendered page with every control character other than newline, tab and carriage return
/// shown as `\xNN` text (a file name holding ANSI escapes reads as what it is). The templates
/// hold none, so only names from the image change.
fn finish(html: String) -> String {
    if !html
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 16);
    for c in html.chars() {
        if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes a report.
pub fn write(path: &Path, html: &str) -> Result<(), ReportError> {
    std::fs::write(path, html).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What base.html shows of every page.
struct Head {
    version: &'static str,
    kind: &'static str,
    title: String,
    subtitle: String,
    /// The page's data (treemaps), from [`script_json`].
    data_json: String,
}

impl Head {
    fn new(kind: &'static str, title: String, subtitle: String, data: &Value) -> Self {
        Head {
            version: VERSION,
            kind,
            title,
            subtitle,
            data_json: script_json(data),
        }
    }
}

/// One bar segment of a horizontal bar chart.
pub struct Segment {
    pub x: f64,
    pub dy: u32,
    pub w: f64,
    pub h: u32,
    pub color: &'static str,
    pub title: String,
}

pub struct BarRow {
    pub y: u32,
    pub label: String,
    pub segments: Vec<Segment>,
    pub value: String,
    pub value_x: f64,
}

/// A horizontal bar chart drawn as SVG by the template (no script).
pub struct Bars {
    pub height: u32,
    pub rows: Vec<BarRow>,
    pub legend: Vec<(&'static str, &'static str)>,
}

const LABEL_W: f64 = 330.0;
const BAR_W: f64 = 560.0;

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Rows of stacked-side-by-side series: each row has one value per series, drawn as thin bars
/// one below the other, scaled to the largest value of all.
fn bars(
    rows: &[(String, Vec<f64>, String)],
    series: &[(&'static str, &'static str)],
    fmt: &dyn Fn(f64) -> String,
) -> Bars {
    let max = rows
        .iter()
        .flat_map(|r| r.1.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let bar_h = 6u32;
    let row_h = (bar_h + 1) * series.len() as u32 + 8;
    let row_h = row_h.max(18);
    let out = rows
        .iter()
        .enumerate()
        .map(|(i, (label, values, value))| {
            let y = i as u32 * row_h;
            let segments: Vec<Segment> = values
                .iter()
                .zip(series)
                .enumerate()
                .map(|(j, (v, (name, color)))| Segment {
                    x: LABEL_W,
                    dy: 2 + j as u32 * (bar_h + 1),
                    w: (v / max * BAR_W).max(if *v > 0.0 { 1.0 } else { 0.0 }),
                    h: bar_h,
                    color,
                    title: format!("{name}: {}", fmt(*v)),
                })
                .collect();
            BarRow {
                y,
                label: truncate(label, 52),
                segments,
                value: value.clone(),
                value_x: LABEL_W + BAR_W + 10.0,
            }
        })
        .collect();
    Bars {
        height: (rows.len() as u32 * row_h).max(row_h),
        rows: out,
        legend: if series.len() > 1 {
            series.to_vec()
        } else {
            Vec::new()
        },
    }
}

fn hb(v: f64) -> String {
    human_bytes(v as u64)
}

#[derive(Template)]
#[template(path = "xray.html")]
struct XrayPage {
    head: Head,
    cards: Vec<(String, &'static str)>,
    layer_bars: Bars,
    layers: Vec<(usize, String, String, String, String, String)>,
    largest: Vec<(String, String, usize)>,
    wasted: Vec<(String, String, u64)>,
    surface: Vec<Finding>,
    packages: String,
}

/// The `pare xray --html` report: the image's treemap (`tree`, from [`TreeBuilder::from_fs`]),
/// per-layer bars, largest and wasted files, attack surface and packages.
pub fn xray(report: &pare_xray::Report, tree: &Tree) -> Result<String, ReportError> {
    let data = serde_json::json!({ "trees": { "image": tree } });
    let layer_rows: Vec<(String, Vec<f64>, String)> = report
        .layers
        .iter()
        .map(|l| {
            (
                format!("#{} {}", l.index, l.instruction),
                vec![
                    l.added_bytes as f64,
                    l.modified_bytes as f64,
                    l.wasted_bytes as f64,
                ],
                human_bytes(l.size),
            )
        })
        .collect();
    let p = &report.packages;
    let page = XrayPage {
        head: Head::new(
            "xray",
            format!("pare xray: {}", report.image.name),
            format!(
                "{} · {} · {}/{}",
                report.image.source,
                report.image.config_digest,
                report.image.os,
                report.image.architecture
            ),
            &data,
        ),
        cards: vec![
            (human_bytes(report.final_size), "visible bytes"),
            (human_bytes(report.total_size), "bytes in all layers"),
            (human_bytes(report.wasted_bytes), "wasted"),
            (format!("{:.1} %", report.efficiency * 100.0), "efficiency"),
            (report.layers.len().to_string(), "layers"),
            (report.entries.to_string(), "entries"),
            (
                report.surface.findings().to_string(),
                "attack-surface findings",
            ),
        ],
        layer_bars: bars(
            &layer_rows,
            &[
                ("added", "#3f9d52"),
                ("modified", "#e0962a"),
                ("wasted", "#d9534f"),
            ],
            &hb,
        ),
        layers: report
            .layers
            .iter()
            .map(|l| {
                (
                    l.index,
                    l.instruction.clone(),
                    human_bytes(l.size),
                    human_bytes(l.added_bytes),
                    human_bytes(l.modified_bytes),
                    human_bytes(l.wasted_bytes),
                )
            })
            .collect(),
        largest: report
            .largest_files
            .iter()
            .map(|f| (f.path.clone(), human_bytes(f.size), f.layer))
            .collect(),
        wasted: report
            .wasted_files
            .iter()
            .map(|w| (w.path.clone(), human_bytes(w.wasted_bytes), w.copies))
            .collect(),
        surface: pare_diff::findings(&report.surface),
        packages: format!(
            "{} dpkg, {} apk, {} Python, {} Node packages{}",
            p.dpkg.len(),
            p.apk.len(),
            p.python.len(),
            p.node.len(),
            report
                .os
                .as_ref()
                .and_then(|o| o.pretty_name.as_ref())
                .map(|n| format!(" · {n}"))
                .unwrap_or_default()
        ),
    };
    page.render()
        .map(finish)
        .map_err(|source| ReportError::Render {
            what: "xray",
            source,
        })
}

fn class(c: Change) -> &'static str {
    match c {
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Changed => "changed",
    }
}

struct FileRow {
    class: &'static str,
    sign: char,
    path: String,
    detail: String,
}

struct DirRow {
    class: &'static str,
    path: String,
    added: u64,
    removed: u64,
    changed: u64,
    bytes: String,
}

struct FilesView {
    summary: String,
    dirs: Vec<DirRow>,
    rows: Vec<FileRow>,
    omitted: usize,
}

type Layers = (
    String,
    Vec<(&'static str, char, usize, String, String, String)>,
);
/// (row class, sign, ecosystem, name, version in A, version in B)
type PackageRow = (&'static str, char, &'static str, String, String, String);
/// (row class, sign, key, value in A, value in B)
type ConfigRow = (&'static str, char, String, String, String);

#[derive(Template)]
#[template(path = "diff.html")]
struct DiffPage {
    head: Head,
    cards: Vec<(String, &'static str)>,
    has_changes_tree: bool,
    files: Option<FilesView>,
    packages: Option<Vec<PackageRow>>,
    config: Option<Vec<ConfigRow>>,
    layers: Option<Layers>,
    surface: Option<(Vec<Finding>, Vec<Finding>)>,
}

fn json_value(v: Option<&Value>) -> String {
    match v {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn file_detail(e: &pare_diff::FileChange) -> String {
    match (&e.a, &e.b) {
        (Some(a), Some(b)) => {
            let mut parts = Vec::new();
            for f in &e.fields {
                parts.push(match *f {
                    "size" => format!("size {} → {}", human_bytes(a.size), human_bytes(b.size)),
                    "mode" => format!("mode {} → {}", a.mode, b.mode),
                    "owner" => format!("owner {}:{} → {}:{}", a.uid, a.gid, b.uid, b.gid),
                    "link" => format!(
                        "link {} → {}",
                        a.link.as_deref().unwrap_or(""),
                        b.link.as_deref().unwrap_or("")
                    ),
                    "kind" => format!("kind {:?} → {:?}", a.kind, b.kind).to_lowercase(),
                    other => format!("{other} differs"),
                });
            }
            parts.join(", ")
        }
        (Some(m), None) | (None, Some(m)) => match &m.link {
            Some(l) => format!("{:?} → {l}", m.kind).to_lowercase(),
            None => format!("{:?}, {}", m.kind, human_bytes(m.size)).to_lowercase(),
        },
        (None, None) => String::new(),
    }
}

/// Directories holding changes, top ones by changed bytes: (path, added, removed, changed, bytes).
fn changed_dirs(entries: &[pare_diff::FileChange]) -> Vec<DirRow> {
    let mut dirs: std::collections::HashMap<&str, [u64; 4]> = std::collections::HashMap::new();
    for e in entries {
        let bytes = match (&e.a, &e.b) {
            (Some(a), Some(b)) => a.size.abs_diff(b.size),
            (Some(m), None) | (None, Some(m)) => m.size,
            (None, None) => 0,
        };
        let mut p = e.path.as_str();
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            let key = if p.is_empty() { "/" } else { p };
            let d = dirs.entry(key).or_default();
            match e.change {
                Change::Added => d[0] += 1,
                Change::Removed => d[1] += 1,
                Change::Changed => d[2] += 1,
            }
            d[3] += bytes;
        }
    }
    let mut v: Vec<(&str, [u64; 4])> = dirs.into_iter().filter(|(p, _)| *p != "/").collect();
    v.sort_by(|a, b| b.1[3].cmp(&a.1[3]).then_with(|| a.0.cmp(b.0)));
    v.truncate(30);
    v.into_iter()
        .map(|(p, d)| DirRow {
            class: match (d[0] > 0, d[1] > 0, d[2] > 0) {
                (true, false, false) => "added",
                (false, true, false) => "removed",
                _ => "changed",
            },
            path: format!("{p}/"),
            added: d[0],
            removed: d[1],
            changed: d[2],
            bytes: human_bytes(d[3]),
        })
        .collect()
}

/// The `pare diff --html` report: the diff's tables, and a treemap of the changed bytes whose
/// boxes are coloured by how the subtree changed.
pub fn diff(d: &Diff) -> Result<String, ReportError> {
    let mut changes = TreeBuilder::new();
    if let Some(f) = &d.files {
        for e in &f.entries {
            let (size, mark) = match (&e.a, &e.b, e.change) {
                (_, Some(b), Change::Added) => (b.size, Mark::Added),
                (Some(a), _, Change::Removed) => (a.size, Mark::Removed),
                (Some(a), Some(b), _) => (a.size.max(b.size), Mark::Changed),
                _ => (0, Mark::Changed),
            };
            if size > 0 {
                changes.add(&e.path, size, Some(mark));
            }
        }
    }
    let tree = changes.finish();
    let has_changes_tree = tree.size > 0;
    let data = serde_json::json!({ "trees": { "changes": tree } });
    let files = d.files.as_ref().map(|f| FilesView {
        summary: format!(
            "{} added ({}), {} removed ({}), {} changed.",
            f.added,
            human_bytes(f.added_bytes),
            f.removed,
            human_bytes(f.removed_bytes),
            f.changed
        ),
        dirs: changed_dirs(&f.entries),
        rows: f
            .entries
            .iter()
            .take(MAX_ROWS)
            .map(|e| FileRow {
                class: class(e.change),
                sign: e.change.sign(),
                path: e.path.clone(),
                detail: file_detail(e),
            })
            .collect(),
        omitted: f.entries.len().saturating_sub(MAX_ROWS),
    });
    let packages = d.packages.as_ref().map(|p| {
        p.iter()
            .map(|c| {
                (
                    class(c.change),
                    c.change.sign(),
                    c.ecosystem,
                    c.name.clone(),
                    c.a_version.clone().unwrap_or_default(),
                    c.b_version.clone().unwrap_or_default(),
                )
            })
            .collect()
    });
    let config = d.config.as_ref().map(|c| {
        c.iter()
            .map(|c| {
                (
                    class(c.change),
                    c.change.sign(),
                    c.key.clone(),
                    json_value(c.a.as_ref()),
                    json_value(c.b.as_ref()),
                )
            })
            .collect()
    });
    let layers = d.layers.as_ref().map(|l| {
        let rows = [(Change::Removed, &l.a_only), (Change::Added, &l.b_only)]
            .into_iter()
            .flat_map(|(c, list)| {
                list.iter().map(move |x| {
                    (
                        class(c),
                        c.sign(),
                        x.index,
                        x.diff_id.clone(),
                        human_bytes(x.size),
                        x.instruction.clone(),
                    )
                })
            })
            .collect();
        (
            format!(
                "{} shared, {} only in A, {} only in B.",
                l.shared,
                l.a_only.len(),
                l.b_only.len()
            ),
            rows,
        )
    });
    let page = DiffPage {
        head: Head::new(
            "diff",
            format!("pare diff: {} → {}", d.a.name, d.b.name),
            if d.same {
                "The images are the same in the compared parts.".into()
            } else {
                format!("A: {} · B: {}", d.a.config_digest, d.b.config_digest)
            },
            &data,
        ),
        cards: vec![
            (
                format!(
                    "{} → {}",
                    human_bytes(d.a.final_size),
                    human_bytes(d.b.final_size)
                ),
                "visible bytes",
            ),
            (format!("{} → {}", d.a.entries, d.b.entries), "entries"),
            (format!("{} → {}", d.a.layers, d.b.layers), "layers"),
            (
                if d.same { "same" } else { "differ" }.to_string(),
                "verdict",
            ),
        ],
        has_changes_tree,
        files,
        packages,
        config,
        layers,
        surface: d
            .surface
            .as_ref()
            .map(|s| (s.gained.clone(), s.lost.clone())),
    };
    page.render()
        .map(finish)
        .map_err(|source| ReportError::Render {
            what: "diff",
            source,
        })
}

#[derive(Template)]
#[template(path = "build.html")]
struct BuildPage {
    head: Head,
    cards: Vec<(String, &'static str)>,
    sides: Vec<(&'static str, String, String)>,
    has_before: bool,
    has_after: bool,
    verification: Vec<(String, String, String, &'static str, String)>,
    verification_note: String,
    timing_bars: Bars,
    surface_removed: Vec<Finding>,
    surface_kept: Vec<Finding>,
    kept: Vec<(String, Vec<String>)>,
    kept_omitted: usize,
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(", "),
        v => v.to_string(),
    }
}

fn opt_bytes(v: &Value) -> String {
    v.as_u64().map(human_bytes).unwrap_or_else(|| "?".into())
}

/// One `pare why` reason as a line: its kind, then its fields (`by`, `processes`, …).
pub fn reason_line(r: &Value) -> String {
    let Some(o) = r.as_object() else {
        return s(r);
    };
    let kind = o.get("kind").map(s).unwrap_or_default().replace('_', " ");
    let rest: Vec<String> = o
        .iter()
        .filter(|(k, _)| *k != "kind")
        .map(|(k, v)| format!("{k}: {}", s(v)))
        .collect();
    if rest.is_empty() {
        kind
    } else {
        format!("{kind} — {}", rest.join("; "))
    }
}

fn surface_items(v: &Value) -> Vec<Finding> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|i| Finding {
            category: match i.get("category").and_then(Value::as_str).unwrap_or("") {
                "shell" => "shell",
                "package_manager" => "package_manager",
                "build_tool" => "build_tool",
                "network_tool" => "network_tool",
                "setuid" => "setuid",
                "setgid" => "setgid",
                "world_writable" => "world_writable",
                "capability" => "capability",
                "secret_file" => "secret_file",
                _ => "other",
            },
            subject: i.get("path").map(s).unwrap_or_default(),
            detail: i.get("category").map(s).unwrap_or_default(),
        })
        .map(|mut f| {
            if f.category != "other" {
                f.detail.clear();
            }
            f
        })
        .collect()
}

/// The `pare build --html` report from the build's `report.json` (read as JSON, so fields other
/// versions add or drop do not break it) and, when analyzed, the trees of the original and the
/// slim image.
pub fn build(
    report: &Value,
    before: Option<&Tree>,
    after: Option<&Tree>,
) -> Result<String, ReportError> {
    let data = serde_json::json!({ "trees": { "before": before, "after": after } });
    let src = &report["source"];
    let slim = &report["slim"];
    let verification_ok = report["verification"]["probes"]
        .as_array()
        .map(|p| p.iter().all(|x| x["ok"].as_bool() == Some(true)));
    let verification = report["verification"]["probes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let ok = p["ok"].as_bool() == Some(true);
            let mut result = if ok {
                "same".to_string()
            } else {
                "DIFFERS".to_string()
            };
            if let Some(d) = p["difference"].as_str() {
                result = format!("{result}: {d}");
            }
            (
                s(&p["probe"]),
                s(&p["expected"]),
                s(&p["actual"]),
                if ok { "ok" } else { "fail" },
                result,
            )
        })
        .collect();
    let timing_rows: Vec<(String, Vec<f64>, String)> = report["timings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let secs = t["seconds"].as_f64().unwrap_or(0.0);
            (s(&t["phase"]), vec![secs], format!("{secs:.2} s"))
        })
        .collect();
    let entries = report["selection"]["entries"].as_object();
    let kept_total = entries.map(|e| e.len()).unwrap_or(0);
    let kept = entries
        .into_iter()
        .flatten()
        .take(MAX_ROWS)
        .map(|(path, k)| {
            let reasons = k["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(reason_line)
                .collect();
            (path.clone(), reasons)
        })
        .collect();
    let row = |label: &'static str, key: &str, f: &dyn Fn(&Value) -> String| {
        (label, f(&src[key]), f(&slim[key]))
    };
    let page = BuildPage {
        head: Head::new(
            "build",
            format!("pare build: {}", s(&src["reference"])),
            format!(
                "→ {} · runtime {}",
                s(&slim["reference"]),
                s(&report["runtime"])
            ),
            &data,
        ),
        cards: vec![
            (
                format!("{} → {}", opt_bytes(&src["size"]), opt_bytes(&slim["size"])),
                "visible bytes",
            ),
            (
                report["reduction"]
                    .as_f64()
                    .map(|r| format!("{r:.1}×"))
                    .unwrap_or_else(|| "?".into()),
                "smaller",
            ),
            (s(&report["kept_paths"]), "paths kept"),
            (
                match verification_ok {
                    Some(true) => "verified".into(),
                    Some(false) => "FAILED".into(),
                    None => "not verified".into(),
                },
                "verification",
            ),
            (
                format!("{:.1} s", report["total_seconds"].as_f64().unwrap_or(0.0)),
                "total time",
            ),
        ],
        sides: vec![
            row("Reference", "reference", &s),
            row("Visible bytes", "size", &opt_bytes),
            row("Compressed", "compressed_size", &opt_bytes),
            row("Entries", "entries", &s),
            row("Layers", "layers", &s),
            row("Attack-surface findings", "surface_findings", &s),
        ],
        has_before: before.is_some(),
        has_after: after.is_some(),
        verification,
        verification_note: if report["verification"].is_null() {
            "Verification was skipped.".into()
        } else {
            "No probe ran.".into()
        },
        timing_bars: bars(&timing_rows, &[("seconds", "#2f6fd6")], &|v| {
            format!("{v:.2} s")
        }),
        surface_removed: surface_items(&report["surface_removed"]),
        surface_kept: surface_items(&report["surface_kept"]),
        kept,
        kept_omitted: kept_total.saturating_sub(MAX_ROWS),
    };
    page.render()
        .map(finish)
        .map_err(|source| ReportError::Render {
            what: "build",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_element() {
        let v = serde_json::json!({"n": "</script><script>alert(1)</script> & <!--"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn reasons_read_as_lines() {
        let r = serde_json::json!({"kind": "needed", "by": "/usr/bin/python3.11", "soname": "libz.so.1"});
        assert_eq!(
            reason_line(&r),
            "needed — by: /usr/bin/python3.11; soname: libz.so.1"
        );
    }
}
