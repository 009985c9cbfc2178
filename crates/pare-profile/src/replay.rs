//! Start, wait, replay: one fresh run of an image to replay recorded probes against. The
//! untraced stability run of `pare profile` and every run of `pare-verify` (the slim image,
//! the original again, the traced re-run that names missing files) go through it.

use std::time::{Duration, Instant};

use pare_probe::{ProbeOptions, ReadyReport, Replay};
use pare_runtime::{Container, RunSpec, Runtime, RuntimeError};
use pare_trace::{ProbeRecord, RunRecord};

use crate::{ProfileError, replay_ready};

/// How to run the image and replay the probes.
#[derive(Debug, Clone)]
pub struct ReplayPlan<'a> {
    /// How the profiled run got ready: this run must get ready the same way. `None` for a
    /// profile from before this was recorded: the spec's ports are waited for (those nothing
    /// listens on given up once the app is idle).
    pub record: Option<&'a RunRecord>,
    /// Whether to wait for readiness at all.
    pub wait: bool,
    /// How long the readiness wait may take.
    pub timeout: Duration,
    /// Timeouts and crawl limits for the replayed probes.
    pub probe: &'a ProbeOptions,
    /// What the progress shows as awaited during the readiness wait.
    pub waiting: Option<&'a str>,
    /// Replay even when the app did not get ready (verification: the answers are the
    /// evidence); otherwise nothing is replayed then.
    pub replay_unready: bool,
    /// Stop the app with this grace period before removing the container; `None` removes
    /// (kills) it at once.
    pub stop_grace: Option<Duration>,
}

/// What the run showed.
#[derive(Debug)]
pub struct Replayed {
    /// How the readiness wait ended; `None` when it was not waited for.
    pub ready: Option<ReadyReport>,
    /// From just before the start until the readiness wait ended.
    pub startup: Duration,
    /// One per recorded probe, in order (empty when the app did not get ready and
    /// [`ReplayPlan::replay_unready`] is false).
    pub replays: Vec<Replay>,
}

/// Why the run could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The container did not start.
    #[error(transparent)]
    Start(RuntimeError),
    /// The readiness wait failed (not: the app did not get ready, which is a [`Replayed`]).
    #[error(transparent)]
    Ready(ProfileError),
}

/// Starts `spec`, waits until it is ready as `plan` says, replays `records`, hands the
/// container and what the run showed to `then`, and removes the container whatever happened.
pub fn start_and_replay<T>(
    runtime: &dyn Runtime,
    spec: &RunSpec,
    records: &[ProbeRecord],
    plan: &ReplayPlan<'_>,
    then: impl FnOnce(&dyn Container, Replayed) -> T,
) -> Result<T, ReplayError> {
    let t_start = Instant::now();
    let container = runtime.start(spec).map_err(ReplayError::Start)?;
    let c = container.as_ref();
    let result = wait_and_replay(c, spec, records, plan, t_start).map(|r| then(c, r));
    // Nothing after this needs the container: stopped and removed in the background when the
    // caller defers removals (see `pare_runtime::deferred`).
    pare_runtime::deferred::remove(container, plan.stop_grace);
    result
}

fn wait_and_replay(
    c: &dyn Container,
    spec: &RunSpec,
    records: &[ProbeRecord],
    plan: &ReplayPlan<'_>,
    t_start: Instant,
) -> Result<Replayed, ReplayError> {
    let ready = if plan.wait {
        if let Some(what) = plan.waiting {
            pare_progress::Progress::waiting(&plan.probe.progress, what);
        }
        Some(
            replay_ready(c, plan.record, &spec.ports, plan.timeout, plan.probe)
                .map_err(ReplayError::Ready)?,
        )
    } else {
        None
    };
    let startup = t_start.elapsed();
    let got_ready = ready
        .as_ref()
        .is_none_or(|r| r.outcome == pare_probe::Readiness::Ready);
    let replays = if got_ready || plan.replay_unready {
        pare_probe::replay(c, records, plan.probe)
    } else {
        Vec::new()
    };
    Ok(Replayed {
        ready,
        startup,
        replays,
    })
}
