//! The untraced second run that tells answers that change between containers.

use std::time::{Duration, Instant};

use pare_probe::{ProbeOptions, Readiness};
use pare_runtime::{Container, RunSpec, Runtime};
use pare_trace::{ProbeRecord, RunRecord, SensorReport};

use crate::replay_ready;
use crate::run::Guard;

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
    let t_start = Instant::now();
    let container = match runtime.start(&plain) {
        Ok(c) => Guard(c),
        Err(e) => {
            report.notices.push(format!("stability run skipped: {e}"));
            return None;
        }
    };
    let c: &dyn Container = container.0.as_ref();
    let mut startup = None;
    match replay_ready(c, Some(record), &[], timeout, opts) {
        Ok(r) if r.outcome == Readiness::Ready => {
            if !r.ports.is_empty() {
                startup = Some(t_start.elapsed());
            }
        }
        other => {
            report.notices.push(format!(
                "stability run skipped: the second, untraced container did not get ready ({})",
                match other {
                    Ok(r) => r.how,
                    Err(e) => e.to_string(),
                }
            ));
            return None;
        }
    }
    let again: Vec<_> = records
        .iter()
        .map(|r| pare_probe::run_probe(c, &r.spec, opts).outcome)
        .collect();
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
    // No graceful stop: nothing is recorded from this container; cleanup kills it.
    drop(container);
    startup
}
