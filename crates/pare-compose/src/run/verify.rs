//! The verify phase: each target in a fresh instance of the project with the slim images in
//! place, started with its dependencies running, the probes replayed, every started
//! healthcheck passing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pare_build::BuildReport;
use pare_runtime::{Health, RunSpec};
use pare_trace::ProbeSpec;

use super::deferred::{Started, Telling, Wave};
use super::instance::{Instance, Joined};
use super::service::image_run;
use super::summary::ServiceOutcome;
use super::{Context, RunError, file_err};
use crate::model::Service;
use crate::order;
use pare_build::Progress as _;

/// One target's verification: what it found, and which of its dependencies were unhealthy
/// at the end.
pub(super) struct Verified {
    service: String,
    verification: Option<pare_verify::Verification>,
    problems: Vec<String>,
    ok: bool,
    unhealthy: Vec<String>,
    /// When the target itself started being verified (its dependencies running).
    pub(super) began: Instant,
}

/// Verifies target `t` in a fresh instance of the project, with the slim image of every
/// target among `targets`, which `slim_of` waits for (`None`: it was never made, and nothing
/// is verified). The dependencies that need no slim image start at once; the others as soon as
/// theirs exist; `t` itself once its own does.
pub(super) fn verify_target(
    ctx: &Context<'_>,
    t: &str,
    targets: &[String],
    slim_of: &dyn Fn(&str) -> Option<String>,
) -> Option<Verified> {
    let (project, opts, progress) = (ctx.project, ctx.opts, ctx.progress_of(t));
    // Volume removals wait until this says the target started (see `deferred`).
    let told = Started::new(ctx.deferred);
    let mut inst = match Instance::new(
        ctx.docker,
        project,
        ctx.run,
        &format!("verify_{t}"),
        opts.keep,
        opts.profile.timeout.max(Duration::from_secs(60)),
    ) {
        Ok(mut inst) => {
            inst.remove_volumes_later(ctx.deferred, Wave::Verify);
            inst
        }
        Err(e) => return Some(Verified::failed(t, &e, Vec::new(), Instant::now())),
    };
    progress.begin("verify deps", &ctx.deps_text(t));
    let td = Instant::now();
    let mut images = ctx.originals.clone();
    let ahead = inst.start_ahead(t, ctx.order, &images, targets);
    for d in order::dependencies(project, t, ctx.order) {
        if targets.contains(&d) {
            images.insert(d.clone(), slim_of(&d)?);
        }
    }
    let started = ahead.and_then(|()| inst.start_needed(t, ctx.order, &images));
    told.deps_created();
    let started = started.and_then(|()| inst.wait_needed(t));
    let word = if started.is_ok() { "running" } else { "failed" };
    progress.end("verify deps", td.elapsed(), word);
    images.insert(t.to_string(), slim_of(t)?);
    progress.begin("verify", &format!("with {}", ctx.deps_text(t)));
    let tv = Instant::now();
    let result = started.and_then(|()| {
        verify_one(
            &inst,
            &project.services[t],
            t,
            &images,
            &opts.artifacts,
            &told,
        )
    });
    // Every service that ran has to be healthy at the end.
    let unhealthy = inst
        .running
        .iter()
        .filter(|(_, c)| matches!(c.health(), Ok(Health::Unhealthy)))
        .map(|(n, _)| n.clone())
        .collect();
    let verified = match result {
        Ok(v) => Verified::of(t, v, unhealthy, tv),
        Err(e) => Verified::failed(t, &e, unhealthy, tv),
    };
    let word = if verified.ok { "passed" } else { "failed" };
    progress.end("verify", tv.elapsed(), word);
    Some(verified)
}

impl Verified {
    fn of(t: &str, v: pare_verify::Verification, unhealthy: Vec<String>, began: Instant) -> Self {
        let problems: Vec<String> = v
            .probes
            .iter()
            .filter(|p| !p.ok)
            .map(|p| format!("{}: expected {}, got {}", p.probe, p.expected, p.actual))
            .collect();
        Verified {
            service: t.to_string(),
            ok: problems.is_empty() && v.ok(),
            verification: Some(v),
            problems,
            unhealthy,
            began,
        }
    }

    fn failed(t: &str, e: &RunError, unhealthy: Vec<String>, began: Instant) -> Self {
        Verified {
            service: t.to_string(),
            verification: None,
            problems: vec![pare_progress::chain(e)],
            ok: false,
            unhealthy,
            began,
        }
    }
}

/// Records each verification in its target's `report.json` and outcome; a target that was
/// unhealthy as a dependency of another's verification fails too.
pub(super) fn record(
    verified: &[Verified],
    outcomes: &mut [ServiceOutcome],
    reports: &mut BTreeMap<String, (BuildReport, PathBuf)>,
) -> Result<(), RunError> {
    for v in verified {
        let t = &v.service;
        if let Some((report, path)) = reports.get_mut(t) {
            report.verification = v.verification.clone();
            let json = serde_json::to_vec_pretty(&*report).map_err(|source| RunError::Json {
                path: path.clone(),
                source,
            })?;
            std::fs::write(&*path, json).map_err(file_err(path))?;
        }
        if let Some(o) = outcomes.iter_mut().find(|o| &o.service == t) {
            o.verified = Some(v.ok);
            o.problems = v.problems.clone();
        }
    }
    for n in verified.iter().flat_map(|v| &v.unhealthy) {
        if let Some(o) = outcomes.iter_mut().find(|o| &o.service == n) {
            if !o.problems.iter().any(|p| p == UNHEALTHY) {
                o.verified = Some(false);
                o.problems.push(UNHEALTHY.into());
            }
        }
    }
    Ok(())
}

const UNHEALTHY: &str = "unhealthy with the slim images running";

/// Verifies target `t` (its dependencies running) against its recorded probes.
fn verify_one(
    inst: &Instance<'_>,
    svc: &Service,
    t: &str,
    images: &BTreeMap<String, String>,
    artifacts: &Path,
    told: &Started,
) -> Result<pare_verify::Verification, RunError> {
    let profile_path = artifacts.join(t).join("profile.json");
    let profile = pare_profile::read_profile(&profile_path)?;
    let image = &images[t];
    let run = image_run(image, svc)?;
    let mut ports = svc.ports();
    for p in profile
        .probes
        .iter()
        .filter_map(|r| ProbeSpec::port(&r.spec))
    {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let spec = RunSpec {
        source: pare_runtime::RunSource::Daemon(image.clone()),
        command: run.command(),
        env: run.env.clone(),
        user: run.user.clone(),
        workdir: run.workdir.clone(),
        ports,
        sensor: None,
        hostname: svc.name.clone(),
    };
    let joined = Joined {
        docker: inst.docker.clone(),
        attach: inst.attach(svc, true),
    };
    let vopts = pare_verify::VerifyOptions {
        ready_timeout: inst.timeout,
        ..Default::default()
    };
    let telling = Telling {
        inner: &joined,
        started: told,
    };
    let v = pare_verify::verify(&telling, &spec, &profile.probes, &vopts).map_err(|e| {
        RunError::Verify {
            image: t.to_string(),
            source: Box::new(e),
        }
    })?;
    Ok(v)
}
