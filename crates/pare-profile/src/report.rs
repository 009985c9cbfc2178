//! The sensor's reports: an `--exec` probe traced by a second sensor, reading `sensor.json`,
//! and merging the reports into one.

use std::path::{Path, PathBuf};

use pare_probe::ProbeOptions;
use pare_runtime::Container;
use pare_trace::{ProbeRecord, ProbeSpec, SensorReport};

use crate::{ImageRun, ProfileError};

/// Runs an `--exec` probe under a second sensor (not PID 1: it becomes a subreaper), so that
/// the files the command uses are recorded even without fanotify. Docker's `exec` runs as the
/// image's USER in WORKDIR, so the traced command does too. Returns the record (with the
/// original argv as its spec) and where that sensor's report is, or `None` when the sensor
/// could not run the command (then it ran untraced).
pub(crate) fn traced_exec(
    c: &dyn Container,
    argv: &[String],
    run: &ImageRun,
    host_out: &Path,
    n: usize,
    opts: &ProbeOptions,
) -> (ProbeRecord, Option<PathBuf>) {
    let sub = format!("exec-{n}");
    let wrapped = pare_runtime::sensor_command(
        &format!("{}/{sub}", pare_runtime::OUTPUT_DIR),
        &run.user,
        &run.workdir,
        false,
        &run.env,
        argv,
    );
    let original = ProbeSpec::Exec {
        argv: argv.to_vec(),
    };
    let mut rec = pare_probe::run_probe(c, &ProbeSpec::Exec { argv: wrapped }, opts);
    rec.spec = original.clone();
    let report = host_out.join(&sub).join("sensor.json");
    if report.is_file() {
        (rec, Some(report))
    } else {
        (pare_probe::run_probe(c, &original, opts), None)
    }
}

/// Adds another sensor report (of an exec probe) to the main one.
pub(crate) fn merge_report(into: &mut SensorReport, from: SensorReport, what: &str) {
    for (path, f) in from.files {
        let e = into.files.entry(path).or_default();
        e.kinds.extend(f.kinds);
        e.processes.extend(f.processes);
        e.syscalls.extend(f.syscalls);
        e.found |= f.found;
        e.missing |= f.missing;
        if e.symlink.is_none() {
            e.symlink = f.symlink;
        }
    }
    into.execs.extend(from.execs);
    into.syscalls.extend(from.syscalls);
    into.notices
        .extend(from.notices.into_iter().map(|n| format!("{what}: {n}")));
}

pub(crate) fn read_report(path: &Path, stderr: &[u8]) -> Result<SensorReport, ProfileError> {
    let err = |source: Box<dyn std::error::Error + Send + Sync>| {
        let text = String::from_utf8_lossy(stderr);
        let lines: Vec<&str> = text.lines().rev().take(8).collect();
        let stderr_tail = if lines.is_empty() {
            String::new()
        } else {
            format!(
                " (container stderr ends with:\n  {})",
                lines.into_iter().rev().collect::<Vec<_>>().join("\n  ")
            )
        };
        ProfileError::SensorReport {
            path: path.into(),
            stderr_tail,
            source,
        }
    };
    let text = std::fs::read(path).map_err(|e| err(e.into()))?;
    serde_json::from_slice(&text).map_err(|e| err(e.into()))
}
