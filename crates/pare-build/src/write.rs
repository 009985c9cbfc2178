//! The write phase: one deterministic layer and the config (`pare-write`), written to files or
//! loaded into the daemon, and the reference the slim image is read back from.

use std::path::Path;

use pare_reference::ImageRef;
use pare_select::Selection;
use pare_write::{EpochFrom, ImageMeta, Output, WrittenImage};

use crate::error::file_err;
use crate::timing::Phases;
use crate::{BuildError, default_tag};

/// Where the slim image goes.
pub(crate) struct Destination<'a> {
    /// `--output`, when given.
    pub(crate) output: Option<&'a str>,
    /// `--tag`, when given.
    pub(crate) tag: Option<&'a str>,
    /// `--epoch`, when given.
    pub(crate) epoch: Option<u64>,
    /// The build runs on the Docker daemon: without `--output`, the image is loaded there.
    pub(crate) on_docker: bool,
    pub(crate) artifacts: &'a Path,
}

/// The slim image: written to files, or loaded into the daemon (uncompressed) with its gzip
/// form still being measured.
pub(crate) enum Slim {
    Written(WrittenImage),
    Loaded(pare_write::LoadedImage),
    /// Being gzipped, staged in the work dir and pushed to a registry on a thread, from
    /// the plain tar written first (which verification extracts meanwhile).
    Pushing(pare_write::PushingImage),
}

impl Slim {
    /// A push still running, waited for (phase `push`): then the image is written.
    pub(crate) fn settle(self, phases: &mut Phases<'_>) -> Result<Slim, BuildError> {
        Ok(match self {
            Slim::Pushing(p) => {
                Slim::Written(phases.run("push", "gzip, stage and push the layer", || p.finish())?)
            }
            other => other,
        })
    }

    /// The written image; for one loaded into the daemon, once its gzip form is measured
    /// (phase `gzip`); for one being pushed, once pushed.
    pub(crate) fn finish(self, phases: &mut Phases<'_>) -> Result<WrittenImage, BuildError> {
        Ok(match self.settle(phases)? {
            Slim::Written(w) => w,
            Slim::Loaded(l) => {
                phases.run("gzip", "the layer's gzip digest and size", || l.finish())?
            }
            Slim::Pushing(_) => unreachable!("settled above"),
        })
    }

    /// Waits until the image `local` names can be read: a push's staged layout written.
    /// `false` when staging failed (settling the push says why).
    pub(crate) fn wait_readable(&self) -> bool {
        match self {
            Slim::Pushing(p) => p.wait_staged(),
            _ => true,
        }
    }

    /// Extracts the slim image's files into `dir`: a push's plain tar, else the image
    /// `local` names (see [`Wrote::local_ref`]).
    pub(crate) fn extract_into(&self, local: &ImageRef, dir: &Path) -> Result<(), BuildError> {
        let failed = |image: String| {
            move |e| BuildError::Extract {
                image,
                dest: dir.to_path_buf(),
                source: Box::new(e),
            }
        };
        match self {
            Slim::Pushing(p) => {
                let tar = std::fs::File::open(p.plain_tar()).map_err(file_err(p.plain_tar()))?;
                let content =
                    pare_layerfs::LayerContent::Tar(Box::new(std::io::BufReader::new(tar)));
                let layer = p.info().diff_id.to_string();
                pare_layerfs::extract_layer(content, &layer, dir)
                    .map(drop)
                    .map_err(failed(local.to_string()))
            }
            _ => {
                let src = pare_source::open(local, &pare_source::OpenOptions::default())?;
                pare_layerfs::extract(src.as_ref(), dir)
                    .map(drop)
                    .map_err(failed(local.to_string()))
            }
        }
    }

    /// Where the slim image went: the daemon tag it was loaded as, the file or layout
    /// written, the registry by digest once pushed (by tag while pushing).
    pub(crate) fn reference(&self) -> ImageRef {
        slim_reference(self)
    }
}

/// The written slim image.
pub(crate) struct Wrote {
    pub(crate) slim: Slim,
    /// Where the slim image went, as the report and the progress name it.
    pub(crate) slim_ref: ImageRef,
    /// Where its files are read back from (verification, analysis): `slim_ref`, but for a
    /// registry the OCI layout the push was made from, in the work dir (the same manifest,
    /// config and layer, with no round trip to the registry).
    pub(crate) local_ref: ImageRef,
    pub(crate) epoch: u64,
    pub(crate) epoch_from: EpochFrom,
}

/// Where, in the work dir, a registry output is staged as an OCI layout and pushed from.
const STAGED: &str = "slim-layout";

/// Writes the selection. Timestamps: --epoch, $SOURCE_DATE_EPOCH, else the source's creation
/// time.
pub(crate) fn write(
    dest: &Destination<'_>,
    reference: &ImageRef,
    meta: &ImageMeta,
    rootfs: &Path,
    selection: &Selection,
    work: &Path,
    phases: &mut Phases<'_>,
) -> Result<Wrote, BuildError> {
    let (epoch, epoch_from) = pare_write::choose_epoch(dest.epoch, meta)?;
    let output = output_for(dest, reference)?;
    // Into the daemon, the layer goes as a plain tar (same image ID, nothing to compress or
    // inflate on the way); its gzip form is measured on a thread while verification runs.
    let slim = match &output {
        Output::Daemon { tag } => {
            let plain = phases.run("write", "one deterministic layer", || {
                pare_write::write_plain_layer(rootfs, selection, Some(epoch), work)
            })?;
            Slim::Loaded(phases.run("load", tag, || plain.load(meta, tag))?)
        }
        // To a registry too: the gzip and the push run beside verification, which extracts
        // the plain tar; analysis reads the layout staged for the push.
        Output::Registry { .. } => {
            let plain = phases.run("write", "one deterministic layer", || {
                pare_write::write_plain_layer(rootfs, selection, Some(epoch), work)
            })?;
            Slim::Pushing(plain.push_staged(meta, output.clone(), &work.join(STAGED))?)
        }
        _ => Slim::Written(phases.run("write", "one deterministic layer", || {
            pare_write::write_image(rootfs, selection, meta, output.clone(), Some(epoch))
        })?),
    };
    let slim_ref = slim_reference(&slim);
    let local_ref = local_reference(&output, &slim_ref, work);
    Ok(Wrote {
        slim,
        slim_ref,
        local_ref,
        epoch,
        epoch_from,
    })
}

/// Where the slim image goes: `--output`, else loaded into the daemon as the tag when the
/// build runs on docker, else `oci:ARTIFACTS/image` under the tag's own tag part.
fn output_for(dest: &Destination<'_>, reference: &ImageRef) -> Result<Output, BuildError> {
    let tag = dest
        .tag
        .map(str::to_string)
        .unwrap_or_else(|| default_tag(reference));
    let load_into_daemon = dest.on_docker && dest.output.is_none();
    let output = match dest.output {
        Some(spec) => Output::parse(spec)?,
        None if load_into_daemon => Output::Daemon { tag: tag.clone() },
        None => Output::Oci {
            dir: dest.artifacts.join("image"),
            tag: Some(
                tag.rsplit_once(':')
                    .map(|(_, t)| t.to_string())
                    .unwrap_or_else(|| "latest".into()),
            ),
        },
    };
    Ok(output)
}

/// Where a slim image is read back from.
fn slim_reference(slim: &Slim) -> ImageRef {
    match slim {
        Slim::Loaded(l) => ImageRef::DockerDaemon {
            name: l.loaded_as.clone(),
        },
        Slim::Pushing(p) => ImageRef::Registry {
            name: p.destination().to_string(),
        },
        Slim::Written(w) => match &w.output {
            Output::Oci { dir, tag } => ImageRef::Oci {
                dir: dir.clone(),
                tag: tag.clone(),
            },
            Output::DockerArchive { path, tag } => ImageRef::DockerArchive {
                path: path.clone(),
                reference: tag.clone(),
            },
            Output::OciArchive { path, tag } => ImageRef::OciArchive {
                path: path.clone(),
                tag: tag.clone(),
            },
            Output::Daemon { tag } => ImageRef::DockerDaemon { name: tag.clone() },
            Output::Registry { name } => ImageRef::Registry {
                name: format!(
                    "{}@{}",
                    pare_reference::split_tag(name).0,
                    w.manifest_digest
                ),
            },
        },
    }
}

/// Where the files of a slim image written to `output` are read back from: a registry
/// output's staged layout in `work`, else where it was written (`slim_ref`).
fn local_reference(output: &Output, slim_ref: &ImageRef, work: &Path) -> ImageRef {
    match output {
        Output::Registry { .. } => ImageRef::Oci {
            dir: work.join(STAGED),
            tag: output.tag().map(str::to_string),
        },
        _ => slim_ref.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn dest<'a>(output: Option<&'a str>, tag: Option<&'a str>, on_docker: bool) -> Destination<'a> {
        Destination {
            output,
            tag,
            epoch: None,
            on_docker,
            artifacts: Path::new("/art"),
        }
    }

    #[test]
    fn the_slim_image_goes_where_the_flags_say() {
        let app = ImageRef::parse("app:1.2").unwrap();
        // On docker without --output: loaded into the daemon under the default tag.
        assert_eq!(
            output_for(&dest(None, None, true), &app).unwrap(),
            Output::Daemon {
                tag: "app.slim:1.2".into()
            }
        );
        // Elsewhere: an OCI layout in the artifacts dir, tagged with the tag's tag part.
        assert_eq!(
            output_for(&dest(None, Some("me/app:v9"), false), &app).unwrap(),
            Output::Oci {
                dir: PathBuf::from("/art/image"),
                tag: Some("v9".into())
            }
        );
        // --output wins, even on docker.
        assert_eq!(
            output_for(&dest(Some("oci:/tmp/out:x"), None, true), &app).unwrap(),
            Output::Oci {
                dir: PathBuf::from("/tmp/out"),
                tag: Some("x".into())
            }
        );
    }

    #[test]
    fn a_pushed_image_is_read_back_from_the_layout_it_was_pushed_from() {
        let work = Path::new("/work/pare-build-1");
        let pushed = Output::parse("docker://127.0.0.1:5555/app:slim").unwrap();
        let remote = ImageRef::parse("docker://127.0.0.1:5555/app:slim").unwrap();
        assert_eq!(
            local_reference(&pushed, &remote, work),
            ImageRef::Oci {
                dir: work.join(STAGED),
                tag: Some("slim".into())
            }
        );
        let file = Output::parse("oci:/tmp/out:x").unwrap();
        let written = ImageRef::parse("oci:/tmp/out:x").unwrap();
        assert_eq!(local_reference(&file, &written, work), written);
    }
}
