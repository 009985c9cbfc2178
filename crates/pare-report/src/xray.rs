//! The `pare xray --html` report.

use askama::Template;
use pare_diff::Finding;
use pare_xray::render::human_bytes;

use crate::bars::{Bars, bars, hb};
use crate::page::{Head, finish};
use crate::{ReportError, Tree};

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

/// The `pare xray --html` report: the image's treemap (`tree`, from [`TreeBuilder::from_fs`](crate::TreeBuilder::from_fs)),
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
            .map(|f| (f.path.to_string(), human_bytes(f.size), f.layer))
            .collect(),
        wasted: report
            .wasted_files
            .iter()
            .map(|w| (w.path.to_string(), human_bytes(w.wasted_bytes), w.copies))
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
