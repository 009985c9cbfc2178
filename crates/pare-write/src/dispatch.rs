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
) -> Result<WrittenImage, WriteError> {
    // Where the bytes go: beside the output, or the temp dir for a `docker load`.
    let place = match &output {
        Output::Oci { dir, .. } => parent_of(dir),
        Output::DockerArchive { path, .. } | Output::OciArchive { path, .. } => parent_of(path),
        // The daemon's `docker load` and a registry push stage their layer in the temp dir.
        Output::Daemon { .. } | Output::Registry { .. } => std::env::temp_dir(),
    };
    match output {
        Output::Daemon { tag } => {
            crate::daemon::write_to_daemon(rootfs, sel, meta, stack, &tag, epoch)
        }
        Output::Registry { ref name } => {
            let name = name.clone();
            push(rootfs, sel, meta, stack, &name, epoch, output)
        }
        file => write_file(rootfs, sel, meta, stack, file, epoch),
    }
    .map_err(|e| no_space(e, &place))
}

/// [`Output::Registry`]: the OCI layout in a temp dir, then pushed.
fn push(
    rootfs: &Path,
    sel: &Selection,
    meta: &ImageMeta,
    stack: &Stack,
    name: &str,
    epoch: u64,
    output: Output,
) -> Result<WrittenImage, WriteError> {
    let tmp = std::env::temp_dir();
    let staging = crate::tmp::dir_in(&tmp, "push").map_err(io(&tmp))?;
    let dir = staging.path().join("layout");
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
    )?;
    push_layout(&dir, tag.as_deref(), name)?;
    Ok(WrittenImage { output, ..written })
}

/// Pushes the image tagged `tag` of the OCI layout `dir` to `docker://NAME`.
pub(crate) fn push_layout(dir: &Path, tag: Option<&str>, name: &str) -> Result<(), WriteError> {
    pare_source::registry::push_layout(dir, tag, name, &Default::default())
        .map(drop)
        .map_err(|source| WriteError::Push {
            reference: format!("docker://{name}"),
            source,
        })
}
