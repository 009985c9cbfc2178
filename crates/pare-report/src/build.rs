//! The `pare build --html` report, from `report.json`.

use askama::Template;
use pare_diff::Finding;
use pare_xray::render::human_bytes;
use serde_json::Value;

use crate::bars::{Bars, bars};
use crate::page::{Head, finish};
use crate::{MAX_ROWS, ReportError, Tree};

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
    fn reasons_read_as_lines() {
        let r = serde_json::json!({"kind": "needed", "by": "/usr/bin/python3.11", "soname": "libz.so.1"});
        assert_eq!(
            reason_line(&r),
            "needed — by: /usr/bin/python3.11; soname: libz.so.1"
        );
    }
}
