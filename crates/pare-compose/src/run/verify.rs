//! The verify phase: the targets in fresh instances of the project with the slim images in
//! place, each started with its dependencies running, the probes replayed, every started
//! healthcheck passing.
//!
//! A target that other targets depend on is verified in the instance of one of its users
//! (its verify group, [`Plan::verify_groups`](super::plan::Plan::verify_groups)): `db`
//! first, then, with that same slim `db` still running, `api`. Why that stays sound:
//! - `db`'s own verification sees what a fresh instance shows it: nothing that depends on
//!   it has started yet (dependencies of `api` that need no slim image, such as `cache`,
//!   may already run; nothing declares that it talks to `db` without depending on it);
//! - `api` starts only once `db` is verified and meets `api`'s `depends_on` condition, and
//!   its probes run against a slim `db` that started from empty volumes, as in a fresh
//!   instance;
//! - the trade-off: `api`'s probes run after `db`'s. Probes that change `db`'s data (a write
//!   in `db`'s own `x-pare` probes) could make `api` answer differently than in its trace
//!   (which had a fresh `db`): a false failure, not a false pass. In exchange the slim `db`
//!   is started, and its data dir initialised, once instead of once more for each user.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pare_build::BuildReport;
use pare_runtime::{Attach, CreatedContainer, DockerRuntime, Health, RunSpec};
use pare_trace::ProbeSpec;

use super::deferred::{Started, Wave};
use super::gate::Then;
use super::instance::{Instance, Joined};
use super::kept::Keeping;
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

/// Verifies `group` (in start order, the target the others are verified for last) in one
/// fresh instance of the project, with the slim image of every target among `targets`, which
/// `slim_of` waits for (`None`: it was never made, and nothing more is verified). The
/// dependencies that need no slim image start at once; the others as soon as theirs exist;
/// each target once its own does and its dependencies meet their conditions. Every target but
/// the last stays running for the ones after it. Each verification comes with when it ended.
pub(super) fn verify_group(
    ctx: &Context<'_>,
    group: &[String],
    targets: &[String],
    slim_of: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Vec<(Verified, Instant)> {
    let Some(top) = group.last() else {
        return Vec::new();
    };
    let opts = ctx.opts;
    // The verified containers pare-verify removes (the last target's) go in the background,
    // while the instance (declared after this, so dropped first) removes the rest beside
    // them; the guard waits for them at the end.
    let _removals = pare_runtime::deferred::DeferRemovals::begin();
    // Volume removals wait until each target here says it started (see `deferred`).
    let told: Vec<Started> = (0..group.len())
        .map(|i| Started::new(ctx.deferred, i == 0))
        .collect();
    let failed_all = |e: &RunError| -> Vec<(Verified, Instant)> {
        let now = Instant::now();
        let v = group
            .iter()
            .map(|t| (Verified::failed(t, e, Vec::new(), now), now));
        v.collect()
    };
    let mut inst = match Instance::new(
        ctx.docker,
        ctx.project,
        ctx.run,
        &format!("verify_{top}"),
        opts.keep,
        opts.profile.timeout.max(Duration::from_secs(60)),
    ) {
        Ok(mut inst) => {
            inst.remove_volumes_later(ctx.deferred, Wave::Verify);
            inst
        }
        Err(e) => return failed_all(&e),
    };
    let images = ctx.originals.clone();
    if let Err(e) = inst.start_ahead(top, ctx.order, &images, targets) {
        return failed_all(&e);
    }
    // Each target after the first is created (not started) as soon as its slim image exists,
    // while the ones before it are still being verified: only its start waits for them.
    let attach: Vec<_> = group
        .iter()
        .map(|t| inst.attach(&ctx.project.services[t], true))
        .collect();
    let mut here = Group {
        ctx,
        inst,
        targets,
        slim_of,
        images,
    };
    std::thread::scope(|s| {
        let ahead: Vec<_> = group
            .iter()
            .zip(&attach)
            .enumerate()
            .map(|(i, (t, attach))| {
                (i > 0).then(|| {
                    s.spawn(move || {
                        let image = slim_of(t)?;
                        let svc = &ctx.project.services[t];
                        Some(made(
                            svc,
                            &image,
                            &opts.artifacts,
                            Some((ctx.docker, attach)),
                        ))
                    })
                })
            })
            .collect();
        let mut out = Vec::new();
        for ((t, told), ahead) in group.iter().zip(&told).zip(ahead) {
            let ahead = ahead.and_then(|h| h.join().ok()).flatten();
            match here.verify(t, told, t != top, ahead) {
                Some(v) => out.push((v, Instant::now())),
                None => break,
            }
        }
        out
    })
}

/// One verify group's instance, and the images its services run from so far.
struct Group<'g, 'c> {
    ctx: &'g Context<'c>,
    inst: Instance<'c>,
    targets: &'g [String],
    slim_of: &'g (dyn Fn(&str) -> Option<String> + Sync),
    /// Each service's image: the original until a target's slim one is made.
    images: BTreeMap<String, String>,
}

impl Group<'_, '_> {
    /// Verifies target `t`: starts its dependencies not running yet (the slim image of those
    /// among the targets), waits for its conditions, then `t` from its slim image; `kept`
    /// leaves `t` running afterwards. `None` when a slim image was never made.
    fn verify(
        &mut self,
        t: &str,
        told: &Started,
        kept: bool,
        ahead: Option<Result<Made, RunError>>,
    ) -> Option<Verified> {
        let ctx = self.ctx;
        let (project, progress) = (ctx.project, ctx.progress_of(t));
        progress.begin("verify deps", &ctx.deps_text(t));
        let td = Instant::now();
        for d in order::dependencies(project, t, ctx.order) {
            if self.targets.contains(&d) {
                self.images.insert(d.clone(), (self.slim_of)(&d)?);
            }
        }
        let started = self.inst.start_needed(t, ctx.order, &self.images);
        told.deps_created();
        let started = started.and_then(|()| self.inst.wait_needed(t));
        let word = if started.is_ok() { "running" } else { "failed" };
        progress.end("verify deps", td.elapsed(), word);
        self.images.insert(t.to_string(), (self.slim_of)(t)?);
        progress.begin("verify", &format!("with {}", ctx.deps_text(t)));
        let tv = Instant::now();
        let svc = &project.services[t];
        let result = started
            .and_then(|()| match ahead {
                Some(made) => made,
                None => made(svc, &self.images[t], &ctx.opts.artifacts, None),
            })
            .and_then(|m| verify_one(&mut self.inst, svc, m, told, kept));
        // Every service that ran has to be healthy at the end.
        let unhealthy = self
            .inst
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

/// What verifying a target runs: its slim image as the service with the ports its probes
/// use, the probes, and its container when made ahead.
struct Made {
    spec: RunSpec,
    probes: Vec<pare_trace::ProbeRecord>,
    created: Option<CreatedContainer>,
}

/// [`Made`] for `svc` from slim `image`; with `create`, its container is created (joined to
/// its instance as `Attach` says), not started.
fn made(
    svc: &Service,
    image: &str,
    artifacts: &Path,
    create: Option<(&DockerRuntime, &Attach)>,
) -> Result<Made, RunError> {
    let profile_path = artifacts.join(&svc.name).join("profile.json");
    let profile = pare_profile::read_profile(&profile_path)?;
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
        source: pare_runtime::RunSource::Daemon(image.to_string()),
        command: run.command(),
        env: run.env.clone(),
        user: run.user.clone(),
        workdir: run.workdir.clone(),
        ports,
        sensor: None,
        hostname: svc.name.clone(),
    };
    let created = match create {
        Some((docker, attach)) => Some(docker.create_attached(&spec, attach)?),
        None => None,
    };
    Ok(Made {
        spec,
        probes: profile.probes,
        created,
    })
}

/// Verifies target `svc` (its dependencies running) against its recorded probes, starting
/// the container `made` holds when there is one; `kept` leaves it running in `inst` (for the
/// services verified after it).
fn verify_one(
    inst: &mut Instance<'_>,
    svc: &Service,
    made: Made,
    told: &Started,
    kept: bool,
) -> Result<pare_verify::Verification, RunError> {
    let t = &svc.name;
    let keeping = Keeping::new(
        Joined {
            docker: inst.docker.clone(),
            attach: inst.attach(svc, true),
        },
        kept,
        made.created,
    );
    let vopts = pare_verify::VerifyOptions {
        ready_timeout: inst.timeout,
        ..Default::default()
    };
    let telling = Then {
        inner: &keeping,
        then: || told.give(),
    };
    let v = pare_verify::verify(&telling, &made.spec, &made.probes, &vopts);
    // Removed with the instance; what depends on it waits for its condition as for any
    // dependency (an exited one fails them).
    if let Some(c) = keeping.take() {
        inst.running.insert(t.clone(), c);
    }
    v.map_err(|e| RunError::Verify {
        image: t.clone(),
        source: Box::new(e),
    })
}
