//! Running a project on the Docker daemon (through pare-runtime's one bollard client):
//! per-run networks where service names resolve, fresh volumes, dependencies started in order
//! with their conditions, the targets traced and slimmed by pare-build, then verified with the
//! whole project up again.
//!
//! `run` is the data flow, one phase per module: `plan` (start order, targets, checks) →
//! `trace` (each target in its own `instance`, at the same time) → `verify` (the targets in
//! fresh instances on the slim images, a targeted dependency in its user's, where it stays
//! up: `kept`) → `summary` (`compose.slim.yaml`, `summary.json`).
//! `pipeline` runs trace and verify together: a target's verification starts as soon as the
//! slim images it needs are loaded, and the traces of the targets others depend on start
//! their containers before the rest (`gate`).
//! `cleanup` is what Ctrl-C removes; `service` what pare reads from a service.

mod cleanup;
mod deferred;
mod gate;
mod instance;
mod kept;
mod pipeline;
mod plan;
mod service;
mod summary;
mod trace;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use pare_build::{BuildOptions, Progress};
use pare_profile::ProfileOptions;
use pare_runtime::{DockerRuntime, RuntimeError};

use crate::model::Project;
use crate::{ComposeError, order};

pub use service::{probe_file_text, run_override};
pub use summary::{ServiceOutcome, Summary, override_yaml};

/// What `pare build --compose` / `pare profile --compose` was asked to do.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    /// Services to slim (or profile); all when empty.
    pub services: Vec<String>,
    /// Probe, sensor and timeout settings shared by every target (`image` is ignored).
    pub profile: ProfileOptions,
    /// Include/exclude flags from the command line, added to each service's `x-pare` ones.
    pub build: BuildOptions,
    /// `ARTIFACTS/SERVICE/…`, `ARTIFACTS/compose.slim.yaml`, `ARTIFACTS/summary.json`.
    pub artifacts: PathBuf,
    /// Keep containers, networks and volumes at the end (debugging).
    pub keep: bool,
    /// Only profile (`pare profile --compose`): no slim image, no verification.
    pub profile_only: bool,
    /// Verify the slim images with the project up again.
    pub verify: bool,
}

/// Errors that need the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The project itself (loading, order, targets).
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// The daemon: networks, volumes, containers.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Slimming a target.
    #[error(transparent)]
    Build(#[from] pare_build::BuildError),
    /// Tracing a target.
    #[error(transparent)]
    Profile(#[from] pare_profile::ProfileError),
    /// Reading a service's image.
    #[error(transparent)]
    Source(#[from] pare_source::SourceError),
    /// A service's image reference.
    #[error(transparent)]
    Reference(#[from] pare_reference::ReferenceError),
    /// An involved service's image is not in the daemon.
    #[error("service {service}: image {image} not found in the daemon (build or load it first)")]
    ImageNotFound {
        /// The service.
        service: String,
        /// Its image.
        image: String,
    },
    /// A published host port is in use.
    #[error("service {service}: host port {address} is already taken")]
    PortTaken {
        /// The service publishing it.
        service: String,
        /// `IP:PORT`.
        address: String,
        /// Why it could not be bound.
        #[source]
        source: std::io::Error,
    },
    /// A dependency did not meet its condition.
    #[error("dependency {service} {what}; its last log lines:\n{logs}")]
    Dependency {
        /// The dependency.
        service: String,
        /// What went wrong (`exited with 1 before it was healthy`).
        what: String,
        /// Its last log lines.
        logs: String,
    },
    /// Reading or writing an artifact (probes, profile, reports, summary).
    #[error("{path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A report or the summary could not be serialized as JSON.
    #[error("{path}")]
    Json {
        /// The file it was for.
        path: PathBuf,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The thread tracing a target panicked.
    #[error("{service}: its trace thread panicked")]
    TracePanicked {
        /// The target.
        service: String,
    },
    /// Verifying a target's slim image.
    #[error("{image}")]
    Verify {
        /// The target.
        image: String,
        /// Why verification could not run.
        #[source]
        source: Box<pare_verify::VerifyError>,
    },
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// `pare build --compose` (and `pare profile --compose` with `profile_only`).
pub fn run(
    project: &Project,
    opts: &ComposeOptions,
    progress: &(dyn Progress + Sync),
) -> Result<Summary, RunError> {
    let t0 = Instant::now();
    let plan = plan::Plan::new(project, &opts.services)?;
    let prepared = plan::prepare(project, &plan, opts)?;
    let verify = opts.verify && !opts.profile_only;
    let groups = plan.verify_groups(project);
    let deferred = Arc::new(if verify {
        deferred::Deferred::new(plan.targets.len(), groups.len())
    } else {
        deferred::Deferred::new(0, 0)
    });
    let ctx = Context {
        docker: &prepared.docker,
        project,
        opts,
        order: &plan.order,
        targets: &plan.targets,
        originals: &prepared.originals,
        sensor: &prepared.sensor,
        run: &prepared.run,
        progress,
        deferred: &deferred,
    };

    let done = pipeline::trace_and_verify(&ctx, &plan.targets, &groups, verify)?;

    summary::write(
        project,
        opts,
        done.outcomes,
        plan.dependencies(),
        summary::Seconds {
            trace: done.trace_seconds,
            verify: done.verify_seconds,
            start: t0,
        },
    )
}

/// What the trace threads and the verification share.
struct Context<'a> {
    docker: &'a Arc<DockerRuntime>,
    project: &'a Project,
    opts: &'a ComposeOptions,
    order: &'a [String],
    /// The targets, in start order.
    targets: &'a [String],
    originals: &'a BTreeMap<String, String>,
    sensor: &'a Path,
    /// The run's ID and its Ctrl-C clean-up.
    run: &'a cleanup::RunCleanup,
    progress: &'a (dyn Progress + Sync),
    /// Where the instances' volumes go to be removed.
    deferred: &'a Arc<deferred::Deferred>,
}

impl Context<'_> {
    /// The dependencies of `t` in start order, for progress lines.
    fn deps_text(&self, t: &str) -> String {
        let d = order::dependencies_in_order(self.project, t, self.order);
        if d.is_empty() {
            "no dependencies".into()
        } else {
            d.join(", ")
        }
    }
}

/// The progress of one target's thread: its phases carry the target's name (`api verify`), so
/// that the same phase of two targets running at once is told apart.
struct Tagged<'a> {
    inner: &'a (dyn Progress + Sync),
    target: &'a str,
}

impl Progress for Tagged<'_> {
    fn begin(&self, phase: &str, detail: &str) {
        self.inner
            .begin(&format!("{} {phase}", self.target), detail);
    }
    fn end(&self, phase: &str, elapsed: std::time::Duration, outcome: &str) {
        self.inner
            .end(&format!("{} {phase}", self.target), elapsed, outcome);
    }
    fn waiting(&self, what: &str) {
        self.inner.waiting(what);
    }
    fn detail(&self, message: &str) {
        self.inner.detail(message);
    }
    fn notice(&self, message: &str) {
        self.inner.notice(message);
    }
}

impl Context<'_> {
    /// `t`'s progress.
    fn progress_of<'b>(&'b self, t: &'b str) -> Tagged<'b> {
        Tagged {
            inner: self.progress,
            target: t,
        }
    }
}
