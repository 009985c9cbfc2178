//! Readiness and soundness rules shared by the profiled run, its untraced stability run and
//! verification: the user's readiness sign, the replay of a recorded readiness, the error for
//! an app that never got ready, and which recorded answers are no evidence of a working app.

use std::time::Duration;

use pare_probe::{PortKind, ProbeOptions, ReadyPlan, ReadyReport, ReadySign};
use pare_runtime::Container;
use pare_trace::{ExitInfo, ProbeRecord, RunRecord};

use crate::{ProfileError, ProfileOptions};

/// The user's readiness sign, from `--ready-log`, `--ready-url`, `--ready-cmd` (in that order
/// of precedence; the CLI allows only one).
pub(crate) fn ready_sign(opts: &ProfileOptions) -> Result<Option<ReadySign>, ProfileError> {
    sign_of(
        opts.ready_log.as_deref(),
        opts.ready_url.as_deref(),
        opts.ready_cmd.as_deref(),
    )
}

fn sign_of(
    log: Option<&str>,
    url: Option<&str>,
    cmd: Option<&str>,
) -> Result<Option<ReadySign>, ProfileError> {
    if let Some(re) = log {
        return regex::Regex::new(re)
            .map(|r| Some(ReadySign::Log(r)))
            .map_err(|e| ProfileError::ReadyFlag {
                flag: "--ready-log",
                value: re.into(),
                message: "not a valid regular expression".into(),
                source: Some(e),
            });
    }
    if let Some(u) = url {
        return ReadySign::parse_url(u)
            .map(Some)
            .map_err(|message| ProfileError::ReadyFlag {
                flag: "--ready-url",
                value: u.into(),
                message,
                source: None,
            });
    }
    if let Some(c) = cmd {
        let argv = pare_probe::exec_argv(c);
        if argv.is_empty() {
            return Err(ProfileError::ReadyFlag {
                flag: "--ready-cmd",
                value: c.into(),
                message: "empty command".into(),
                source: None,
            });
        }
        return Ok(Some(ReadySign::Cmd(argv)));
    }
    Ok(None)
}

/// Waits for a run of the same image to get ready the way the profiled run did: the same sign,
/// or the ports that answered then (`fallback_ports` when there is no record: a profile from
/// before records existed; those may be given up as unused once the app is idle).
pub fn replay_ready(
    c: &dyn Container,
    record: Option<&RunRecord>,
    fallback_ports: &[u16],
    timeout: Duration,
    probe: &ProbeOptions,
) -> Result<ReadyReport, ProfileError> {
    let (ports, droppable, sign) = match record {
        Some(r) => (
            r.ports.keys().copied().collect(),
            Default::default(),
            sign_of(
                r.ready_log.as_deref(),
                r.ready_url.as_deref(),
                r.ready_cmd.as_deref(),
            )?,
        ),
        None => (
            fallback_ports.to_vec(),
            fallback_ports.iter().copied().collect(),
            None,
        ),
    };
    let job_only = record.is_some_and(|r| r.job) && sign.is_none();
    Ok(pare_probe::wait_until_ready(
        c,
        &ReadyPlan {
            ports: if job_only { Vec::new() } else { ports },
            droppable,
            expect: record
                .map(|r| {
                    r.ports
                        .iter()
                        .filter_map(|(p, k)| Some((*p, PortKind::from_name(k)?)))
                        .collect()
                })
                .unwrap_or_default(),
            sign,
            timeout,
            activity: None,
            probe: probe.clone(),
        },
    )?)
}

/// The error for an app that exited (or never answered) before it was ready: what happened,
/// its last log lines, and what to try.
pub(crate) fn not_ready(
    c: &dyn Container,
    image: &str,
    how: &str,
    exit: Option<&ExitInfo>,
) -> ProfileError {
    let (out, err) = c.logs().unwrap_or_default();
    let mut lines = tail(&out, 10);
    lines.extend(tail(&err, 10));
    let log = if lines.is_empty() {
        "; it printed nothing".to_string()
    } else {
        format!(
            "; its last log lines:\n  | {}",
            lines
                .iter()
                .map(|l| l.chars().take(200).collect::<String>())
                .collect::<Vec<_>>()
                .join("\n  | ")
        )
    };
    let hint = match exit {
        Some(_) => "if the image is a job that runs to completion, pass --job; if it needs \
                    arguments, environment or a volume to start, the image is not runnable as \
                    `docker run IMAGE` and cannot be profiled that way; --ready-log/--ready-url/\
                    --ready-cmd say when an app is ready"
            .to_string(),
        None => "a longer --timeout; --ready-log REGEX, --ready-url URL or --ready-cmd CMD \
                 when the app knows best; --expect-closed PORT for an EXPOSEd port that is not \
                 meant to answer"
            .to_string(),
    };
    ProfileError::NotReady {
        image: image.to_string(),
        how: how.to_string(),
        log,
        hint,
    }
}

fn tail(bytes: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// Why a recorded answer is no evidence that the app worked, if it is not: a network probe
/// that was refused or got no answer, on a port the user did not declare closed
/// (`--expect-closed`). A probe like that matches any broken image.
pub fn unanswered(rec: &ProbeRecord, expected_closed: &[u16]) -> Option<String> {
    let port = rec.spec.port()?;
    if expected_closed.contains(&port) {
        return None;
    }
    let what = if rec.outcome.connected == Some(false) {
        "was refused".to_string()
    } else if let Some(e) = &rec.outcome.error {
        format!("got no answer ({e})")
    } else {
        return None;
    };
    Some(format!(
        "{} {what}: the original never answered on port {port}, so matching that proves nothing; pass --expect-closed {port} if it is not meant to answer",
        pare_probe::describe(&rec.spec)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pare_trace::{ProbeOutcome, ProbeSpec};

    fn rec(spec: ProbeSpec, outcome: ProbeOutcome) -> ProbeRecord {
        ProbeRecord {
            spec,
            outcome,
            millis: 0,
        }
    }

    #[test]
    fn refused_or_failed_network_probes_are_no_evidence_unless_declared() {
        let refused = rec(
            ProbeSpec::Tcp { port: 5672 },
            ProbeOutcome {
                connected: Some(false),
                ..Default::default()
            },
        );
        let why = unanswered(&refused, &[]).unwrap();
        assert!(
            why.contains("tcp :5672 was refused") && why.contains("--expect-closed 5672"),
            "{why}"
        );
        assert_eq!(unanswered(&refused, &[5672]), None);
        let timeout = rec(
            ProbeSpec::Http {
                port: 80,
                method: "GET".into(),
                path: "/".into(),
                headers: vec![],
                body: None,
                https: false,
                expect_status: None,
            },
            ProbeOutcome {
                error: Some("timed out".into()),
                ..Default::default()
            },
        );
        assert!(unanswered(&timeout, &[]).unwrap().contains("got no answer"));
        let ok = rec(
            ProbeSpec::Tcp { port: 6379 },
            ProbeOutcome {
                connected: Some(true),
                ..Default::default()
            },
        );
        assert_eq!(unanswered(&ok, &[]), None);
        // A job or exec that fails is compared as such, not "unanswered".
        let job = rec(
            ProbeSpec::Job,
            ProbeOutcome {
                exit_code: Some(1),
                ..Default::default()
            },
        );
        assert_eq!(unanswered(&job, &[]), None);
    }

    #[test]
    fn bad_ready_flags_are_named() {
        let e = sign_of(Some("(unclosed"), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ready-log") && e.contains("(unclosed"), "{e}");
        let e = sign_of(None, Some("localhost:80"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ready-url"), "{e}");
        assert!(sign_of(None, None, Some("  ")).is_err());
        assert!(matches!(
            sign_of(None, None, Some("pg_isready -q")).unwrap(),
            Some(ReadySign::Cmd(a)) if a == ["pg_isready", "-q"]
        ));
        assert!(sign_of(None, None, None).unwrap().is_none());
    }
}
