//! Phase timings: each phase is announced to the progress reporter and timed for the report.

use std::time::{Duration, Instant};

use pare_progress::Progress;

use crate::PhaseTiming;

/// The progress reporter and the timings of the phases run so far.
pub(crate) struct Phases<'a> {
    pub(crate) progress: &'a dyn Progress,
    pub(crate) timings: Vec<PhaseTiming>,
}

impl<'a> Phases<'a> {
    pub(crate) fn new(progress: &'a dyn Progress) -> Self {
        Phases {
            progress,
            timings: Vec::new(),
        }
    }

    pub(crate) fn run<T, E>(
        &mut self,
        phase: &str,
        detail: &str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        self.progress.begin(phase, detail);
        let t = Instant::now();
        let r = f();
        self.finish(phase, t.elapsed(), r.is_ok());
        r
    }

    /// Ends a phase timed elsewhere (e.g. on another thread).
    pub(crate) fn finish(&mut self, phase: &str, elapsed: Duration, ok: bool) {
        self.progress
            .end(phase, elapsed, if ok { "done" } else { "failed" });
        self.timings.push(PhaseTiming {
            phase: phase.to_string(),
            seconds: elapsed.as_secs_f64(),
        });
    }
}
