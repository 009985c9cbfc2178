//! The profiling run: [`profile`] opens the image and prepares the runtime, [`run_profile`]
//! runs it under the sensor, waits until it is ready, probes it, stops it and writes the
//! artifacts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pare_image::ResolvedImage;
use pare_probe::{PortKind, ProbeOptions, Readiness, ReadyPlan};
use pare_reference::ImageRef;
use pare_runtime::{Container, RunSpec, Runtime, SensorSpec};
use pare_trace::{AppState, ImageInfo, ProbeSpec, Profile, RunRecord, SCHEMA_VERSION};

use crate::image_run::explicit_probes;
use crate::ready::{not_ready, ready_sign};
use crate::report::{merge_report, read_report, traced_exec};
use crate::stability::stability_run;
use crate::{
    ContinueAfter, ImageRun, ProfileError, ProfileOptions, ProfileResult, Target, Timings, io_err,
    locate_sensor, write_artifacts,
};

/// Profiles an image end to end: open, choose the runtime, extract (embedded), run, probe,
/// write the artifacts.
pub fn profile(opts: &ProfileOptions) -> Result<ProfileResult, ProfileError> {
    let t0 = Instant::now();
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
    let choice = match (&opts.runtime, is_daemon) {
        (Some(r), _) => Some(r.as_str()),
        (None, false) => Some("embedded"),
        (None, true) => None,
    };
    let runtime = pare_runtime::detect(choice)?;
    opts.say(&format!("opening {reference}"));
    let source = pare_source::open(
        &reference,
        &pare_source::OpenOptions {
            platform: opts.platform.clone(),
            ..Default::default()
        },
    )?;
    let image = source.image().clone();
    let mut _rootfs_dir = None;
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
                message: e.to_string(),
            })?;
            _rootfs_dir = Some(dir);
            Target::Rootfs(dest)
        }
    };
    drop(source);
    let prepare = t0.elapsed();
    let result = run_profile(
        &image,
        &reference.to_string(),
        target,
        runtime.as_ref(),
        &sensor,
        opts,
    );
    let t_clean = Instant::now();
    drop(_rootfs_dir);
    let mut result = result?;
    result.timings.cleanup += t_clean.elapsed();
    result.timings.prepare = prepare;
    result.timings.total = t0.elapsed();
    Ok(result)
}

/// Removes the container whatever happens.
pub(crate) struct Guard(pub(crate) Box<dyn Container>);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.cleanup();
    }
}

/// A temp dir removed on drop and when the run is cancelled (Ctrl-C).
fn temp_dir(opts: &ProfileOptions, prefix: &str) -> Result<pare_runtime::TempDir, ProfileError> {
    opts.cancel
        .temp_dir(prefix)
        .map_err(io_err(&std::env::temp_dir()))
}

/// Runs an opened image under the sensor with `runtime`, probes it, and writes the artifacts
/// into `opts.output`.
pub fn run_profile(
    image: &ResolvedImage,
    reference: &str,
    target: Target,
    runtime: &dyn Runtime,
    sensor: &Path,
    opts: &ProfileOptions,
) -> Result<ProfileResult, ProfileError> {
    let t0 = Instant::now();
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
    let (daemon_image, rootfs) = match target {
        Target::Daemon(n) => (Some(n), None),
        Target::Rootfs(p) => (None, Some(p)),
    };
    let ports = run.ports_for(explicit.iter().flatten());
    let spec = RunSpec {
        daemon_image,
        rootfs,
        command: command.clone(),
        env: run.env.clone(),
        user: run.user.clone(),
        workdir: run.workdir.clone(),
        ports: ports.clone(),
        sensor: Some(SensorSpec {
            binary: sensor.to_path_buf(),
            output_dir: out_dir.path().to_path_buf(),
            fanotify: opts.fanotify,
        }),
        hostname: "pare".into(),
    };
    opts.say(&format!(
        "starting `{}` with the {} runtime",
        command.join(" "),
        runtime.name()
    ));
    // A bad --ready-* flag fails before anything starts.
    let sign = ready_sign(opts)?;
    let container = Guard(runtime.start(&spec)?);
    let c: &dyn Container = container.0.as_ref();
    let mut timings = Timings {
        start: t0.elapsed(),
        ..Default::default()
    };

    // Readiness: the ports the probes need (all exposed ones by default), or the user's sign.
    let t_ready = Instant::now();
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
    let named: Vec<u16> = explicit
        .iter()
        .flatten()
        .filter_map(ProbeSpec::port)
        .collect();
    let mut wait_ports: Vec<u16> = if named.is_empty() {
        // No port probes (or only exec/host-exec ones): still let a service come up first.
        run.tcp_ports.clone()
    } else {
        named.clone()
    };
    wait_ports.sort_unstable();
    wait_ports.dedup();
    wait_ports.retain(|p| !opts.expect_closed.contains(p));
    if job {
        wait_ports.clear();
    }
    // EXPOSEd ports no probe names may turn out unused; a port a probe names must answer.
    let droppable = run
        .tcp_ports
        .iter()
        .copied()
        .filter(|p| !named.contains(p))
        .collect();
    if !wait_ports.is_empty() || sign.is_some() {
        opts.wait_for(&match &sign {
            Some(_) => "the readiness sign".to_string(),
            None => format!("port {} to answer", pare_probe::port_list(&wait_ports)),
        });
    }
    let activity_file = out_dir.path().join(pare_trace::ACTIVITY_FILE);
    let activity = || {
        let text = std::fs::read_to_string(&activity_file).ok()?;
        let a = pare_trace::SensorActivity::parse(&text)?;
        Some(pare_probe::Activity {
            novelty: a.novelty,
            listens: a.listens,
        })
    };
    let ready = if job && sign.is_none() {
        None
    } else {
        Some(pare_probe::wait_until_ready(
            c,
            &ReadyPlan {
                ports: wait_ports.clone(),
                droppable,
                sign: sign.clone(),
                timeout: opts.timeout,
                activity: Some(&activity),
                probe: probe_opts.clone(),
            },
        )?)
    };
    timings.ready = t_ready.elapsed();
    let mut record = RunRecord {
        readiness: match (&ready, job) {
            (Some(r), _) => r.how.clone(),
            (None, _) => "a job (--job): not waiting for ports".to_string(),
        },
        ready_millis: timings.ready.as_millis() as u64,
        expected_closed: opts.expect_closed.clone(),
        job,
        ready_log: opts.ready_log.clone(),
        ready_url: opts.ready_url.clone(),
        ready_cmd: opts.ready_cmd.clone(),
        ..Default::default()
    };
    if let Some(r) = &ready {
        record.ports = r
            .ports
            .iter()
            .map(|(p, k)| (*p, k.name().to_string()))
            .collect();
        for p in &r.unused {
            record.unused_exposed.push(format!("{p}/tcp"));
            record
                .findings
                .push(format!("EXPOSE {p}/tcp: nothing listens"));
        }
        match &r.outcome {
            Readiness::Exited(e) if !job => {
                return Err(not_ready(c, reference, &r.how, Some(e)));
            }
            Readiness::TimedOut { .. } if r.ports.is_empty() => {
                return Err(not_ready(c, reference, &r.how, None));
            }
            _ => {}
        }
    }

    // Probes.
    let t_probes = Instant::now();
    let mut records = Vec::new();
    let mut exec_traces: Vec<Option<PathBuf>> = Vec::new();
    match explicit {
        Some(specs) => {
            for s in &specs {
                opts.say(&format!("probe {}", pare_probe::describe(s)));
                match s {
                    ProbeSpec::Exec { argv } => {
                        let n = exec_traces.len();
                        let (rec, traced) =
                            traced_exec(c, argv, &run, out_dir.path(), n, &probe_opts);
                        exec_traces.push(traced);
                        records.push(rec);
                    }
                    _ => records.push(pare_probe::run_probe(c, s, &probe_opts)),
                }
            }
        }
        None if run.tcp_ports.is_empty() || job => {
            opts.say(&format!(
                "{}: waiting up to {}s for the job to finish",
                if job { "a job" } else { "no exposed ports" },
                opts.timeout.as_secs()
            ));
            records.push(pare_probe::run_probe(c, &ProbeSpec::Job, &probe_opts));
        }
        None => {
            let known = ready.as_ref().map(|r| &r.ports);
            let unused = ready.as_ref().map(|r| r.unused.clone()).unwrap_or_default();
            for &port in run.tcp_ports.iter().filter(|p| !unused.contains(p)) {
                let kind = known
                    .and_then(|k| k.get(&port).copied())
                    .unwrap_or_else(|| pare_probe::classify_port(c, port, &probe_opts));
                match kind {
                    kind @ (PortKind::Http | PortKind::Https) => {
                        opts.wait_for(&format!("a crawl of port {port}"));
                        records.extend(pare_probe::crawl(
                            c,
                            port,
                            kind == PortKind::Https,
                            &probe_opts,
                        ));
                    }
                    PortKind::Protocol(protocol) => {
                        opts.say(&format!("port {port} speaks {}", protocol.name()));
                        records.push(pare_probe::run_probe(
                            c,
                            &ProbeSpec::Protocol { port, protocol },
                            &probe_opts,
                        ));
                    }
                    PortKind::Tcp | PortKind::Silent | PortKind::Closed => {
                        records.push(pare_probe::run_probe(
                            c,
                            &ProbeSpec::Tcp { port },
                            &probe_opts,
                        ));
                    }
                }
            }
        }
    }
    pare_probe::mark_volatile(c, &mut records, &probe_opts);
    timings.probes = t_probes.elapsed();
    // Whether the app still runs is part of its behaviour: verification compares it.
    // An exit shows a moment after it happened: when a probe got no answer, give it time.
    let settle = if records.iter().any(|r| r.outcome.error.is_some()) {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    record.after_probes = Some(match c.wait(settle)? {
        Some(e) => AppState::Exited(e),
        None => AppState::Running,
    });

    // Keep running as asked, then stop.
    let mut exit_notes: Vec<String> = Vec::new();
    match opts.continue_after {
        ContinueAfter::Probe => {}
        ContinueAfter::Seconds(n) => {
            opts.wait_for(&format!("{n}s more (--continue-after)"));
            opts.cancel.sleep(Duration::from_secs(n));
        }
        ContinueAfter::Exit(limit) => {
            opts.wait_for(&format!(
                "the app to exit, at most {}s (Ctrl-C aborts)",
                limit.as_secs()
            ));
            let deadline = Instant::now() + limit;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let note = format!(
                        "--continue-after exit: the app was still running after {}s; stopped it",
                        limit.as_secs()
                    );
                    pare_progress::Progress::notice(&opts.progress, &note);
                    exit_notes.push(note);
                    break;
                }
                if c.wait(left.min(Duration::from_secs(1)))?.is_some() {
                    break;
                }
            }
        }
        ContinueAfter::Signal => {
            pare_progress::Progress::notice(
                &opts.progress,
                &format!(
                    "the app is running; drive it now, then press Ctrl-C (or send SIGUSR1 to {}) to stop",
                    std::process::id()
                ),
            );
            opts.wait_for("you to press Ctrl-C or send SIGUSR1");
            opts.cancel
                .wait_proceed(Duration::from_millis(200), |d| Ok(c.wait(d)?.is_some()))
                .map_err(ProfileError::Runtime)?;
        }
    }
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

    let report_path = out_dir.path().join("sensor.json");
    let mut report = read_report(&report_path, &stderr)?;
    report.notices.append(&mut exit_notes);
    if report.exit.is_none() {
        report.exit = Some(exit);
    }
    for (i, t) in exec_traces.iter().enumerate() {
        match t.as_deref().map(|p| read_report(p, &[])) {
            Some(Ok(r)) => merge_report(&mut report, r, &format!("exec probe {}", i + 1)),
            Some(Err(e)) => report.notices.push(format!("exec probe {}: trace unreadable: {e}", i + 1)),
            None => report.notices.push(format!(
                "exec probe {}: could not run under the sensor; its files are only known to fanotify",
                i + 1
            )),
        }
    }

    if opts.stability_run && !records.is_empty() {
        let t_stab = Instant::now();
        opts.wait_for("a second, untraced run (answers that change between containers)");
        timings.untraced_startup = stability_run(
            runtime,
            &spec,
            &record,
            &mut records,
            &mut report,
            &probe_opts,
            opts.timeout,
        );
        timings.stability = t_stab.elapsed();
    }

    let profile = Profile {
        version: SCHEMA_VERSION,
        image: ImageInfo {
            reference: reference.to_string(),
            config_digest: image.config_digest.clone(),
            entrypoint: run.entrypoint.clone(),
            cmd: run.cmd.clone(),
            user: run.user.clone(),
            workdir: run.workdir.clone(),
            exposed_ports: run.exposed.clone(),
        },
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
    let artifacts = write_artifacts(&profile, &run.tcp_ports, &opts.output)?;
    timings.total = t0.elapsed();
    Ok(ProfileResult {
        profile,
        artifacts,
        timings,
        readiness,
    })
}
