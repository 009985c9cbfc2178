//! Verification: run the slim image with no tracer, replay the probes recorded against the
//! original, and compare the answers. When anything differs, a traced re-run of the slim image
//! names the paths the app looked for and did not find — the likely missing files.

use std::collections::BTreeSet;
use std::time::Duration;

use pare_probe::{ProbeOptions, Replay};
use pare_runtime::{Container, RunSpec, Runtime, RuntimeError};
use pare_trace::{ProbeRecord, ProbeSpec, SensorReport};
use serde::{Deserialize, Serialize};

/// Errors that stop verification from running at all (a probe that answers differently is not
/// an error: it is a failed [`ProbeVerdict`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("starting the slim image: {0}")]
    Start(#[source] RuntimeError),
    #[error("slim image: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("{path}: {message}")]
    SensorReport { path: std::path::PathBuf, message: String },
}

/// One replayed probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeVerdict {
    /// `GET http:8080/second`, `job (run to completion)`, …
    pub probe: String,
    pub expected: String,
    pub actual: String,
    pub ok: bool,
    /// What differs, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<String>,
}

/// The outcome of verifying one slim image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub probes: Vec<ProbeVerdict>,
    /// Paths the original found and the slim image's app looked for but did not find
    /// (filled by [`hint_missing`] when verification failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub likely_missing: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.probes.iter().all(|p| p.ok)
    }
}

/// Options for one verification run.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub probe: ProbeOptions,
    /// How long to wait for the ports of a service to answer.
    pub ready_timeout: Duration,
    /// Grace period when stopping.
    pub stop_grace: Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { probe: ProbeOptions::default(), ready_timeout: Duration::from_secs(30), stop_grace: Duration::from_secs(5) }
    }
}

/// Runs `spec` (the slim image, `sensor: None`) on `runtime` and replays `records`.
pub fn verify(
    runtime: &dyn Runtime,
    spec: &RunSpec,
    records: &[ProbeRecord],
    options: &VerifyOptions,
) -> Result<Verification, VerifyError> {
    let container = runtime.start(spec).map_err(VerifyError::Start)?;
    let result = replay_on(container.as_ref(), spec, records, options);
    // Stop and clean up whatever happened; a job has already exited.
    let _ = container.stop(options.stop_grace);
    let _ = container.cleanup();
    result
}

fn replay_on(
    container: &dyn Container,
    spec: &RunSpec,
    records: &[ProbeRecord],
    options: &VerifyOptions,
) -> Result<Verification, VerifyError> {
    let is_job = records.iter().any(|r| matches!(r.spec, ProbeSpec::Job));
    if !is_job && !spec.ports.is_empty() {
        // Readiness failures show up as probe differences below; no need to stop here.
        let _ = pare_probe::wait_ready(container, &spec.ports, options.ready_timeout);
    }
    let replays = pare_probe::replay(container, records, &options.probe);
    Ok(Verification { probes: replays.iter().map(verdict).collect(), likely_missing: Vec::new() })
}

fn verdict(r: &Replay) -> ProbeVerdict {
    ProbeVerdict {
        probe: pare_probe::describe(&r.record.spec),
        expected: pare_probe::describe_outcome(&r.record.outcome),
        actual: pare_probe::describe_outcome(&r.actual),
        ok: r.ok(),
        difference: r.result.as_ref().err().map(|d| d.to_string()),
    }
}

/// Paths that the original run found but the slim run looked for and missed: the likely
/// culprits when verification fails. Sorted, most specific first (deepest paths).
pub fn missing_paths(original: &SensorReport, slim: &SensorReport) -> Vec<String> {
    let found_before: BTreeSet<&str> =
        original.files.iter().filter(|(_, r)| r.found).map(|(p, _)| p.as_str()).collect();
    let mut out: Vec<String> = slim
        .files
        .iter()
        .filter(|(p, r)| r.missing && !r.found && found_before.contains(p.as_str()))
        .map(|(p, _)| p.clone())
        .collect();
    // Paths the original never looked up but that the slim run failed to find are also
    // suspicious (a code path that changed because something else is missing), but far
    // noisier; they come after, and only outside /proc, /sys and /dev.
    let mut extra: Vec<String> = slim
        .files
        .iter()
        .filter(|(p, r)| {
            r.missing
                && !r.found
                && !original.files.contains_key(p.as_str())
                && !["/proc/", "/sys/", "/dev/"].iter().any(|pre| p.starts_with(pre))
        })
        .map(|(p, _)| p.clone())
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    extra.sort();
    out.extend(extra);
    out
}

/// Runs the slim image again under the sensor (`traced_spec` has `sensor: Some`), replays the
/// probes to drive the same code paths, and compares the failed lookups with the original's
/// trace. Returns the likely missing paths.
pub fn hint_missing(
    runtime: &dyn Runtime,
    traced_spec: &RunSpec,
    records: &[ProbeRecord],
    original: &SensorReport,
    options: &VerifyOptions,
) -> Result<Vec<String>, VerifyError> {
    let Some(sensor) = &traced_spec.sensor else {
        return Ok(Vec::new());
    };
    let container = runtime.start(traced_spec).map_err(VerifyError::Start)?;
    let _ = replay_on(container.as_ref(), traced_spec, records, options);
    let _ = container.stop(options.stop_grace);
    let _ = container.cleanup();
    let path = sensor.output_dir.join("sensor.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| VerifyError::SensorReport { path: path.clone(), message: e.to_string() })?;
    let slim: SensorReport =
        serde_json::from_str(&text).map_err(|e| VerifyError::SensorReport { path, message: e.to_string() })?;
    Ok(missing_paths(original, &slim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pare_trace::{AccessKind, FileRecord};

    fn rec(found: bool, missing: bool) -> FileRecord {
        FileRecord { kinds: [AccessKind::Open].into(), found, missing, ..Default::default() }
    }

    #[test]
    fn missing_paths_prefers_files_the_original_found() {
        let mut original = SensorReport::default();
        original.files.insert("/usr/lib/python3.11/decimal.py".into(), rec(true, false));
        original.files.insert("/etc/ssl/certs/ca-certificates.crt".into(), rec(true, false));
        original.files.insert("/etc/ld.so.preload".into(), rec(false, true));
        let mut slim = SensorReport::default();
        slim.files.insert("/usr/lib/python3.11/decimal.py".into(), rec(false, true));
        slim.files.insert("/etc/ssl/certs/ca-certificates.crt".into(), rec(true, false));
        slim.files.insert("/etc/ld.so.preload".into(), rec(false, true));
        slim.files.insert("/proc/self/status".into(), rec(false, true));
        slim.files.insert("/usr/lib/python3.11/_pydecimal.py".into(), rec(false, true));
        let m = missing_paths(&original, &slim);
        assert_eq!(m, vec!["/usr/lib/python3.11/decimal.py".to_string(), "/usr/lib/python3.11/_pydecimal.py".into()]);
    }

    #[test]
    fn verification_ok_needs_every_probe() {
        let v = |ok| ProbeVerdict { probe: "p".into(), expected: "e".into(), actual: "a".into(), ok, difference: None };
        assert!(Verification { probes: vec![v(true), v(true)], likely_missing: vec![] }.ok());
        assert!(!Verification { probes: vec![v(true), v(false)], likely_missing: vec![] }.ok());
    }
}
