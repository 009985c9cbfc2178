//! Tracing and verifying as one pipeline: every target is traced on its own thread, and each
//! verify group (see `verify`) is verified on its own thread, in its own fresh instance, as
//! soon as what it needs exists. A target's dependencies start once the slim images of the
//! targets among them are loaded (while its own build is still selecting and writing); the
//! target itself once its slim image is loaded (while its build still analyzes both images
//! and measures the gzip form).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pare_build::{BuildReport, OnLoaded};
use pare_reference::ImageRef;

use super::gate::{Gate, Opener};
use super::summary::ServiceOutcome;
use super::trace::Traced;
use super::verify::{self, Verified};
use super::{Context, RunError};

/// The traced (and verified) targets: their outcomes, and each slimmed target's build report
/// with where it is.
pub(super) struct Results {
    pub(super) outcomes: Vec<ServiceOutcome>,
    pub(super) reports: BTreeMap<String, (BuildReport, PathBuf)>,
    /// Seconds from the start until the last trace (and build) ended.
    pub(super) trace_seconds: f64,
    /// Seconds from the first verification's start to the last one's end (0 without any).
    pub(super) verify_seconds: f64,
}

/// The slim images as they are loaded into the daemon, for the verifications waiting on them.
#[derive(Default)]
struct Board {
    /// Target → its slim image, or `None` once its trace or build failed.
    slots: Mutex<BTreeMap<String, Option<String>>>,
    changed: Condvar,
}

impl Board {
    /// Records target `t`'s slim image (or its failure); the first word stands.
    fn post(&self, t: &str, slim: Option<String>) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.entry(t.to_string()).or_insert(slim);
        }
        self.changed.notify_all();
    }

    /// Waits for target `t`'s slim image; `None` when its build failed or `stop()` (Ctrl-C).
    fn wait(&self, t: &str, stop: &dyn Fn() -> bool) -> Option<String> {
        let mut slots = self.slots.lock().ok()?;
        loop {
            if let Some(slim) = slots.get(t) {
                return slim.clone();
            }
            if stop() {
                return None;
            }
            slots = self
                .changed
                .wait_timeout(slots, Duration::from_millis(200))
                .ok()?
                .0;
        }
    }
}

/// Posts a failure for a target whose trace thread ends (or panics) without a slim image.
struct PostOnExit<'b> {
    board: &'b Board,
    target: &'b str,
}

impl Drop for PostOnExit<'_> {
    fn drop(&mut self) {
        self.board.post(self.target, None);
    }
}

/// Traces every target, and verifies each as soon as it can (when `verify`), the targets of
/// each of `groups` in one instance.
pub(super) fn trace_and_verify(
    ctx: &Context<'_>,
    targets: &[String],
    groups: &[Vec<String>],
    verify: bool,
) -> Result<Results, RunError> {
    let t0 = Instant::now();
    let board = Arc::new(Board::default());
    // The targets others depend on are traced first (see `gate`).
    let first: Vec<&String> = groups
        .iter()
        .flat_map(|g| &g[..g.len().saturating_sub(1)])
        .collect();
    let gate = Gate::new(first.len());
    let stop = || ctx.run.interrupted();
    let (traced, verified) = std::thread::scope(|scope| {
        let traces: Vec<_> = targets
            .iter()
            .map(|t| {
                let board = board.clone();
                let opener = first.contains(&t).then(|| Opener::new(&gate));
                let (gate, stop) = (&gate, &stop);
                scope.spawn(move || {
                    if opener.is_none() {
                        gate.wait(stop);
                    }
                    let _failed = PostOnExit {
                        board: &board,
                        target: t,
                    };
                    let (b, name) = (board.clone(), t.clone());
                    let hook = OnLoaded(Arc::new(move |slim: &ImageRef| {
                        b.post(&name, Some(daemon_name(slim)));
                    }));
                    let r = ctx.trace(t, Some(hook), opener);
                    if let Ok(Traced {
                        outcome:
                            ServiceOutcome {
                                slim: Some(slim), ..
                            },
                        ..
                    }) = &r
                    {
                        board.post(t, Some(slim.clone()));
                    }
                    r
                })
            })
            .collect();
        let verifies: Vec<_> = groups
            .iter()
            .filter(|_| verify)
            .map(|group| {
                let (board, gate, stop) = (&board, &gate, &stop);
                scope.spawn(move || {
                    gate.wait(stop);
                    let slim_of = |s: &str| board.wait(s, stop);
                    verify::verify_group(ctx, group, targets, &slim_of)
                })
            })
            .collect();
        scope.spawn(|| ctx.deferred.remove_all());
        let traced: Vec<_> = traces.into_iter().map(join).collect();
        let verified: Vec<_> = verifies.into_iter().map(join).collect();
        ctx.deferred.finish();
        (traced, verified)
    });
    let mut out = Results {
        outcomes: Vec::new(),
        reports: BTreeMap::new(),
        trace_seconds: 0.0,
        verify_seconds: 0.0,
    };
    for (r, t) in traced.into_iter().zip(targets) {
        let traced = r.ok_or_else(|| RunError::TracePanicked { service: t.clone() })??;
        let ended = traced.ended.duration_since(t0);
        out.trace_seconds = out.trace_seconds.max(ended.as_secs_f64());
        if let Some(rep) = traced.report {
            out.reports.insert(traced.outcome.service.clone(), rep);
        }
        out.outcomes.push(traced.outcome);
    }
    let done: Vec<_> = verified.into_iter().flatten().flatten().collect();
    if let (Some(first), Some(last)) = (
        done.iter().map(|(v, _)| v.began).min(),
        done.iter().map(|(_, ended)| *ended).max(),
    ) {
        out.verify_seconds = last.duration_since(first).as_secs_f64();
    }
    let verified: Vec<Verified> = done.into_iter().map(|(v, _)| v).collect();
    verify::record(&verified, &mut out.outcomes, &mut out.reports)?;
    Ok(out)
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> Option<T> {
    h.join().ok()
}

/// The daemon's name for a slim image (`docker-daemon:NAME` → `NAME`).
fn daemon_name(slim: &ImageRef) -> String {
    match slim {
        ImageRef::DockerDaemon { name } => name.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Board, PostOnExit};

    #[test]
    fn a_waiter_gets_the_image_posted_later_and_the_first_word_stands() {
        let board = Board::default();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| board.wait("db", &|| false));
            std::thread::sleep(Duration::from_millis(50));
            board.post("db", Some("db.slim:latest".into()));
            board.post("db", None);
            assert_eq!(waiter.join().unwrap().as_deref(), Some("db.slim:latest"));
        });
        assert_eq!(
            board.wait("db", &|| false).as_deref(),
            Some("db.slim:latest")
        );
    }

    #[test]
    fn a_trace_thread_that_fails_or_panics_releases_its_waiters() {
        let board = Board::default();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| board.wait("api", &|| false));
            let tracer = s.spawn(|| {
                let _failed = PostOnExit {
                    board: &board,
                    target: "api",
                };
                panic!("trace thread panics");
            });
            assert!(tracer.join().is_err());
            assert_eq!(waiter.join().unwrap(), None);
        });
        // A slim image posted before the thread ended is kept.
        {
            let _failed = PostOnExit {
                board: &board,
                target: "db",
            };
            board.post("db", Some("db.slim:latest".into()));
        }
        assert_eq!(
            board.wait("db", &|| false).as_deref(),
            Some("db.slim:latest")
        );
    }
}
