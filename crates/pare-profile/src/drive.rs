//! Driving the started app under the sensor: wait until it is ready, record how, probe it,
//! note its state after the probes, and keep it running as `--continue-after` asks.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pare_probe::{PortKind, Readiness, ReadyPlan, ReadyReport, ReadySign};
use pare_runtime::Container;
use pare_trace::{AppState, ProbeRecord, ProbeSpec, RunRecord};

use crate::ready::not_ready;
use crate::report::traced_exec;
use crate::run::Plan;
use crate::{ContinueAfter, ProfileError, ProfileOptions};

/// Readiness: the ports the probes need (all exposed ones by default), or the user's `sign`.
/// `None` for a job without a sign (not waited for).
pub(crate) fn await_ready(
    c: &dyn Container,
    plan: &Plan,
    sign: Option<ReadySign>,
    opts: &ProfileOptions,
) -> Result<Option<ReadyReport>, ProfileError> {
    let (run, job) = (&plan.run, plan.job);
    let named: Vec<u16> = plan
        .explicit
        .iter()
        .flatten()
        .filter_map(ProbeSpec::port)
        .collect();
    let mut wait_ports: Vec<u16> = if named.is_empty() {
        // No port probes (or only exec/host-exec ones): still let a service come up first.
        run.tcp_ports.clone()
    } else {
        named.clone()
    };
    wait_ports.sort_unstable();
    wait_ports.dedup();
    wait_ports.retain(|p| !opts.expect_closed.contains(p));
    if job {
        wait_ports.clear();
    }
    // EXPOSEd ports no probe names may turn out unused; a port a probe names must answer.
    let droppable = run
        .tcp_ports
        .iter()
        .copied()
        .filter(|p| !named.contains(p))
        .collect();
    if !wait_ports.is_empty() || sign.is_some() {
        opts.wait_for(&match &sign {
            Some(_) => "the readiness sign".to_string(),
            None => format!("port {} to answer", pare_probe::port_list(&wait_ports)),
        });
    }
    let activity_file = plan.out_dir.path().join(pare_trace::ACTIVITY_FILE);
    let activity = || {
        let text = std::fs::read_to_string(&activity_file).ok()?;
        let a = pare_trace::SensorActivity::parse(&text)?;
        Some(pare_probe::Activity {
            novelty: a.novelty,
            listens: a.listens,
        })
    };
    if job && sign.is_none() {
        return Ok(None);
    }
    Ok(Some(pare_probe::wait_until_ready(
        c,
        &ReadyPlan {
            ports: wait_ports,
            droppable,
            // The profiled run finds out what the ports speak; it has nothing to replay.
            expect: Default::default(),
            sign,
            timeout: opts.timeout,
            activity: Some(&activity),
            probe: plan.probe_opts.clone(),
        },
    )?))
}

/// How the run got ready (what verification replays), with unused EXPOSEd ports as findings;
/// the error when the app exited (not a job) or never answered before it was ready.
pub(crate) fn run_record(
    c: &dyn Container,
    reference: &str,
    plan: &Plan,
    ready: Option<&ReadyReport>,
    waited: Duration,
    opts: &ProfileOptions,
) -> Result<RunRecord, ProfileError> {
    let job = plan.job;
    let mut record = RunRecord {
        readiness: match (ready, job) {
            (Some(r), _) => r.how.clone(),
            (None, _) => "a job (--job): not waiting for ports".to_string(),
        },
        ready_millis: waited.as_millis() as u64,
        expected_closed: opts.expect_closed.clone(),
        job,
        ready_log: opts.ready_log.clone(),
        ready_url: opts.ready_url.clone(),
        ready_cmd: opts.ready_cmd.clone(),
        ..Default::default()
    };
    if let Some(r) = ready {
        record.ports = r
            .ports
            .iter()
            .map(|(p, k)| (*p, k.name().to_string()))
            .collect();
        for p in &r.unused {
            record.unused_exposed.push(format!("{p}/tcp"));
            record
                .findings
                .push(format!("EXPOSE {p}/tcp: nothing listens"));
        }
        match &r.outcome {
            Readiness::Exited(e) if !job => {
                return Err(not_ready(c, reference, &r.how, Some(e)));
            }
            Readiness::TimedOut { .. } if r.ports.is_empty() => {
                return Err(not_ready(c, reference, &r.how, None));
            }
            _ => {}
        }
    }
    Ok(record)
}

/// What the probe phase recorded.
pub(crate) struct Probed {
    /// One per probe, answers that change between requests marked volatile.
    pub(crate) records: Vec<ProbeRecord>,
    /// Per `--exec` probe, the report of the sensor that traced it (`None`: it ran untraced).
    pub(crate) exec_traces: Vec<Option<PathBuf>>,
}

/// Runs the user's probes, or by default: a job to its end (no exposed ports, or `--job`),
/// else a crawl of each HTTP port and a handshake or connect on the others.
pub(crate) fn probe(
    c: &dyn Container,
    plan: &Plan,
    ready: Option<&ReadyReport>,
    opts: &ProfileOptions,
) -> Probed {
    let (run, job, probe_opts) = (&plan.run, plan.job, &plan.probe_opts);
    let mut records = Vec::new();
    let mut exec_traces: Vec<Option<PathBuf>> = Vec::new();
    match &plan.explicit {
        Some(specs) => {
            for s in specs {
                opts.say(&format!("probe {}", pare_probe::describe(s)));
                match s {
                    ProbeSpec::Exec { argv } => {
                        let n = exec_traces.len();
                        let (rec, traced) =
                            traced_exec(c, argv, run, plan.out_dir.path(), n, probe_opts);
                        exec_traces.push(traced);
                        records.push(rec);
                    }
                    _ => records.push(pare_probe::run_probe(c, s, probe_opts)),
                }
            }
        }
        None if run.tcp_ports.is_empty() || job => {
            opts.say(&format!(
                "{}: waiting up to {}s for the job to finish",
                if job { "a job" } else { "no exposed ports" },
                opts.timeout.as_secs()
            ));
            records.push(pare_probe::run_probe(c, &ProbeSpec::Job, probe_opts));
        }
        None => {
            let known = ready.map(|r| &r.ports);
            let unused = ready.map(|r| r.unused.clone()).unwrap_or_default();
            for &port in run.tcp_ports.iter().filter(|p| !unused.contains(p)) {
                let kind = known
                    .and_then(|k| k.get(&port).copied())
                    .unwrap_or_else(|| pare_probe::classify_port(c, port, probe_opts));
                match kind {
                    kind @ (PortKind::Http | PortKind::Https) => {
                        opts.wait_for(&format!("a crawl of port {port}"));
                        records.extend(pare_probe::crawl(
                            c,
                            port,
                            kind == PortKind::Https,
                            probe_opts,
                        ));
                    }
                    PortKind::Protocol(protocol) => {
                        opts.say(&format!("port {port} speaks {}", protocol.name()));
                        records.push(pare_probe::run_probe(
                            c,
                            &ProbeSpec::Protocol { port, protocol },
                            probe_opts,
                        ));
                    }
                    PortKind::Tcp | PortKind::Silent | PortKind::Closed => {
                        records.push(pare_probe::run_probe(
                            c,
                            &ProbeSpec::Tcp { port },
                            probe_opts,
                        ));
                    }
                }
            }
        }
    }
    pare_probe::mark_volatile(c, &mut records, probe_opts);
    Probed {
        records,
        exec_traces,
    }
}

/// Whether the app still runs after the probes: part of its behaviour, verification compares
/// it. An exit shows a moment after it happened: when a probe got no answer, give it time.
pub(crate) fn state_after_probes(
    c: &dyn Container,
    records: &[ProbeRecord],
) -> Result<AppState, ProfileError> {
    let settle = if records.iter().any(|r| r.outcome.error.is_some()) {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    Ok(match c.wait(settle)? {
        Some(e) => AppState::Exited(e),
        None => AppState::Running,
    })
}

/// Keeps the app running as `--continue-after` asks; returns notes for the report.
pub(crate) fn keep_running(
    c: &dyn Container,
    opts: &ProfileOptions,
) -> Result<Vec<String>, ProfileError> {
    let mut exit_notes: Vec<String> = Vec::new();
    match opts.continue_after {
        ContinueAfter::Probe => {}
        ContinueAfter::Seconds(n) => {
            opts.wait_for(&format!("{n}s more (--continue-after)"));
            opts.cancel.sleep(Duration::from_secs(n));
        }
        ContinueAfter::Exit(limit) => {
            opts.wait_for(&format!(
                "the app to exit, at most {}s (Ctrl-C aborts)",
                limit.as_secs()
            ));
            let deadline = Instant::now() + limit;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let note = format!(
                        "--continue-after exit: the app was still running after {}s; stopped it",
                        limit.as_secs()
                    );
                    pare_progress::Progress::notice(&opts.progress, &note);
                    exit_notes.push(note);
                    break;
                }
                if c.wait(left.min(Duration::from_secs(1)))?.is_some() {
                    break;
                }
            }
        }
        ContinueAfter::Signal => {
            // Before the notice: a Ctrl-C as soon as it shows ends the wait, not the run.
            let wait = opts.cancel.proceed_wait();
            pare_progress::Progress::notice(
                &opts.progress,
                &format!(
                    "the app is running; drive it now, then press Ctrl-C (or send SIGUSR1 to {}) to stop",
                    std::process::id()
                ),
            );
            opts.wait_for("you to press Ctrl-C or send SIGUSR1");
            wait.until(Duration::from_millis(200), |d| Ok(c.wait(d)?.is_some()))
                .map_err(ProfileError::Runtime)?;
        }
    }
    Ok(exit_notes)
}
