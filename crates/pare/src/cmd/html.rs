//! `--html FILE` for xray, diff and build: writes a self-contained report (pare-report).

use std::path::Path;

use anyhow::Context;
use pare_source::OpenOptions;

/// Writes `html` to `path` and says so on stderr.
pub fn write(path: &Path, html: &str) -> anyhow::Result<()> {
    pare_report::write(path, html)?;
    eprintln!("pare: wrote {}", path.display());
    Ok(())
}

/// The size tree of an image, read again from its reference (for the build report).
pub fn tree_of(reference: &str, options: &OpenOptions) -> anyhow::Result<pare_report::Tree> {
    let source = super::diff::open(reference, options)?;
    let opts = pare_xray::Options {
        top: 0,
        hash: false,
        threads: 0,
    };
    let (_, fs) = pare_xray::analyze_with_fs(source.as_ref(), &opts)
        .with_context(|| format!("image `{reference}`"))?;
    Ok(pare_report::TreeBuilder::from_fs(&fs).finish())
}

/// The build report: `report` is report.json's content; both images are read again for their
/// treemaps (an image that cannot be read gets none, with a warning).
pub fn build(path: &Path, report: &serde_json::Value, source: &str) -> anyhow::Result<()> {
    let options = OpenOptions::default();
    let tree = |r: &str| match tree_of(r, &options) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("pare: warning: no treemap for {r}: {e:#}");
            None
        }
    };
    let before = tree(source);
    let after = report["slim"]["reference"].as_str().and_then(tree);
    write(
        path,
        &pare_report::build(report, before.as_ref(), after.as_ref())?,
    )
}
