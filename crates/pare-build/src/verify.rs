//! The verify phase: run the slim image with no tracer and replay the probes
//! (`pare-verify`); on a difference, a traced re-run names the likely missing files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pare_image::ResolvedImage;
use pare_profile::{ProfileError, ProfileOptions};
use pare_reference::ImageRef;
use pare_runtime::{RunSource, RunSpec, Runtime, SensorSpec, SharedRuntime};
use pare_select::Selection;
use pare_trace::Profile;
use pare_verify::Verification;

use crate::BuildError;
use crate::error::file_err;
use crate::timing::Phases;
use crate::write::Slim;

/// What verification compares: the original (as a daemon image or its rootfs) and the slim
/// image, with the recorded profile.
pub(crate) struct VerifyInputs<'a> {
    pub(crate) reference: &'a ImageRef,
    pub(crate) image: &'a ResolvedImage,
    pub(crate) original_rootfs: &'a Path,
    pub(crate) slim: &'a Slim,
    pub(crate) slim_ref: &'a ImageRef,
    /// Where the slim image's files are read from (a registry output's staged layout).
    pub(crate) slim_local: &'a ImageRef,
    /// The build's runtime (chosen whenever verification runs).
    pub(crate) runtime: &'a SharedRuntime,
    pub(crate) on_docker: bool,
    pub(crate) profile: &'a Profile,
    pub(crate) selection: &'a Selection,
    pub(crate) sensor: &'a Result<PathBuf, std::sync::Arc<ProfileError>>,
    pub(crate) work: &'a Path,
    pub(crate) opts: &'a ProfileOptions,
}

/// Verifies the slim image (phase `verify`). Files the original opened that an `--exclude`
/// removed lead the likely-missing list.
pub(crate) fn verify(
    i: &VerifyInputs<'_>,
    phases: &mut Phases<'_>,
) -> Result<Verification, BuildError> {
    // A slim image written with --output is not in the daemon: it is verified from its
    // own files with the embedded runtime (the daemon is never changed behind the user's
    // back).
    let verify_on_docker = i.on_docker && matches!(i.slim, Slim::Loaded(_));
    let embedded;
    let rt = if i.on_docker && !verify_on_docker {
        embedded = pare_runtime::detect(Some(pare_runtime::RuntimeKind::Embedded), &i.opts.cancel)?;
        &embedded
    } else {
        i.runtime
    };
    let mut v = phases.run("verify", &i.slim_ref.to_string(), || {
        verify_slim(i, rt.as_ref(), verify_on_docker)
    })?;
    if !v.ok() {
        // Files the original opened that a --exclude removed come first: a lookup the
        // slim app never makes (Python's import system lists the directory instead of
        // opening a missing module) cannot show up in the traced re-run.
        let dropped: Vec<String> = i
            .profile
            .sensor
            .files
            .iter()
            .filter(|(p, r)| r.found && i.selection.excluded_by(p).is_some())
            .map(|(p, _)| p.clone())
            .filter(|p| !v.likely_missing.contains(p))
            .collect();
        v.likely_missing.splice(0..0, dropped);
    }
    Ok(v)
}

/// Runs the slim image and replays the recorded probes; when they differ, re-runs it traced to
/// name the likely missing files.
/// `on_docker`: the slim image is in the daemon and `runtime` is docker (else the embedded
/// runtime runs it from its own extracted files).
fn verify_slim(
    i: &VerifyInputs<'_>,
    runtime: &dyn Runtime,
    on_docker: bool,
) -> Result<Verification, BuildError> {
    let (slim, original, original_rootfs, profile, work) =
        (i.slim_ref, i.image, i.original_rootfs, i.profile, i.work);
    let original_daemon = match i.reference {
        ImageRef::DockerDaemon { name } if on_docker => Some(name.as_str()),
        _ => None,
    };
    let sensor = i.sensor.as_ref().ok();
    let (progress, ready_timeout) = (&i.opts.progress, i.opts.timeout);
    let run = pare_profile::ImageRun::from_config(&original.config);
    let ports = run.ports_for(profile.probes.iter().map(|r| &r.spec));
    // The embedded runtime runs from the slim image's own extracted files, so what is verified
    // is exactly what was written.
    let source = if on_docker {
        RunSource::Daemon(slim.display_name())
    } else {
        let dir = work.join("slim-rootfs");
        std::fs::create_dir_all(&dir).map_err(file_err(&dir))?;
        i.slim.extract_into(i.slim_local, &dir)?;
        RunSource::Rootfs(dir)
    };
    let spec = RunSpec {
        source,
        command: run.command(),
        env: run.env.clone(),
        user: run.user.clone(),
        workdir: run.workdir.clone(),
        ports,
        sensor: None,
        hostname: "pare".into(),
    };
    // A broken slim image must not cost the whole --timeout: 30 s, or five times what the
    // original took to get ready, whichever is longer, within --timeout.
    let took = Duration::from_millis(profile.run.as_ref().map_or(0, |r| r.ready_millis));
    let vopts = pare_verify::VerifyOptions {
        run: profile.run.clone(),
        ready_timeout: ready_timeout.min(Duration::from_secs(30).max(took * 5)),
        probe: pare_profile::pare_probe::ProbeOptions {
            progress: progress.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut v = pare_verify::verify(runtime, &spec, &profile.probes, &vopts)?;
    if !v.ok() && v.early_exit.is_none() {
        // Answers can change from run to run (a page with its start time): replay against a
        // fresh run of the original and excuse only what differs there too.
        let original_spec = RunSpec {
            source: match original_daemon {
                Some(name) => RunSource::Daemon(name.to_string()),
                None => RunSource::Rootfs(original_rootfs.to_path_buf()),
            },
            ..spec.clone()
        };
        if let Ok(again) =
            pare_verify::rerun_original(runtime, &original_spec, &profile.probes, &vopts)
        {
            pare_verify::apply_original_rerun(&mut v, &again);
        }
    }
    if !v.ok() {
        if let Some(binary) = sensor {
            let out = work.join("verify-trace");
            std::fs::create_dir_all(&out).map_err(file_err(&out))?;
            let traced = RunSpec {
                sensor: Some(SensorSpec {
                    binary: binary.clone(),
                    output_dir: out,
                    fanotify: false,
                }),
                ..spec
            };
            match pare_verify::hint_missing(
                runtime,
                &traced,
                &profile.probes,
                &profile.sensor,
                &vopts,
            ) {
                Ok(missing) => v.likely_missing = missing,
                Err(e) => {
                    v.likely_missing = vec![format!(
                        "(traced re-run failed: {})",
                        pare_progress::chain(&e)
                    )]
                }
            }
        }
    }
    Ok(v)
}
