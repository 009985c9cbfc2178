//! The analyze phase: both images through `pare-xray`, for the sizes, file counts and attack
//! surface in the report.

use pare_layerfs::MergedFs;
use pare_reference::ImageRef;
use pare_source::{ImageSource, OpenOptions};
use pare_xray::Report as Xray;

use crate::BuildError;

/// The analyses of the original and the slim image.
pub(crate) struct Analyses {
    pub(crate) before: Xray,
    pub(crate) after: Xray,
}

/// What the progress shows for the phase.
pub(crate) const DETAIL: &str = "original and slim";

/// How both images are analyzed (no content hashes: the report lists no duplicates).
pub(crate) fn xray_options() -> pare_xray::Options {
    pare_xray::Options {
        top: 10,
        hash: false,
        threads: 0,
    }
}

/// Analyzes the original (already open; `view`: its layers as the extraction read them, when
/// it did) and the slim image (opened from `slim_ref`); the caller times it as the phase
/// `analyze` (it runs on a thread beside verification).
pub(crate) fn analyze(
    source: &dyn ImageSource,
    reference: &ImageRef,
    view: Option<MergedFs>,
    slim_ref: &ImageRef,
) -> Result<Analyses, BuildError> {
    let xopts = xray_options();
    let before = match view {
        Some(fs) => pare_xray::analyze_merged(source, &fs, &xopts),
        None => pare_xray::analyze(source, &xopts).map_err(|e| BuildError::Analyze {
            image: reference.to_string(),
            source: Box::new(e),
        })?,
    };
    let slim_source = pare_source::open(slim_ref, &OpenOptions::default())?;
    let after =
        pare_xray::analyze(slim_source.as_ref(), &xopts).map_err(|e| BuildError::Analyze {
            image: slim_ref.to_string(),
            source: Box::new(e),
        })?;
    Ok(Analyses { before, after })
}
