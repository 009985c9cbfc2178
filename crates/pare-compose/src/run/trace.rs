//! The per-target phase: each target traced (and slimmed by pare-build, unless only
//! profiling) in its own fresh instance with its dependencies running; the targets at the same
//! time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pare_build::{BuildReport, GivenRuntime, OnLoaded};
use pare_profile::{ContinueAfter, Target};
use pare_reference::ImageRef;
use pare_runtime::Runtime;

use super::deferred::Wave;
use super::gate::{Opener, Then};
use super::instance::{Instance, Joined};
use super::service::{probe_file_text, run_override, slim_tag};
use super::summary::ServiceOutcome;
use super::{Context, RunError, file_err};
use pare_build::Progress as _;

/// One traced target: its outcome so far, and its build report with where it is.
pub(super) struct Traced {
    pub(super) outcome: ServiceOutcome,
    pub(super) report: Option<(BuildReport, PathBuf)>,
    /// When its trace (and build) ended: its instance may be torn down later.
    pub(super) ended: Instant,
}

impl Context<'_> {
    /// Traces (and slims, unless only profiling) target `t` in its own instance; `on_loaded`
    /// is told as soon as its slim image is in the daemon (before the build's report is done),
    /// `opener` as soon as its traced container started.
    pub(super) fn trace(
        &self,
        t: &String,
        on_loaded: Option<OnLoaded>,
        opener: Option<Arc<Opener>>,
    ) -> Result<Traced, RunError> {
        let t_start = Instant::now();
        let svc = &self.project.services[t];
        let dir = self.opts.artifacts.join(t);
        std::fs::create_dir_all(&dir).map_err(file_err(&dir))?;
        let probes = dir.join("probes.yaml");
        std::fs::write(&probes, probe_file_text(svc)?).map_err(file_err(&probes))?;
        let mut inst = Instance::new(
            self.docker,
            self.project,
            self.run,
            &format!("trace_{t}"),
            self.opts.keep,
            self.opts.profile.timeout.max(Duration::from_secs(60)),
        )?;
        inst.remove_volumes_later(self.deferred, Wave::Trace);
        let progress = self.progress_of(t);
        progress.begin("trace deps", &self.deps_text(t));
        let td = Instant::now();
        inst.start_dependencies(t, self.order, self.originals)?;
        progress.end("trace deps", td.elapsed(), "running");
        let mut popts = self.opts.profile.clone();
        popts.image = svc.image.clone();
        popts.output = dir.clone();
        popts.probe_file = Some(probes);
        popts.run_override = Some(run_override(svc));
        popts.stability_run = false;
        if let Some(c) = &svc.x_pare.continue_after {
            popts.continue_after = c.parse::<ContinueAfter>()?;
        }
        let attach = inst.attach(svc, false);
        let joined = Joined {
            docker: self.docker.clone(),
            attach,
        };
        let joined: Arc<dyn Runtime> = match opener {
            Some(opener) => Arc::new(Then {
                inner: Box::new(joined),
                then: move || opener.open(),
            }),
            None => Arc::new(joined),
        };
        if self.opts.profile_only {
            let src = pare_source::open(
                &ImageRef::DockerDaemon {
                    name: svc.image.clone(),
                },
                &pare_source::OpenOptions::default(),
            )?;
            let image = src.image().clone();
            drop(src);
            progress.begin("profile", &svc.image);
            let tp = Instant::now();
            let r = pare_profile::run_profile(
                &image,
                &svc.image,
                Target::Daemon(svc.image.clone()),
                joined.as_ref(),
                self.sensor,
                &popts,
            );
            progress.end(
                "profile",
                tp.elapsed(),
                if r.is_ok() { "done" } else { "failed" },
            );
            let r = r?;
            let failed = r.failed_probes().len();
            let outcome = ServiceOutcome {
                service: t.clone(),
                image: svc.image.clone(),
                slim: None,
                report: r.artifacts.profile_json.clone(),
                source_size: None,
                slim_size: None,
                verified: None,
                problems: if failed > 0 {
                    vec![format!("{failed} probe(s) failed")]
                } else {
                    Vec::new()
                },
                seconds: t_start.elapsed().as_secs_f64(),
            };
            return Ok(Traced {
                outcome,
                report: None,
                ended: Instant::now(),
            });
        }
        let mut bopts = self.opts.build.clone();
        bopts.profile = popts;
        bopts.verify = false;
        bopts.runtime = Some(GivenRuntime(joined));
        bopts
            .include_paths
            .extend(svc.x_pare.includes.iter().cloned());
        bopts.excludes.extend(svc.x_pare.excludes.iter().cloned());
        // A volume's data cannot reach the slim image: selection reads the image's own
        // files only (the container's mounts are never read).
        let shared = self
            .targets
            .iter()
            .any(|o| o != t && self.project.services[o].image == svc.image);
        bopts.tag = slim_tag(svc, shared);
        // The dependencies go as soon as the slim image is loaded (the build then only
        // analyzes the images and measures the gzip form) and every verify group has started
        // its first target (see `Deferred::wait_firsts`), or once the build ends without a
        // load.
        let (loaded, gone) = std::sync::mpsc::channel::<()>();
        bopts.on_loaded = Some(OnLoaded(Arc::new(move |slim: &ImageRef| {
            if let Some(hook) = &on_loaded {
                (hook.0)(slim);
            }
            let _ = loaded.send(());
        })));
        let built = std::thread::scope(|s| {
            let inst = &mut inst;
            let (deferred, run) = (self.deferred, self.run);
            s.spawn(move || {
                if gone.recv().is_ok() {
                    deferred.wait_firsts(&|| run.interrupted());
                }
                inst.teardown();
            });
            let built = pare_build::build(&bopts, &progress);
            // Drops the sender: the teardown goes on when the build ended without a load.
            bopts.on_loaded = None;
            built.map(|b| (b, Instant::now()))
        });
        // The trace's time ends with its build, not with its instance's teardown.
        let (built, ended) = built?;
        let slim = built
            .report
            .slim
            .reference
            .strip_prefix("docker-daemon:")
            .unwrap_or(&built.report.slim.reference)
            .to_string();
        let outcome = ServiceOutcome {
            service: t.clone(),
            image: svc.image.clone(),
            slim: Some(slim),
            report: built.report_path.clone(),
            source_size: built.report.source.size,
            slim_size: built.report.slim.size,
            verified: None,
            problems: Vec::new(),
            seconds: ended.duration_since(t_start).as_secs_f64(),
        };
        Ok(Traced {
            outcome,
            report: Some((built.report, built.report_path)),
            ended,
        })
    }
}
