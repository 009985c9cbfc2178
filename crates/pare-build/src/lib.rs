//! `pare build`: profile → select → write → verify, with a report.
//!
//! [`build`] is the data flow, one function per phase, each in its own module:
//!
//! 1. **plan** (`open::plan`): parse the reference, create the artifacts dir, pick the
//!    runtime; **open** (`open::open`) the source image and read the config it keeps;
//! 2. **workspace** (`workspace::Workspace`): a temp work dir, with the source's layers
//!    mounted there as a read-only overlay when they are a local daemon's (`overlay`);
//! 3. **profile** (`profile::profile`): trace it under the sensor with the probes
//!    (`pare-profile`), unless a recorded `profile.json` is given, while the rootfs is
//!    **extract**ed when it is not mounted;
//! 4. **select** (`select::select`) the kept files: trace ∪ static closure ∪ includes −
//!    excludes (`pare-select`);
//! 5. **write** (`write::write`) one deterministic layer and the config (`pare-write`), and
//!    load it into the daemon when the docker runtime is used; to a registry, the layer is
//!    written as a plain tar, then gzipped into an OCI layout staged in the work dir and
//!    pushed on a thread while verification runs from the plain tar (analysis reads the
//!    staged layout), so neither waits for the gzip nor the push;
//! 6. **verify** (`verify::verify`): run the slim image with no tracer and replay the probes
//!    (`pare-verify`); on a difference, a traced re-run names the likely missing files;
//! 7. **analyze** (`analyze::analyze`) both images (`pare-xray`) for the sizes, file counts
//!    and attack surface — on a thread while verification runs; an extracted original from
//!    the view its extraction built (`pare_layerfs::extract_indexed`), not by reading its
//!    layers again — and **report** (`report`): `report.json` and its text summary.
//!
//! Finished containers are stopped and removed in the background (`pare_runtime::deferred`)
//! and waited for before the total time is taken.

#![deny(missing_docs)]

mod analyze;
mod error;
mod hint;
mod open;
mod options;
mod overlay;
mod profile;
mod report;
mod select;
mod summary;
mod timing;
mod verify;
mod why;
mod workroot;
mod workspace;
mod write;

use std::path::PathBuf;
use std::time::Instant;

use pare_source::OpenOptions;

pub use error::BuildError;
pub use options::{BuildOptions, GivenRuntime, OnLoaded, default_tag};
pub use overlay::private_mount_namespace;
pub use report::{BuildReport, ImageSummary, PhaseTiming, SurfaceItem};
pub use summary::render_text;
pub use why::{WhyAnswer, why};

/// Progress goes through the reporter the binary hands down (see `pare-progress`).
pub use pare_progress::{Progress, Quiet, Reporter};

/// The result of a build: the report (also written as `report.json`) and whether verification
/// passed.
pub struct BuildOutcome {
    /// The report, as written to `report.json`.
    pub report: BuildReport,
    /// Where `report.json` was written.
    pub report_path: PathBuf,
    /// The build's work dir, being removed; dropping the outcome waits until it is gone.
    _work_dir_removal: workspace::Removal,
}

/// Builds the slim image.
pub fn build(opts: &BuildOptions, progress: &dyn Progress) -> Result<BuildOutcome, BuildError> {
    let t0 = Instant::now();
    let mut phases = timing::Phases::new(progress);
    let plan = open::plan(opts)?;
    let reference = &plan.reference;
    let open_opts = OpenOptions {
        platform: opts.profile.platform.clone(),
        ..Default::default()
    };
    let opened = open::open(reference, &open_opts, &mut phases)?;
    let ws =
        workspace::Workspace::create(opened.source.as_ref(), &opts.profile.cancel, &mut phases)?;
    // Finished containers are stopped and removed in the background while the build goes on
    // (1–3 s each on the daemon); waited for before the total time is taken. Declared after
    // the workspace, so that an early return waits for them before the work dir goes.
    let removals = pare_runtime::deferred::DeferRemovals::begin();
    let rootfs = workspace::Rootfs {
        source: opened.source.as_ref(),
        reference,
        dest: ws.rootfs(),
        needed: ws.needs_extract(),
        index: opts.analyze,
        view: Default::default(),
    };

    let sensor =
        pare_profile::locate_sensor(opts.profile.sensor.as_deref()).map_err(std::sync::Arc::new);
    // No stability run when verifying: verification re-runs the original itself, and only
    // when an answer differs, to tell a volatile answer (a start time) from a broken one.
    // That saves a whole container start and probe replay (0.6–0.9 s) on every build.
    let mut profile_opts = opts.profile.clone();
    if opts.verify {
        profile_opts.stability_run = false;
    }
    let from = match &opts.reuse_profile {
        Some(path) => profile::ProfileSource::Recorded(path),
        None => profile::ProfileSource::Trace {
            image: &opened.image,
            runtime: plan
                .runtime
                .as_deref()
                .expect("runtime chosen when profiling"),
            on_docker: plan.on_docker,
            sensor: &sensor,
            opts: &profile_opts,
        },
    };
    let profile = profile::profile(from, &rootfs, &mut phases)?;

    let original_view = rootfs.take_view();
    let selected = select::select(opts, &opened, &profile, ws.rootfs(), &mut phases)?;

    let destination = write::Destination {
        output: opts.output.as_deref(),
        tag: opts.tag.as_deref(),
        epoch: opts.epoch,
        on_docker: plan.on_docker,
        artifacts: &plan.artifacts,
    };
    let wrote = write::write(
        &destination,
        reference,
        &opened.meta,
        ws.rootfs(),
        &selected.selection,
        ws.dir(),
        &mut phases,
    )?;
    if let (Some(hook), write::Slim::Loaded(_)) = (&opts.on_loaded, &wrote.slim) {
        (hook.0)(&wrote.slim_ref);
    }

    // Analysis reads both images' files and needs nothing verification does: it runs on a
    // thread meanwhile (verification mostly waits for the slim app to start and answer).
    let (verification, analyses) = std::thread::scope(|scope| {
        let analyzing = opts.analyze.then(|| {
            phases.progress.begin("analyze", analyze::DETAIL);
            scope.spawn(|| {
                let t = Instant::now();
                // A push's staged layout is read once written; when staging failed, the
                // push's own error is what the build reports (settled below).
                let r = wrote.slim.wait_readable().then(|| {
                    analyze::analyze(
                        opened.source.as_ref(),
                        reference,
                        original_view,
                        &wrote.local_ref,
                    )
                });
                (r, t.elapsed())
            })
        });
        let verification = if opts.verify {
            let inputs = verify::VerifyInputs {
                reference,
                image: &opened.image,
                original_rootfs: ws.rootfs(),
                slim: &wrote.slim,
                slim_ref: &wrote.slim_ref,
                slim_local: &wrote.local_ref,
                runtime: plan
                    .runtime
                    .as_ref()
                    .expect("runtime chosen when verifying"),
                on_docker: plan.on_docker,
                profile: &profile,
                selection: &selected.selection,
                sensor: &sensor,
                work: ws.dir(),
                opts: &opts.profile,
            };
            verify::verify(&inputs, &mut phases).map(Some)
        } else {
            Ok(None)
        };
        let analyses = analyzing.map(|h| {
            // A panic in the analysis is a bug: it goes on as one.
            let (r, took) = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            phases.finish("analyze", took, r.as_ref().is_some_and(Result::is_ok));
            r
        });
        (verification, analyses)
    });
    // A push running beside verification is waited for first: its failure is the build's.
    let slim = wrote.slim.settle(&mut phases)?;
    let verification = verification?;
    let analyses = analyses.flatten().transpose()?;

    // What no probe exercised: files under the app's own directories that nothing asked for.
    let unexercised = pare_select::unexercised::unexercised(
        ws.rootfs(),
        &profile.sensor,
        &selected.facts,
        &selected.selection,
    )?;

    let slim_ref = slim.reference();
    let written = slim.finish(&mut phases)?;
    removals.wait();
    // The work dir (with an extracted rootfs: thousands of files) goes on a thread while the
    // report is saved and printed; the outcome waits for it when dropped. The total time
    // ends before it.
    let work_dir_removal = ws.remove_in_background();

    let report = BuildReport::new(report::Inputs {
        source: reference.to_string(),
        source_config_digest: opened.image.config_digest.to_string(),
        slim: slim_ref.to_string(),
        written: &written,
        runtime: plan
            .runtime
            .as_ref()
            .map(|r| r.name().to_string())
            .unwrap_or_else(|| "none".into()),
        profile: &profile,
        selection: selected.selection,
        verification,
        unexercised,
        before: analyses.as_ref().map(|a| &a.before),
        after: analyses.as_ref().map(|a| &a.after),
        source_layers: &opened.image.layers,
        source_is_daemon: plan.is_daemon,
        epoch: wrote.epoch,
        epoch_from: wrote.epoch_from,
        timings: phases.timings,
        total_seconds: t0.elapsed().as_secs_f64(),
        artifacts: plan.artifacts.clone(),
    });
    let report_path = report.save(&plan.artifacts)?;
    Ok(BuildOutcome {
        report,
        report_path,
        _work_dir_removal: work_dir_removal,
    })
}
