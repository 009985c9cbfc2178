//! Self-contained HTML reports for `pare xray`, `pare build` and `pare diff`: one file with its
//! CSS, script and data inline (askama templates, SVG drawn by a small inline script), nothing
//! fetched from anywhere.
//!
//! Every name from an image reaches the page either through askama's HTML escaping or as JSON
//! in a `<script type="application/json">` block whose `<`, `>` and `&` are `\u` escapes, and
//! the script writes names with `textContent` only: a file named `<script>` shows as text.

#![deny(missing_docs)]

mod bars;
mod build;
mod diff;
mod page;
mod tree;
mod xray;

use std::path::{Path, PathBuf};

pub use bars::{BarRow, Bars, Segment};
pub use build::{build, reason_line};
pub use diff::diff;
pub use tree::{Mark, Tree, TreeBuilder};
pub use xray::xray;

/// Rows of a table listing paths stop here; the rest are in the JSON outputs.
pub const MAX_ROWS: usize = 5000;

/// Errors of rendering or writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A template failed to render.
    #[error("rendering the {what} report")]
    Render {
        /// `xray`, `diff` or `build`.
        what: &'static str,
        #[source]
        /// The template engine's error.
        source: askama::Error,
    },
    /// The report file could not be written.
    #[error("{path}")]
    Write {
        /// The file.
        path: PathBuf,
        #[source]
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Writes a report.
pub fn write(path: &Path, html: &str) -> Result<(), ReportError> {
    std::fs::write(path, html).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}
