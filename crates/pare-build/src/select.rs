//! The select phase: the kept files are trace ∪ static closure ∪ includes − excludes
//! (`pare-select`).

use std::path::Path;

use pare_select::{ImageFacts, SelectInputs, Selection};
use pare_trace::Profile;

use crate::open::Opened;
use crate::timing::Phases;
use crate::{BuildError, BuildOptions};

/// The selection, and the image facts it was made from (the unexercised-files pass reads
/// them again).
pub(crate) struct Selected {
    pub(crate) facts: ImageFacts,
    pub(crate) selection: Selection,
}

/// Selects from the rootfs with the profile's trace and the `--include-*` / `--exclude` /
/// `--preserve-path` flags of `opts`.
pub(crate) fn select(
    opts: &BuildOptions,
    opened: &Opened,
    profile: &Profile,
    rootfs: &Path,
    phases: &mut Phases<'_>,
) -> Result<Selected, BuildError> {
    let facts = ImageFacts::from_config(&opened.image.config, opened.meta.healthcheck.as_ref());
    let mut inputs = SelectInputs::from_report(&profile.sensor, facts.clone());
    inputs.include_paths = opts.include_paths.clone();
    inputs.include_bins = opts.include_bins.clone();
    inputs.include_exes = opts.include_exes.clone();
    inputs.include_shell = opts.include_shell;
    inputs.excludes = opts.excludes.clone();
    inputs.preserve_paths = opts.preserve_paths.clone();
    let selection = phases.run("select", "trace ∪ static closure", || {
        pare_select::select(rootfs, &inputs)
    })?;
    Ok(Selected { facts, selection })
}
