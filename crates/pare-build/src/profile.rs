//! The profile phase: trace the source image under the sensor with the probes
//! (`pare-profile`), or read a recorded `profile.json`; the rootfs is extracted on the way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pare_image::ResolvedImage;
use pare_profile::{ProfileError, ProfileOptions, Target};
use pare_reference::ImageRef;
use pare_runtime::Runtime;
use pare_trace::Profile;

use crate::BuildError;
use crate::timing::Phases;
use crate::workspace::Rootfs;

/// Where the profile comes from.
pub(crate) enum ProfileSource<'a> {
    /// A recorded `profile.json`.
    Recorded(&'a Path),
    /// Trace the image now.
    Trace {
        image: &'a ResolvedImage,
        runtime: &'a dyn Runtime,
        /// The runtime is the Docker daemon: a daemon image is traced from its storage.
        on_docker: bool,
        sensor: &'a Result<PathBuf, Arc<ProfileError>>,
        opts: &'a ProfileOptions,
    },
}

/// Returns the profile with the rootfs complete. A daemon image is traced by the daemon from
/// its own storage, so extraction (which only selection and writing need) runs at the same
/// time.
pub(crate) fn profile(
    from: ProfileSource<'_>,
    rootfs: &Rootfs<'_>,
    phases: &mut Phases<'_>,
) -> Result<Profile, BuildError> {
    let (image, rt, on_docker, sensor, opts) = match from {
        ProfileSource::Recorded(path) => {
            rootfs.run(phases)?;
            return Ok(pare_profile::read_profile(path)?);
        }
        ProfileSource::Trace {
            image,
            runtime,
            on_docker,
            sensor,
            opts,
        } => (image, runtime, on_docker, sensor, opts),
    };
    let sensor = sensor.as_ref().map_err(|e| BuildError::Sensor(e.clone()))?;
    let reference: &ImageRef = rootfs.reference;
    let target = match reference {
        ImageRef::DockerDaemon { name } if on_docker => Target::Daemon(name.clone()),
        _ => Target::Rootfs(rootfs.dest.to_path_buf()),
    };
    let trace =
        |target| pare_profile::run_profile(image, &reference.to_string(), target, rt, sensor, opts);
    let result = if rootfs.needed && matches!(target, Target::Daemon(_)) {
        // The daemon traces from its own storage: extract at the same time.
        phases.progress.begin("extract", &rootfs.detail());
        let (extracted, took, result) = std::thread::scope(|scope| {
            let handle = scope.spawn(|| {
                let t = Instant::now();
                (rootfs.extract(), t.elapsed())
            });
            let result = phases.run("profile", rt.name(), || trace(target));
            let (extracted, took) = handle.join().unwrap_or_else(|_| {
                (
                    Err(BuildError::ExtractPanicked {
                        image: rootfs.reference.to_string(),
                        dest: rootfs.dest.to_path_buf(),
                    }),
                    Duration::ZERO,
                )
            });
            (extracted, took, result)
        });
        phases.finish("extract", took, extracted.is_ok());
        extracted?;
        result
    } else {
        rootfs.run(phases)?;
        phases.run("profile", rt.name(), || trace(target))
    };
    Ok(result?.profile)
}
