//! The untraced second run that tells answers that change between containers.

use std::time::Duration;

use pare_probe::{ProbeOptions, Readiness};
use pare_runtime::{RunSpec, Runtime};
use pare_trace::{ProbeRecord, RunRecord, SensorReport};

use crate::replay::{ReplayError, ReplayPlan, start_and_replay};

/// Starts the image again without the sensor, replays the probes and marks what differs
/// (bodies, kept headers) as volatile. Problems only add a notice: the profile stands.
/// Returns how long that container took from start until its ports answered (when it
/// waited for ports).
pub(crate) fn stability_run(
    runtime: &dyn Runtime,
    spec: &RunSpec,
    record: &RunRecord,
    records: &mut [ProbeRecord],
    report: &mut SensorReport,
    opts: &ProbeOptions,
    timeout: Duration,
) -> Option<Duration> {
    let plain = RunSpec {
        sensor: None,
        ..spec.clone()
    };
    let plan = ReplayPlan {
        record: Some(record),
        wait: true,
        timeout,
        probe: opts,
        waiting: None,
        replay_unready: false,
        // No graceful stop: nothing is recorded from this container; cleanup kills it.
        stop_grace: None,
    };
    let skipped = |why: String| format!("stability run skipped: {why}");
    let not_ready = |how: String| {
        skipped(format!(
            "the second, untraced container did not get ready ({how})"
        ))
    };
    let replayed = match start_and_replay(runtime, &plain, records, &plan, |_, r| r) {
        Ok(r) => r,
        Err(ReplayError::Start(e)) => {
            report.notices.push(skipped(pare_progress::chain(&e)));
            return None;
        }
        Err(ReplayError::Ready(e)) => {
            report.notices.push(not_ready(pare_progress::chain(&e)));
            return None;
        }
    };
    let mut startup = None;
    if let Some(r) = replayed.ready {
        if r.outcome != Readiness::Ready {
            report.notices.push(not_ready(r.how));
            return None;
        }
        if !r.ports.is_empty() {
            startup = Some(replayed.startup);
        }
    }
    let again: Vec<_> = replayed.replays.into_iter().map(|r| r.actual).collect();
    let before: Vec<usize> = records.iter().map(|r| r.outcome.volatile.len()).collect();
    pare_probe::mark_volatile_across(records, &again);
    let changed: Vec<String> = records
        .iter()
        .zip(before)
        .filter(|(r, n)| r.outcome.volatile.len() > *n)
        .map(|(r, _)| pare_probe::describe(&r.spec))
        .collect();
    if !changed.is_empty() {
        report.notices.push(format!(
            "answers that differ between containers (not compared on replay): {}",
            changed.join(", ")
        ));
    }
    startup
}
