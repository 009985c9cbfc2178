//! Verification: run the slim image with no tracer, replay the probes recorded against the
//! original, and compare the answers. When anything differs, a traced re-run of the slim image
//! names the paths the app looked for and did not find — the likely missing files.

#![deny(missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration;

use pare_probe::{ProbeOptions, Readiness, Replay};
use pare_profile::{ReplayError, ReplayPlan, start_and_replay};
use pare_runtime::{Container, RunSpec, Runtime, RuntimeError};
use pare_trace::{AppState, ExitInfo, ProbeRecord, ProbeSpec, RunRecord, SensorReport};
use serde::{Deserialize, Serialize};

/// Errors that stop verification from running at all (a probe that answers differently is not
/// an error: it is a failed [`ProbeVerdict`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("starting the slim image")]
    /// The runtime could not start the slim image's container.
    Start(#[source] RuntimeError),
    #[error("slim image")]
    /// The runtime failed while the slim container ran (wait, logs, stop, remove).
    Runtime(#[from] RuntimeError),
    #[error("slim image")]
    /// Waiting for the slim app to get ready failed (a bad recorded ready sign, or the app
    /// exited or never answered before it was ready).
    Ready(#[from] pare_profile::ProfileError),
    #[error("{path}")]
    /// The traced re-run's `sensor.json` (see [`hint_missing`]) could not be read or parsed.
    SensorReport {
        /// The `sensor.json` in the traced run's sensor output directory.
        path: std::path::PathBuf,
        /// The read or JSON error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One replayed probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeVerdict {
    /// `GET http:8080/second`, `job (run to completion)`, …
    pub probe: String,
    /// The original image's answer, as text (`200 text/html 1234 B`, `connected`,
    /// `exit 0`); for the readiness and state verdicts, how the original got ready or ended
    /// the probes.
    pub expected: String,
    /// The slim image's answer, in the same words as `expected`.
    pub actual: String,
    /// The slim image's answer matches the original's (volatile fields excepted) and the
    /// recorded answer is evidence; `false` fails the verification.
    pub ok: bool,
    /// What differs, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<String>,
    /// The fields that differ (`status`, `body`, `header:content-type`, `exit_code`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Fields that also differ between two runs of the ORIGINAL image (a page or a job that
    /// prints its start time): not held against the slim image. Only `body` and headers can
    /// be volatile; status, exit code, connectivity and errors never are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volatile: Vec<String>,
    /// What was compared (`status, headers content-type/location/content-encoding, body`).
    #[serde(default)]
    pub compared: String,
}

/// The outcome of verifying one slim image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    /// One verdict per replayed probe, then the readiness and the state-after-probes verdicts.
    pub probes: Vec<ProbeVerdict>,
    /// Paths the original found and the slim image's app looked for but did not find
    /// (filled by [`hint_missing`] when verification failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub likely_missing: Vec<String>,
    /// How the slim image's app ended when it exited before its ports answered
    /// (`exited with code 1`), with the last lines of its stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_exit: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// The slim container's last stderr lines (up to 8), kept only when a verdict failed.
    pub stderr_tail: Vec<String>,
}

impl Verification {
    /// Whether every verdict passed (the slim image answers as the original did).
    pub fn ok(&self) -> bool {
        self.probes.iter().all(|p| p.ok)
    }
}

/// Options for one verification run.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Timeouts and crawl limits for the replayed probes.
    pub probe: ProbeOptions,
    /// How long to wait for the ports of a service to answer.
    pub ready_timeout: Duration,
    /// Grace period when stopping (0 by default: verification is over by then, and an app
    /// that ignores SIGTERM as PID 1 would cost the whole grace period on every run).
    pub stop_grace: Duration,
    /// How the profiled run got ready and how the app was after the probes: the slim image
    /// must get ready the same way and end the probes in the same state. `None` for profiles
    /// from before this was recorded: then the run's ports are waited for (those nothing
    /// listens on given up once idle) and the state is not compared.
    pub run: Option<RunRecord>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            probe: ProbeOptions::default(),
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::ZERO,
            run: None,
        }
    }
}

/// Runs `spec` (the slim image, `sensor: None`) on `runtime` and replays `records`.
///
/// The verdicts: one per probe (the recorded answer against the slim one; a recorded answer
/// that is no evidence — refused or unanswered on a port not declared closed — fails
/// whatever the slim image does), then `readiness` (the slim app got ready the way the
/// original did, and did not exit first) and `state after the probes` (still running, or
/// exited with the same code, as the original). Each says what it compared.
pub fn verify(
    runtime: &dyn Runtime,
    spec: &RunSpec,
    records: &[ProbeRecord],
    options: &VerifyOptions,
) -> Result<Verification, VerifyError> {
    let run = options.run.as_ref();
    let closed: &[u16] = run
        .map(|r| r.expected_closed.as_slice())
        .unwrap_or_default();
    run_and_replay(
        runtime,
        spec,
        records,
        options,
        |container, facts, replays| {
            let mut probes: Vec<ProbeVerdict> = replays
                .iter()
                .map(|r| {
                    let mut v = verdict(r);
                    if let Some(why) = pare_profile::unanswered(&r.record, closed) {
                        v.ok = false;
                        v.difference = Some(why);
                        v.fields.push("evidence".into());
                    }
                    v
                })
                .collect();
            probes.extend(readiness_verdict(run, &facts));
            probes.extend(state_verdict(run, &facts));
            let mut stderr_tail = Vec::new();
            if probes.iter().any(|p| !p.ok) {
                if let Ok((_, err)) = container.logs() {
                    stderr_tail = tail_lines(&err, 8);
                }
            }
            Verification {
                probes,
                likely_missing: Vec::new(),
                early_exit: facts.exited_early.as_ref().map(describe_exit),
                stderr_tail,
            }
        },
    )
}

/// What a run showed besides the probe answers.
struct RunFacts {
    /// How the readiness wait ended, in words; `None` when it was not waited for (a job).
    ready: Option<(bool, String)>,
    /// The app exited before it was ready.
    exited_early: Option<ExitInfo>,
    /// The app's state once the probes were replayed.
    after: AppState,
}

fn readiness_verdict(run: Option<&RunRecord>, facts: &RunFacts) -> Option<ProbeVerdict> {
    let (ok, actual) = facts.ready.clone()?;
    Some(ProbeVerdict {
        probe: "readiness".into(),
        expected: run.map_or_else(|| "the ports answer".into(), |r| r.readiness.clone()),
        actual: actual.clone(),
        ok,
        difference: (!ok).then(|| format!("the slim image did not get ready: {actual}")),
        fields: if ok { vec![] } else { vec!["readiness".into()] },
        volatile: vec![],
        compared: "the same ports answer their protocol (or the same --ready-* sign shows) before the app exits"
            .into(),
    })
}

fn state_verdict(run: Option<&RunRecord>, facts: &RunFacts) -> Option<ProbeVerdict> {
    let expected = run?.after_probes.clone()?;
    let show = |s: &AppState| match s {
        AppState::Running => "running".to_string(),
        AppState::Exited(e) => pare_probe::describe_exit(e),
    };
    let ok = match (&expected, &facts.after) {
        (AppState::Running, AppState::Running) => true,
        (AppState::Exited(a), AppState::Exited(b)) => a.code == b.code,
        _ => false,
    };
    Some(ProbeVerdict {
        probe: "state after the probes".into(),
        expected: show(&expected),
        actual: show(&facts.after),
        ok,
        difference: (!ok).then(|| {
            format!(
                "the original was {} after the probes, the slim image's app {}",
                show(&expected),
                show(&facts.after)
            )
        }),
        fields: if ok { vec![] } else { vec!["state".into()] },
        volatile: vec![],
        compared: "whether the app still runs, else its exit code".into(),
    })
}

/// Starts `spec`, waits until it is ready the way the profiled run was (unless the probes are
/// a job), replays `records`, and hands the container, what the run showed and the replays to
/// `then`; stops and removes the container whatever happened (a job has already exited).
/// The start, wait and replay are pare-profile's, shared with its stability run.
fn run_and_replay<T>(
    runtime: &dyn Runtime,
    spec: &RunSpec,
    records: &[ProbeRecord],
    options: &VerifyOptions,
    then: impl FnOnce(&dyn Container, RunFacts, Vec<Replay>) -> T,
) -> Result<T, VerifyError> {
    let is_job = records.iter().any(|r| matches!(r.spec, ProbeSpec::Job))
        || options.run.as_ref().is_some_and(|r| r.job);
    let waits = match &options.run {
        Some(r) => {
            !r.ports.is_empty()
                || r.ready_log.is_some()
                || r.ready_url.is_some()
                || r.ready_cmd.is_some()
        }
        None => !spec.ports.is_empty(),
    };
    let plan = ReplayPlan {
        record: options.run.as_ref(),
        wait: !is_job && waits,
        timeout: options.ready_timeout,
        probe: &options.probe,
        waiting: Some("the slim image to get ready"),
        replay_unready: true,
        stop_grace: Some(options.stop_grace),
    };
    start_and_replay(runtime, spec, records, &plan, |c, replayed| {
        let mut facts = RunFacts {
            ready: None,
            exited_early: None,
            after: AppState::Running,
        };
        if let Some(r) = replayed.ready {
            if let Readiness::Exited(e) = &r.outcome {
                facts.exited_early = Some(e.clone());
            }
            facts.ready = Some((r.outcome == Readiness::Ready, r.how));
        }
        let replays = replayed.replays;
        // A runtime reports an exit a moment after it happened (docker: tens of milliseconds,
        // more under load): when an answer was wrong, the app may just have died; give that
        // time to show.
        let settle = if replays.iter().all(Replay::ok) {
            Duration::ZERO
        } else {
            Duration::from_secs(2)
        };
        facts.after = match c.wait(settle) {
            Ok(Some(e)) => AppState::Exited(e),
            _ => AppState::Running,
        };
        then(c, facts, replays)
    })
    .map_err(|e| match e {
        ReplayError::Start(e) => VerifyError::Start(e),
        ReplayError::Ready(e) => VerifyError::Ready(e),
    })
}

fn describe_exit(e: &pare_trace::ExitInfo) -> String {
    match &e.signal {
        Some(sig) => format!("killed by {sig} before its ports answered"),
        None => format!("exited with code {} before its ports answered", e.code),
    }
}

/// The last `n` non-empty lines of `bytes`, each cut to 200 characters.
fn tail_lines(bytes: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(200).collect())
        .collect()
}

fn verdict(r: &Replay) -> ProbeVerdict {
    ProbeVerdict {
        probe: pare_probe::describe(&r.record.spec),
        expected: pare_probe::describe_outcome(&r.record.outcome),
        actual: pare_probe::describe_outcome(&r.actual),
        ok: r.ok(),
        difference: r.result.as_ref().err().map(|d| d.to_string()),
        fields: r
            .result
            .as_ref()
            .err()
            .map(|d| d.mismatches.iter().map(|m| m.field.clone()).collect())
            .unwrap_or_default(),
        volatile: Vec::new(),
        compared: compared(&r.record),
    }
}

/// What a replay compares for a probe, minus the fields recorded as volatile.
fn compared(rec: &ProbeRecord) -> String {
    let fields: &[&str] = match rec.spec {
        ProbeSpec::Http { .. } => &[
            "status",
            "header:content-type",
            "header:location",
            "header:content-encoding",
            "body",
        ],
        ProbeSpec::Tcp { .. } => &["connected"],
        ProbeSpec::Exec { .. } | ProbeSpec::HostExec { .. } | ProbeSpec::Job => {
            &["exit_code", "body"]
        }
        ProbeSpec::Protocol { .. } => &["fields"],
    };
    let shown: Vec<String> = fields
        .iter()
        .filter(|f| !rec.outcome.volatile.iter().any(|v| v == *f))
        .map(|f| match (*f, &rec.spec) {
            ("body", ProbeSpec::Http { .. }) => "body (sha256, length)".to_string(),
            ("body", _) => "stdout (sha256, length)".to_string(),
            ("connected", _) => "connection accepted or refused".to_string(),
            ("fields", _) => "the handshake's fields (per-connection values masked)".to_string(),
            ("exit_code", _) => "exit code".to_string(),
            (f, _) => f
                .strip_prefix("header:")
                .map_or(f.to_string(), |h| h.to_string()),
        })
        .collect();
    let mut s = shown.join(", ");
    s.push_str(", or whether it could run at all");
    if !rec.outcome.volatile.is_empty() {
        s.push_str(&format!(
            " (not {}: they change between requests)",
            pare_trace::VolatileField::join(&rec.outcome.volatile)
        ));
    }
    s
}

/// Applies a replay of the probes against a fresh run of the original image: a failed
/// verdict whose differing fields all differ between the original's recording and its own
/// re-run too (and may be volatile: body, headers) is passed, with those fields named in
/// [`ProbeVerdict::volatile`]. Returns how many verdicts changed.
pub fn apply_original_rerun(v: &mut Verification, original: &[Replay]) -> usize {
    let mut changed = 0;
    for (verdict, again) in v.probes.iter_mut().zip(original) {
        if verdict.ok {
            continue;
        }
        let unstable: BTreeSet<String> = match &again.result {
            Ok(()) => BTreeSet::new(),
            Err(d) => d
                .mismatches
                .iter()
                .map(|m| m.field.clone())
                .filter(|f| pare_probe::may_be_volatile(f))
                .collect(),
        };
        if !verdict.fields.is_empty() && verdict.fields.iter().all(|f| unstable.contains(f)) {
            verdict.ok = true;
            verdict.volatile = verdict.fields.clone();
            changed += 1;
        }
    }
    if changed > 0 && v.ok() {
        v.stderr_tail.clear();
    }
    changed
}

/// Runs the ORIGINAL image (`spec`, no sensor) and replays the probes against it, to tell
/// answers that change from run to run (a start time in a page) from real differences.
pub fn rerun_original(
    runtime: &dyn Runtime,
    spec: &RunSpec,
    records: &[ProbeRecord],
    options: &VerifyOptions,
) -> Result<Vec<Replay>, VerifyError> {
    run_and_replay(runtime, spec, records, options, |_, _, replays| replays)
}

/// Paths that the original run found but the slim run looked for and missed: the likely
/// culprits when verification fails. Sorted, most specific first (deepest paths).
pub fn missing_paths(original: &SensorReport, slim: &SensorReport) -> Vec<String> {
    let found_before: BTreeSet<&str> = original
        .files
        .iter()
        .filter(|(_, r)| r.found)
        .map(|(p, _)| p.as_str())
        .collect();
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
                && !["/proc/", "/sys/", "/dev/"]
                    .iter()
                    .any(|pre| p.starts_with(pre))
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
    // Only the sensor's report matters; the stop makes the sensor write it.
    run_and_replay(runtime, traced_spec, records, options, |_, _, _| ())?;
    let path = sensor.output_dir.join("sensor.json");
    let text = std::fs::read_to_string(&path).map_err(|e| VerifyError::SensorReport {
        path: path.clone(),
        source: e.into(),
    })?;
    let slim: SensorReport =
        serde_json::from_str(&text).map_err(|e| VerifyError::SensorReport {
            path,
            source: e.into(),
        })?;
    Ok(missing_paths(original, &slim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pare_trace::{AccessKind, FileRecord};

    fn rec(found: bool, missing: bool) -> FileRecord {
        FileRecord {
            kinds: [AccessKind::Open].into(),
            found,
            missing,
            ..Default::default()
        }
    }

    #[test]
    fn missing_paths_prefers_files_the_original_found() {
        let mut original = SensorReport::default();
        original
            .files
            .insert("/usr/lib/python3.11/decimal.py".into(), rec(true, false));
        original.files.insert(
            "/etc/ssl/certs/ca-certificates.crt".into(),
            rec(true, false),
        );
        original
            .files
            .insert("/etc/ld.so.preload".into(), rec(false, true));
        let mut slim = SensorReport::default();
        slim.files
            .insert("/usr/lib/python3.11/decimal.py".into(), rec(false, true));
        slim.files.insert(
            "/etc/ssl/certs/ca-certificates.crt".into(),
            rec(true, false),
        );
        slim.files
            .insert("/etc/ld.so.preload".into(), rec(false, true));
        slim.files
            .insert("/proc/self/status".into(), rec(false, true));
        slim.files
            .insert("/usr/lib/python3.11/_pydecimal.py".into(), rec(false, true));
        let m = missing_paths(&original, &slim);
        assert_eq!(
            m,
            vec![
                "/usr/lib/python3.11/decimal.py".to_string(),
                "/usr/lib/python3.11/_pydecimal.py".into()
            ]
        );
    }

    fn verdict_of(ok: bool, fields: &[&str]) -> ProbeVerdict {
        ProbeVerdict {
            probe: "p".into(),
            expected: "e".into(),
            actual: "a".into(),
            ok,
            difference: None,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            volatile: vec![],
            compared: String::new(),
        }
    }

    fn verification(probes: Vec<ProbeVerdict>) -> Verification {
        Verification {
            probes,
            likely_missing: vec![],
            early_exit: None,
            stderr_tail: vec![],
        }
    }

    #[test]
    fn verification_ok_needs_every_probe() {
        assert!(verification(vec![verdict_of(true, &[]), verdict_of(true, &[])]).ok());
        assert!(!verification(vec![verdict_of(true, &[]), verdict_of(false, &["body"])]).ok());
    }

    fn replay_of(recorded: pare_trace::ProbeOutcome, actual: pare_trace::ProbeOutcome) -> Replay {
        let record = ProbeRecord {
            spec: ProbeSpec::Job,
            outcome: recorded,
            millis: 0,
        };
        let result = pare_probe::compare(&record.outcome, &actual);
        Replay {
            record,
            actual,
            result,
        }
    }

    #[test]
    fn a_body_the_original_changes_between_runs_is_volatile_but_status_never_is() {
        let out = |status: u16, body: &str| pare_trace::ProbeOutcome {
            http_status: Some(status),
            body_digest: Some(pare_probe::digest(body.as_bytes())),
            body_len: Some(body.len() as u64),
            ..Default::default()
        };
        // The original, run again: the page with a start time differs, the other does not.
        let again = vec![
            replay_of(out(200, "started=10:00"), out(200, "started=10:05")),
            replay_of(out(200, "static"), out(200, "static")),
            replay_of(out(200, "x"), out(500, "y")),
        ];
        let mut v = verification(vec![
            verdict_of(false, &["body"]),
            verdict_of(false, &["body"]),
            verdict_of(false, &["status", "body"]),
        ]);
        assert_eq!(apply_original_rerun(&mut v, &again), 1);
        assert!(v.probes[0].ok && v.probes[0].volatile == vec!["body".to_string()]);
        // A static page that differs is a real difference.
        assert!(!v.probes[1].ok);
        // Even when the original's own status changes, a status difference is never excused.
        assert!(!v.probes[2].ok);
        assert!(!v.ok());
    }
}
