//! The `pare diff --html` report.

use askama::Template;
use pare_diff::{Change, Diff, Finding};
use pare_xray::render::human_bytes;
use serde_json::Value;

use crate::page::{Head, finish};
use crate::{MAX_ROWS, Mark, ReportError, TreeBuilder};

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
                changes.add(e.path.rel(), size, Some(mark));
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
                path: e.path.to_string(),
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
