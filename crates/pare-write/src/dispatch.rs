//! Where a written image goes: one function that sends each [`Output`] to the code that
//! writes it — files (`output.rs`), the daemon (`daemon.rs`) or a registry push (an OCI
//! layout in a temp dir, then `pare_source::registry::push_layout`). The modules it calls
//! do not call back here: `dispatch → daemon → output`, `dispatch → output`.

use std::path::Path;

use pare_select::Selection;

use crate::image::ImageMeta;
use crate::output::{Output, io, no_space, parent_of, write_file};
use crate::stack::Stack;
use crate::{WriteError, WrittenImage};

pub(crate) fn write(
    rootfs: &Path,
    sel: &Selection,
    meta: &ImageMeta,
    stack: &Stack,
    output: Output,
    epoch: u64,
    staging: Option<&Path>,
) -> Result<WrittenImage, WriteError> {
    // Where the bytes go: beside the output, or a staging dir.
    let place = match &output {
        Output::Oci { dir, .. } => parent_of(dir),
        Output::DockerArchive { path, .. } | Output::OciArchive { path, .. } => parent_of(path),
        // A registry push stages its layout where the caller says, else in the temp dir,
        // where the daemon's `docker load` stages its layer too.
        Output::Registry { .. } => staging.map_or_else(std::env::temp_dir, parent_of),
        Output::Daemon { .. } => std::env::temp_dir(),
    };
    match output {
        Output::Daemon { tag } => {
            crate::daemon::write_to_daemon(rootfs, sel, meta, stack, &tag, epoch)
        }
        Output::Registry { ref name } => {
            let name = name.clone();
            push(rootfs, sel, meta, stack, &name, epoch, output, staging)
        }
        file => write_file(rootfs, sel, meta, stack, file, epoch),
    }
    .map_err(|e| no_space(e, &place))
}

/// [`Output::Registry`]: the OCI layout at `staging` when given (the caller keeps it),
/// else in a temp dir removed afterwards, then pushed.
#[allow(clippy::too_many_arguments)]
fn push(
    rootfs: &Path,
    sel: &Selection,
    meta: &ImageMeta,
    stack: &Stack,
    name: &str,
    epoch: u64,
    output: Output,
    staging: Option<&Path>,
) -> Result<WrittenImage, WriteError> {
    let tmp = std::env::temp_dir();
    let temp;
    let dir = match staging {
        Some(dir) => dir.to_path_buf(),
        None => {
            temp = crate::tmp::dir_in(&tmp, "push").map_err(io(&tmp))?;
            temp.path().join("layout")
        }
    };
    let tag = output.tag().map(str::to_string);
    let written = write(
        rootfs,
        sel,
        meta,
        stack,
        Output::Oci {
            dir: dir.clone(),
            tag: tag.clone(),
        },
        epoch,
        None,
    )?;
    pare_source::registry::push_layout(&dir, tag.as_deref(), name, &Default::default()).map_err(
        |source| WriteError::Push {
            reference: format!("docker://{name}"),
            source,
        },
    )?;
    Ok(WrittenImage { output, ..written })
}
