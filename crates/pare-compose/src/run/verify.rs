//! The verify phase: the project up again with every slim image in place; each target
//! started with its dependencies running, the probes replayed, every started healthcheck
//! passing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use pare_runtime::{Health, RunSpec};
use pare_trace::ProbeSpec;

use super::instance::{Instance, Joined};
use super::service::image_run;
use super::trace::TraceResults;
use super::{Context, RunError, file_err};
use crate::model::Service;

/// Verifies every target with the project up again on the slim images, and records each
/// verification in its target's `report.json` and outcome.
pub(super) fn verify_all(
    ctx: &Context<'_>,
    targets: &[String],
    traced: &mut TraceResults,
) -> Result<(), RunError> {
    let (project, opts, progress) = (ctx.project, ctx.opts, ctx.progress);
    let TraceResults {
        outcomes,
        images: slim_images,
        reports,
    } = traced;
    let mut inst = Instance::new(
        ctx.docker,
        project,
        ctx.run,
        "verify",
        opts.keep,
        opts.profile.timeout.max(Duration::from_secs(60)),
    )?;
    for t in targets {
        let svc = &project.services[t];
        progress.begin("verify", &format!("{t} with {}", ctx.deps_text(t)));
        let tv = Instant::now();
        let result = verify_one(&mut inst, svc, t, ctx.order, slim_images, &opts.artifacts);
        let (verification, mut problems) = match result {
            Ok(v) => v,
            Err(e) => (None, vec![pare_progress::chain(&e)]),
        };
        let ok = problems.is_empty() && verification.as_ref().is_some_and(|v| v.ok());
        progress.end("verify", tv.elapsed(), if ok { "passed" } else { "failed" });
        if let Some(v) = &verification {
            for p in v.probes.iter().filter(|p| !p.ok) {
                problems.push(format!(
                    "{}: expected {}, got {}",
                    p.probe, p.expected, p.actual
                ));
            }
        }
        if let Some((report, path)) = reports.get_mut(t) {
            report.verification = verification;
            let json = serde_json::to_vec_pretty(&*report).map_err(|source| RunError::Json {
                path: path.clone(),
                source,
            })?;
            std::fs::write(&*path, json).map_err(file_err(path))?;
        }
        if let Some(o) = outcomes.iter_mut().find(|o| &o.service == t) {
            o.verified = Some(ok);
            o.problems = problems;
        }
    }
    // Every service that ran has to be healthy at the end.
    let unhealthy: Vec<String> = inst
        .running
        .iter()
        .filter(|(_, c)| matches!(c.health(), Ok(Health::Unhealthy)))
        .map(|(n, _)| n.clone())
        .collect();
    for n in unhealthy {
        if let Some(o) = outcomes.iter_mut().find(|o| o.service == n) {
            o.verified = Some(false);
            o.problems
                .push("unhealthy with the slim images running".into());
        }
    }
    Ok(())
}

/// Verifies target `t` (with its dependencies started) against its recorded probes.
fn verify_one(
    inst: &mut Instance<'_>,
    svc: &Service,
    t: &str,
    order: &[String],
    images: &BTreeMap<String, String>,
    artifacts: &Path,
) -> Result<(Option<pare_verify::Verification>, Vec<String>), RunError> {
    inst.start_dependencies(t, order, images)?;
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
    let v = pare_verify::verify(&joined, &spec, &profile.probes, &vopts).map_err(|e| {
        RunError::Verify {
            image: t.to_string(),
            source: Box::new(e),
        }
    })?;
    Ok((Some(v), Vec::new()))
}
