//! Text that fits a terminal: one width and truncation helper for every table and summary
//! pare prints. The binary decides the width (the TTY's, `COLUMNS`, or 100 when piped);
//! renderers take it as a number, so they are pure and testable at any width.
//!
//! A long cell is cut with `…` rather than wrapped, so a row stays one line and no word is
//! broken across rows: paths lose their start (the file name is what matters), commands and
//! prose lose their end. Lines never end in spaces.

use comfy_table::{
    Attribute, Cell, CellAlignment, Color, ContentArrangement, Table, TableComponent,
};

/// The width used when the output is not a terminal and `COLUMNS` is not set.
pub const DEFAULT_WIDTH: usize = 100;

/// Display width of `s` in terminal columns (one per char: pare prints no wide glyphs).
pub fn width_of(s: &str) -> usize {
    s.chars().count()
}

/// Keeps the end of `s` within `max` columns: `…/lib/x86_64-linux-gnu/libc.so.6`. For paths.
pub fn cut_start(s: &str, max: usize) -> String {
    let s = one_line(s);
    let n = width_of(&s);
    if n <= max {
        return s;
    }
    if max == 0 {
        return String::new();
    }
    let keep: String = s.chars().skip(n - (max - 1)).collect();
    format!("…{keep}")
}

/// Keeps the start of `s` within `max` columns: `RUN apt-get update && apt-get inst…`. For
/// commands and prose.
pub fn cut_end(s: &str, max: usize) -> String {
    let s = one_line(s);
    if width_of(&s) <= max {
        return s;
    }
    if max == 0 {
        return String::new();
    }
    let keep: String = s.chars().take(max - 1).collect();
    format!("{}…", keep.trim_end())
}

/// Wraps one line of prose at spaces to `width` columns; continuation lines get the line's
/// own indentation plus two spaces. A word longer than a line is cut at its end, never split
/// across lines. Each output line ends in a newline and no spaces.
pub fn wrap(line: &str, width: usize) -> String {
    let line = one_line(line);
    let mut rest = line.trim_end();
    let indent = width_of(rest) - width_of(rest.trim_start());
    let cont = " ".repeat((indent + 2).min(width / 2));
    let mut out = String::new();
    let mut first = true;
    while !rest.is_empty() {
        let prefix = if first { "" } else { cont.as_str() };
        let avail = width.saturating_sub(width_of(prefix)).max(1);
        if width_of(rest) <= avail {
            out.push_str(prefix);
            out.push_str(rest);
            out.push('\n');
            break;
        }
        // The last space that leaves a non-blank line of at most `avail` columns; the
        // spacing before it is kept as written (aligned columns stay aligned).
        let space = rest
            .char_indices()
            .take(avail + 1)
            .filter(|&(i, c)| c == ' ' && !rest[..i].trim().is_empty())
            .map(|(i, _)| i)
            .last();
        let (head, tail) = match space {
            Some(i) => (rest[..i].trim_end().to_string(), &rest[i..]),
            None => {
                // One word longer than the line: cut it, never split it.
                let start = rest.len() - rest.trim_start().len();
                let end = rest[start..].find(' ').map_or(rest.len(), |e| start + e);
                (cut_end(&rest[..end], avail), &rest[end..])
            }
        };
        out.push_str(prefix);
        out.push_str(&head);
        out.push('\n');
        rest = tail.trim_start();
        first = false;
    }
    if out.is_empty() {
        out.push('\n');
    }
    out
}

/// Newlines and tabs as spaces: a cell is one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r', '\t'], " ")
}

/// Each line without trailing spaces.
pub fn trim_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if !s.ends_with('\n') {
        out.pop();
    }
    out
}

/// How a column gives way when the table is too wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Never cut (numbers, short labels).
    Keep,
    /// Cut the start (paths).
    Start,
    /// Cut the end (commands, prose).
    End,
}

/// One cell: text, right-aligned or not, an optional color.
#[derive(Debug, Clone)]
pub struct GridCell {
    text: String,
    right: bool,
    color: Option<Color>,
}

impl GridCell {
    /// A left-aligned cell (text columns).
    pub fn left(s: impl ToString) -> Self {
        GridCell {
            text: s.to_string(),
            right: false,
            color: None,
        }
    }
    /// A right-aligned cell (number columns).
    pub fn right(s: impl ToString) -> Self {
        GridCell {
            right: true,
            ..GridCell::left(s)
        }
    }
    /// Colored when the grid is.
    pub fn color(mut self, c: Color) -> Self {
        self.color = Some(c);
        self
    }
}

/// A table that fits a width: columns that may be cut shrink (the widest first) until the
/// rows fit; columns are separated by two spaces; the header is underlined.
pub struct Grid {
    headers: Vec<String>,
    fits: Vec<Fit>,
    rows: Vec<Vec<GridCell>>,
    color: bool,
}

/// Columns never shrink below this (or their header), so a cut cell still says something.
const MIN_CUT: usize = 12;
const GAP: usize = 2;

impl Grid {
    /// `columns`: header and how it gives way. `color`: ANSI styling (only on a TTY).
    pub fn new(columns: &[(&str, Fit)], color: bool) -> Self {
        Grid {
            headers: columns.iter().map(|(h, _)| h.to_string()).collect(),
            fits: columns.iter().map(|(_, f)| *f).collect(),
            rows: Vec::new(),
            color,
        }
    }

    /// Appends one row; it should have one cell per column.
    pub fn row(&mut self, cells: Vec<GridCell>) {
        self.rows.push(cells);
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Column widths for `width` columns in total.
    fn widths(&self, width: usize) -> Vec<usize> {
        let n = self.headers.len();
        let mut w: Vec<usize> = (0..n)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| width_of(&one_line(&c.text)))
                    .chain([width_of(&self.headers[i])])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let floor = |i: usize| MIN_CUT.max(width_of(&self.headers[i]));
        let avail = width.saturating_sub(GAP * n.saturating_sub(1));
        let mut total: usize = w.iter().sum();
        while total > avail {
            // The widest column that may still give way.
            let Some(i) = (0..n)
                .filter(|&i| self.fits[i] != Fit::Keep && w[i] > floor(i))
                .max_by_key(|&i| (w[i], i))
            else {
                break;
            };
            // One column at a time, so the cut is shared out evenly.
            w[i] -= 1;
            total -= 1;
        }
        w
    }

    /// The table as lines of at most `width` columns (when the uncuttable columns allow),
    /// each ending in a newline.
    pub fn render(&self, width: usize) -> String {
        let widths = self.widths(width);
        let mut t = Table::new();
        t.load_preset(comfy_table::presets::UTF8_HORIZONTAL_ONLY);
        for c in [
            TableComponent::HorizontalLines,
            TableComponent::MiddleIntersections,
            TableComponent::LeftBorderIntersections,
            TableComponent::RightBorderIntersections,
            TableComponent::LeftBorder,
            TableComponent::RightBorder,
            TableComponent::VerticalLines,
            TableComponent::TopBorder,
            TableComponent::BottomBorder,
            TableComponent::TopBorderIntersections,
            TableComponent::BottomBorderIntersections,
            TableComponent::TopLeftCorner,
            TableComponent::TopRightCorner,
            TableComponent::BottomLeftCorner,
            TableComponent::BottomRightCorner,
            TableComponent::LeftHeaderIntersection,
            TableComponent::RightHeaderIntersection,
            TableComponent::MiddleHeaderIntersections,
        ] {
            t.remove_style(c);
        }
        t.set_content_arrangement(ContentArrangement::Disabled);
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        let cut = |i: usize, s: &str| match self.fits[i] {
            Fit::Keep => one_line(s),
            Fit::Start => cut_start(s, widths[i]),
            Fit::End => cut_end(s, widths[i]),
        };
        t.set_header(
            self.headers
                .iter()
                .map(|h| {
                    let c = Cell::new(h);
                    if self.color {
                        c.add_attribute(Attribute::Bold)
                    } else {
                        c
                    }
                })
                .collect::<Vec<_>>(),
        );
        for r in &self.rows {
            t.add_row(
                r.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let mut cell = Cell::new(cut(i, &c.text));
                        if c.right {
                            cell = cell.set_alignment(CellAlignment::Right);
                        }
                        match c.color {
                            Some(col) if self.color => cell.fg(col),
                            _ => cell,
                        }
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let last = self.headers.len().saturating_sub(1);
        for (i, col) in t.column_iter_mut().enumerate() {
            col.set_padding((0, if i == last { 0 } else { GAP as u16 }));
        }
        let mut out = trim_lines(&t.to_string());
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_paths_at_the_start_and_commands_at_the_end() {
        assert_eq!(cut_start("/usr/lib/libc.so.6", 10), "…libc.so.6");
        assert_eq!(cut_end("RUN apt-get update", 10), "RUN apt-g…");
        assert_eq!(cut_end("RUN a b", 7), "RUN a b");
        // No space left before the ellipsis.
        assert_eq!(cut_end("RUN apt-get", 5), "RUN…");
        assert_eq!(cut_start("short", 10), "short");
        assert_eq!(cut_end("a\nb", 10), "a b");
    }

    #[test]
    fn wraps_prose_at_spaces() {
        assert_eq!(wrap("short", 20), "short\n");
        assert_eq!(
            wrap("  one two three four five", 12),
            "  one two\n    three\n    four\n    five\n"
        );
        // A word longer than the line is cut, not split.
        assert_eq!(wrap("a /very/long/path/name", 10), "a\n  /very/l…\n");
        // Spacing inside a line is kept.
        assert_eq!(
            wrap("  setuid     /a /b /c", 16),
            "  setuid     /a\n    /b /c\n"
        );
        assert_eq!(wrap("", 10), "\n");
        for l in wrap("  x ".repeat(30).as_str(), 15).lines() {
            assert!(width_of(l) <= 15 && l == l.trim_end(), "{l:?}");
        }
    }

    #[test]
    fn a_grid_fits_the_width_without_trailing_spaces() {
        let mut g = Grid::new(
            &[
                ("Size", Fit::Keep),
                ("Path", Fit::Start),
                ("Note", Fit::End),
            ],
            false,
        );
        for i in 0..5 {
            g.row(vec![
                GridCell::right(format!("{i}00 kB")),
                GridCell::left(format!("/very/long/directory/name/number/{i}/file-{i}.txt")),
                GridCell::left("a long sentence that explains what this file is for and why"),
            ]);
        }
        for width in [40, 60, 80, 200] {
            let out = g.render(width);
            for line in out.lines() {
                assert!(width_of(line) <= width, "{width}: {line:?}");
                assert_eq!(line, line.trim_end());
            }
            // One line per row, plus the header and its rule.
            assert_eq!(out.lines().count(), 7, "{out}");
            assert!(out.contains("file-4.txt"), "{out}");
        }
        assert!(!g.render(200).contains('…'));
        let narrow = g.render(60);
        assert!(
            narrow.contains("…") && narrow.contains("file-0.txt"),
            "{narrow}"
        );
        assert!(narrow.contains("a long sentence"), "{narrow}");
        eprintln!("{narrow}");
    }
}
