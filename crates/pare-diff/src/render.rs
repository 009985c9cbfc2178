//! The diff as a human table and as JSON.

use std::fmt::Write as _;

use pare_xray::render::human_bytes;

use crate::{Change, Diff, FileChange};

/// The diff as pretty JSON (see `docs/diff-json.md`): the bytes [`write_json`] writes.
pub fn json(diff: &Diff) -> String {
    serde_json::to_string_pretty(diff).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Streams the diff to `out` as pretty JSON (no final newline) while serializing it, so the
/// whole document is never held as text; give it a buffered writer. A failed write (a closed
/// pipe) comes back as that `io::Error`, its kind kept.
pub fn write_json<W: std::io::Write>(diff: &Diff, out: W) -> std::io::Result<()> {
    serde_json::to_writer_pretty(out, diff).map_err(std::io::Error::from)
}

/// A name made safe for a terminal: control characters (ANSI escapes included) are shown as
/// `\x1b`-style escapes, never sent.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn paint(color: bool, change: Change, text: &str) -> String {
    if !color {
        return text.to_string();
    }
    let code = match change {
        Change::Added => "32",
        Change::Removed => "31",
        Change::Changed => "33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn signed(n: i64) -> String {
    let s = human_bytes(n.unsigned_abs());
    if n < 0 {
        format!("-{s}")
    } else {
        format!("+{s}")
    }
}

fn value(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "(unset)".into(),
        Some(serde_json::Value::String(s)) => printable(s),
        Some(v) => printable(&v.to_string()),
    }
}

fn file_detail(e: &FileChange) -> String {
    match (&e.a, &e.b) {
        (Some(a), Some(b)) => e
            .fields
            .iter()
            .map(|f| match *f {
                "kind" => format!("kind {:?} → {:?}", a.kind, b.kind).to_lowercase(),
                "size" => format!("size {} → {}", human_bytes(a.size), human_bytes(b.size)),
                "mode" => format!("mode {} → {}", a.mode, b.mode),
                "owner" => format!("owner {}:{} → {}:{}", a.uid, a.gid, b.uid, b.gid),
                "link" => format!(
                    "link {} → {}",
                    printable(a.link.as_deref().unwrap_or("")),
                    printable(b.link.as_deref().unwrap_or(""))
                ),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        (Some(m), None) | (None, Some(m)) => {
            let mut s = format!("{:?}", m.kind).to_lowercase();
            if m.kind == pare_layerfs::Kind::File {
                s = human_bytes(m.size);
            }
            if let Some(l) = &m.link {
                let _ = write!(s, " → {}", printable(l));
            }
            s
        }
        (None, None) => String::new(),
    }
}

/// The diff as text: a header per image, then one section per compared part, every line
/// starting with `+` (only in B), `-` (only in A) or `~` (changed).
pub fn table(diff: &Diff, color: bool) -> String {
    let mut o = String::new();
    for (tag, s) in [("A", &diff.a), ("B", &diff.b)] {
        let _ = writeln!(
            o,
            "{tag}: {} ({}, {} layers, {} entries, {})",
            printable(&s.name),
            s.source,
            s.layers,
            s.entries,
            human_bytes(s.final_size)
        );
    }
    if diff.same {
        let _ = writeln!(o, "\nNo differences.");
        return o;
    }
    if let Some(f) = &diff.files {
        let _ = writeln!(
            o,
            "\nFiles: {} added ({}), {} removed ({}), {} changed ({})",
            f.added,
            human_bytes(f.added_bytes),
            f.removed,
            human_bytes(f.removed_bytes),
            f.changed,
            signed(f.changed_bytes_delta)
        );
        for e in &f.entries {
            let line = format!(
                "  {} {}  {}",
                e.change.sign(),
                printable(e.path.as_str()),
                file_detail(e)
            );
            let _ = writeln!(o, "{}", paint(color, e.change, &line));
        }
    }
    if let Some(p) = &diff.packages {
        let _ = writeln!(o, "\nPackages: {} differ", p.len());
        for c in p {
            let v = match (&c.a_version, &c.b_version) {
                (Some(a), Some(b)) => format!("{a} → {b}"),
                (Some(v), None) | (None, Some(v)) => v.clone(),
                (None, None) => String::new(),
            };
            let line = format!(
                "  {} {:<7} {}  {}",
                c.change.sign(),
                c.ecosystem,
                printable(&c.name),
                printable(&v)
            );
            let _ = writeln!(o, "{}", paint(color, c.change, &line));
        }
    }
    if let Some(c) = &diff.config {
        let _ = writeln!(o, "\nConfig: {} differ", c.len());
        for ch in c {
            let v = match ch.change {
                Change::Changed => format!("{} → {}", value(ch.a.as_ref()), value(ch.b.as_ref())),
                Change::Removed => value(ch.a.as_ref()),
                Change::Added => value(ch.b.as_ref()),
            };
            let line = format!("  {} {}  {}", ch.change.sign(), printable(&ch.key), v);
            let _ = writeln!(o, "{}", paint(color, ch.change, &line));
        }
    }
    if let Some(l) = &diff.layers {
        let _ = writeln!(
            o,
            "\nLayers: {} shared, {} only in A, {} only in B",
            l.shared,
            l.a_only.len(),
            l.b_only.len()
        );
        for (change, list) in [(Change::Removed, &l.a_only), (Change::Added, &l.b_only)] {
            for x in list {
                let line = format!(
                    "  {} #{} {}  {}  {}",
                    change.sign(),
                    x.index,
                    x.diff_id.get(..19).unwrap_or(&x.diff_id),
                    human_bytes(x.size),
                    printable(&x.instruction)
                );
                let _ = writeln!(o, "{}", paint(color, change, &line));
            }
        }
    }
    if let Some(s) = &diff.surface {
        let _ = writeln!(
            o,
            "\nAttack surface: {} gained, {} lost",
            s.gained.len(),
            s.lost.len()
        );
        for (change, list) in [(Change::Added, &s.gained), (Change::Removed, &s.lost)] {
            for f in list {
                let line = format!(
                    "  {} {:<15} {}  {}",
                    change.sign(),
                    f.category,
                    printable(&f.subject),
                    printable(&f.detail)
                );
                let _ = writeln!(o, "{}", paint(color, change, line.trim_end()));
            }
        }
    }
    o
}
