//! The first phases: resolve the reference and choose the runtime ([`plan`]), then open the
//! source image and read its config ([`open`]).

use std::path::PathBuf;

use pare_image::ResolvedImage;
use pare_reference::ImageRef;
use pare_runtime::SharedRuntime;
use pare_source::{ImageSource, OpenOptions};
use pare_write::ImageMeta;

use crate::error::file_err;
use crate::timing::Phases;
use crate::{BuildError, BuildOptions};

/// What the build runs on: the parsed source reference, the artifacts directory (created) and
/// the runtime, when one is needed.
pub(crate) struct Plan {
    pub(crate) reference: ImageRef,
    pub(crate) artifacts: PathBuf,
    /// The source is a `docker-daemon:` image.
    pub(crate) is_daemon: bool,
    /// `None` when nothing runs (a reused profile and no verification).
    pub(crate) runtime: Option<SharedRuntime>,
    /// The runtime is the Docker daemon.
    pub(crate) on_docker: bool,
}

/// Parses the reference, creates the artifacts directory and picks the runtime: a daemon
/// image runs on docker when one answers; anything else runs embedded.
pub(crate) fn plan(opts: &BuildOptions) -> Result<Plan, BuildError> {
    let reference = ImageRef::parse(&opts.profile.image)?;
    let artifacts = opts.profile.output.clone();
    std::fs::create_dir_all(&artifacts).map_err(file_err(&artifacts))?;

    let is_daemon = matches!(reference, ImageRef::DockerDaemon { .. });
    let choice = match (opts.profile.runtime, is_daemon) {
        (Some(r), _) => Some(r),
        (None, false) => Some(pare_runtime::RuntimeKind::Embedded),
        (None, true) => None,
    };
    let needs_runtime = opts.reuse_profile.is_none() || opts.verify;
    let runtime = if needs_runtime {
        Some(match &opts.runtime {
            Some(given) => given.0.clone(),
            None => pare_runtime::detect(choice, &opts.profile.cancel)?,
        })
    } else {
        None
    };
    let on_docker = runtime.as_ref().is_some_and(|r| r.name() == "docker");
    if on_docker && !is_daemon {
        return Err(BuildError::NeedsDaemon {
            reference: reference.to_string(),
        });
    }
    Ok(Plan {
        reference,
        artifacts,
        is_daemon,
        runtime,
        on_docker,
    })
}

/// The opened source image.
pub(crate) struct Opened {
    pub(crate) source: Box<dyn ImageSource>,
    pub(crate) image: ResolvedImage,
    /// The config the slim image starts from, and how it names its source.
    pub(crate) meta: ImageMeta,
}

/// Opens the source image (phase `open`) and reads the config the slim image keeps.
pub(crate) fn open(
    reference: &ImageRef,
    open_opts: &OpenOptions,
    phases: &mut Phases<'_>,
) -> Result<Opened, BuildError> {
    let source = phases.run("open", &reference.to_string(), || {
        pare_source::open(reference, open_opts)
    })?;
    let image = source.image().clone();
    let raw_config = source.raw_config().map(<[u8]>::to_vec);
    // The slim image names its input by content (the source config digest), not by how it
    // was reached: `docker-daemon:app`, `docker-archive:app.tar` and `oci:app` of the same
    // image must give the same slim digest.
    let meta = match &raw_config {
        Some(raw) => {
            let mut m = ImageMeta::from_config_json(raw, &reference.to_string())?;
            m.source_ref = m.source_digest.to_string();
            m
        }
        None => ImageMeta {
            config: image.config.clone(),
            healthcheck: None,
            source_digest: image.config_digest.clone(),
            source_ref: image.config_digest.to_string(),
        },
    };
    Ok(Opened {
        source,
        image,
        meta,
    })
}
