//! The profiling run: [`profile`] opens the image and prepares the runtime, [`run_profile`]
//! runs it under the sensor, waits until it is ready, probes it, stops it and writes the
//! artifacts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pare_image::ResolvedImage;
use pare_probe::ProbeOptions;
use pare_reference::ImageRef;
use pare_runtime::{Container, RunSpec, Runtime, SensorSpec};
use pare_trace::{ExitInfo, ImageInfo, ProbeSpec, Profile, SCHEMA_VERSION, SensorReport};

use crate::drive;
use crate::image_run::explicit_probes;
use crate::ready::ready_sign;
use crate::report::{merge_report, read_report};
use crate::stability::stability_run;
use crate::{
    ImageRun, ProfileError, ProfileOptions, ProfileResult, Target, Timings, io_err, locate_sensor,
    write_artifacts,
};

/// Profiles an image end to end: open, choose the runtime, extract (embedded), run, probe,
/// write the artifacts.
pub fn profile(opts: &ProfileOptions) -> Result<ProfileResult, ProfileError> {
    let t0 = Instant::now();
    let prepared = prepare(opts)?;
    let prepare = t0.elapsed();
    let result = run_profile(
        &prepared.image,
        &prepared.reference.to_string(),
        prepared.target,
        prepared.runtime.as_ref(),
        &prepared.sensor,
        opts,
    );
    let t_clean = Instant::now();
    drop(prepared.rootfs_dir);
    let mut result = result?;
    result.timings.cleanup += t_clean.elapsed();
    result.timings.prepare = prepare;
    result.timings.total = t0.elapsed();
    Ok(result)
}

/// What [`prepare`] made ready for the run.
struct Prepared {
    reference: ImageRef,
    sensor: PathBuf,
    runtime: std::sync::Arc<dyn Runtime>,
    image: ResolvedImage,
    target: Target,
    /// Holds the extracted root filesystem (embedded runtime) until the run is over.
    rootfs_dir: Option<pare_runtime::TempDir>,
}

/// The prepare phase: parse the reference, find the sensor, check the probe file, choose the
/// runtime, open the image and (for the embedded runtime) extract its root filesystem.
fn prepare(opts: &ProfileOptions) -> Result<Prepared, ProfileError> {
    let reference = ImageRef::parse(&opts.image)?;
    let sensor = locate_sensor(opts.sensor.as_deref())?;
    if let Some(file) = &opts.probe_file {
        // Fail on a bad probe file before anything is started (ports are checked later,
        // against the image's exposed ports).
        let text = std::fs::read_to_string(file).map_err(io_err(file))?;
        pare_probe::parse_probes(&text, file, Some(0))?;
    }
    let is_daemon = matches!(reference, ImageRef::DockerDaemon { .. });
    // A daemonless reference runs without the daemon unless the user insists.
    let choice = match (opts.runtime, is_daemon) {
        (Some(r), _) => Some(r),
        (None, false) => Some(pare_runtime::RuntimeKind::Embedded),
        (None, true) => None,
    };
    let runtime = pare_runtime::detect(choice, &opts.cancel)?;
    opts.say(&format!("opening {reference}"));
    let source = pare_source::open(
        &reference,
        &pare_source::OpenOptions {
            platform: opts.platform.clone(),
            ..Default::default()
        },
    )?;
    let image = source.image().clone();
    let mut rootfs_dir = None;
    let target = match (runtime.name(), &reference) {
        ("docker", ImageRef::DockerDaemon { name }) => Target::Daemon(name.clone()),
        ("docker", _) => {
            return Err(ProfileError::NeedsDaemonImage {
                reference: reference.to_string(),
            });
        }
        _ => {
            let dir = temp_dir(opts, "pare-rootfs-")?;
            let dest = dir.path().join("rootfs");
            std::fs::create_dir(&dest).map_err(io_err(&dest))?;
            opts.say(&format!(
                "extracting {} layers into {}",
                image.layers.len(),
                dest.display()
            ));
            pare_layerfs::extract(source.as_ref(), &dest).map_err(|e| ProfileError::Extract {
                image: reference.to_string(),
                dest: dest.clone(),
                source: Box::new(e),
            })?;
            rootfs_dir = Some(dir);
            Target::Rootfs(dest)
        }
    };
    drop(source);
    Ok(Prepared {
        reference,
        sensor,
        runtime,
        image,
        target,
        rootfs_dir,
    })
}

/// Removes the container whatever happens (in the background while the caller defers
/// removals, see [`pare_runtime::deferred`]).
struct Guard(Option<Box<dyn Container>>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            pare_runtime::deferred::remove(c, None);
        }
    }
}

/// A temp dir removed on drop and when the run is cancelled (Ctrl-C).
fn temp_dir(opts: &ProfileOptions, prefix: &str) -> Result<pare_runtime::TempDir, ProfileError> {
    opts.cancel
        .temp_dir(prefix)
        .map_err(io_err(&std::env::temp_dir()))
}

/// Runs an opened image under the sensor with `runtime`, probes it, and writes the artifacts
/// into `opts.output`. The phases, each with its own inputs and outputs: plan the run, start
/// it, wait until it is ready, probe it, keep it running as asked, stop it, read the sensor's
/// reports, run it again untraced (answers that change), write the artifacts.
pub fn run_profile(
    image: &ResolvedImage,
    reference: &str,
    target: Target,
    runtime: &dyn Runtime,
    sensor: &Path,
    opts: &ProfileOptions,
) -> Result<ProfileResult, ProfileError> {
    let t0 = Instant::now();
    let plan = plan(image, reference, target, sensor, opts)?;
    opts.say(&format!(
        "starting `{}` with the {} runtime",
        plan.spec.command.join(" "),
        runtime.name()
    ));
    // A bad --ready-* flag fails before anything starts.
    let sign = ready_sign(opts)?;
    let container = Guard(Some(runtime.start(&plan.spec)?));
    let c: &dyn Container = container.0.as_deref().expect("just started");
    let mut timings = Timings {
        start: t0.elapsed(),
        ..Default::default()
    };

    let t_ready = Instant::now();
    let ready = drive::await_ready(c, &plan, sign, opts)?;
    timings.ready = t_ready.elapsed();
    let mut record = drive::run_record(c, reference, &plan, ready.as_ref(), timings.ready, opts)?;

    let t_probes = Instant::now();
    let probed = drive::probe(c, &plan, ready.as_ref(), opts);
    timings.probes = t_probes.elapsed();
    let mut records = probed.records;
    record.after_probes = Some(drive::state_after_probes(c, &records)?);

    let exit_notes = drive::keep_running(c, opts)?;
    let t_stop = Instant::now();
    let exit = match c.wait(Duration::ZERO)? {
        Some(e) => e,
        None => c.stop(Duration::from_secs(10))?,
    };
    timings.stop = t_stop.elapsed();
    let (_, stderr) = c.logs().unwrap_or_default();
    let t_clean = Instant::now();
    drop(container);
    timings.cleanup = t_clean.elapsed();

    let mut report = sensor_report(
        plan.out_dir.path(),
        &stderr,
        exit,
        exit_notes,
        &probed.exec_traces,
    )?;
    if opts.stability_run && !records.is_empty() {
        let t_stab = Instant::now();
        opts.wait_for("a second, untraced run (answers that change between containers)");
        timings.untraced_startup = stability_run(
            runtime,
            &plan.spec,
            &record,
            &mut records,
            &mut report,
            &plan.probe_opts,
            opts.timeout,
        );
        timings.stability = t_stab.elapsed();
    }

    let profile = Profile {
        version: SCHEMA_VERSION,
        image: image_info(image, reference, &plan.run),
        runtime: runtime.name().to_string(),
        sensor: report,
        probes: records,
        run: Some(record),
    };
    let readiness = profile
        .run
        .as_ref()
        .map(|r| r.readiness.clone())
        .unwrap_or_default();
    let artifacts = write_artifacts(&profile, &plan.run.tcp_ports, &opts.output)?;
    timings.total = t0.elapsed();
    Ok(ProfileResult {
        profile,
        artifacts,
        timings,
        readiness,
    })
}

/// The planned run: how the image runs, the probes the user asked for, what to start.
pub(crate) struct Plan {
    pub(crate) run: ImageRun,
    /// The user's probes; `None` for the defaults.
    pub(crate) explicit: Option<Vec<ProbeSpec>>,
    pub(crate) spec: RunSpec,
    /// Where the sensor writes (mounted into the container).
    pub(crate) out_dir: pare_runtime::TempDir,
    pub(crate) probe_opts: ProbeOptions,
    /// A job: it may exit before any port answers; it runs to the end.
    pub(crate) job: bool,
}

/// The plan phase: the image's run (with a service's override), its command, the probes, the
/// sensor's output dir and the container to start.
fn plan(
    image: &ResolvedImage,
    reference: &str,
    target: Target,
    sensor: &Path,
    opts: &ProfileOptions,
) -> Result<Plan, ProfileError> {
    let mut run = ImageRun::from_config(&image.config);
    if let Some(o) = &opts.run_override {
        o.apply(&mut run);
    }
    let command = run.command();
    if command.is_empty() {
        return Err(ProfileError::NoCommand {
            image: reference.to_string(),
        });
    }
    let explicit = explicit_probes(opts, &run)?;
    let out_dir = temp_dir(opts, "pare-sensor-out-")?;
    let ports = run.ports_for(explicit.iter().flatten());
    let spec = RunSpec {
        source: target,
        command,
        env: run.env.clone(),
        user: run.user.clone(),
        workdir: run.workdir.clone(),
        ports,
        sensor: Some(SensorSpec {
            binary: sensor.to_path_buf(),
            output_dir: out_dir.path().to_path_buf(),
            fanotify: opts.fanotify,
        }),
        hostname: "pare".into(),
    };
    let probe_opts = ProbeOptions {
        job_timeout: opts.timeout,
        progress: opts.progress.clone(),
        ..ProbeOptions::default()
    };
    let job = opts.job
        || explicit
            .iter()
            .flatten()
            .any(|s| matches!(s, ProbeSpec::Job));
    Ok(Plan {
        run,
        explicit,
        spec,
        out_dir,
        probe_opts,
        job,
    })
}

/// The sensor's report of the run, with the stop's notes, the exit when the sensor wrote none,
/// and the reports of the traced `--exec` probes merged in.
fn sensor_report(
    out_dir: &Path,
    stderr: &[u8],
    exit: ExitInfo,
    mut exit_notes: Vec<String>,
    exec_traces: &[Option<PathBuf>],
) -> Result<SensorReport, ProfileError> {
    let report_path = out_dir.join("sensor.json");
    let mut report = read_report(&report_path, stderr)?;
    report.notices.append(&mut exit_notes);
    if report.exit.is_none() {
        report.exit = Some(exit);
    }
    for (i, t) in exec_traces.iter().enumerate() {
        match t.as_deref().map(|p| read_report(p, &[])) {
            Some(Ok(r)) => merge_report(&mut report, r, &format!("exec probe {}", i + 1)),
            Some(Err(e)) => report.notices.push(format!(
                "exec probe {}: trace unreadable: {}",
                i + 1,
                pare_progress::chain(&e)
            )),
            None => report.notices.push(format!(
                "exec probe {}: could not run under the sensor; its files are only known to fanotify",
                i + 1
            )),
        }
    }
    Ok(report)
}

fn image_info(image: &ResolvedImage, reference: &str, run: &ImageRun) -> ImageInfo {
    ImageInfo {
        reference: reference.to_string(),
        config_digest: image.config_digest.to_string(),
        entrypoint: run.entrypoint.clone(),
        cmd: run.cmd.clone(),
        user: run.user.clone(),
        workdir: run.workdir.clone(),
        exposed_ports: run.exposed.clone(),
    }
}
