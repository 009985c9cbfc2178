//! Horizontal bar charts, drawn as SVG by the templates (no script).

use pare_xray::render::human_bytes;

/// One bar segment of a horizontal bar chart.
pub struct Segment {
    /// Left edge, in SVG units from the bar area's start.
    pub x: f64,
    /// Offset from the row's top (series stack downwards).
    pub dy: u32,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: u32,
    /// Fill colour (CSS).
    pub color: &'static str,
    /// Tooltip text.
    pub title: String,
}

/// One labelled row of a bar chart.
pub struct BarRow {
    /// Top of the row.
    pub y: u32,
    /// The label left of the bars.
    pub label: String,
    /// The row's bars, one per series.
    pub segments: Vec<Segment>,
    /// The value written right of the bars.
    pub value: String,
    /// Where that value starts.
    pub value_x: f64,
}

/// A horizontal bar chart drawn as SVG by the template (no script).
pub struct Bars {
    /// Height of the whole chart.
    pub height: u32,
    /// The rows, top to bottom.
    pub rows: Vec<BarRow>,
    /// The series: (name, colour).
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
pub(crate) fn bars(
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

pub(crate) fn hb(v: f64) -> String {
    human_bytes(v as u64)
}
