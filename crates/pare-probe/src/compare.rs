//! Comparing outcomes: fields that change between identical requests (volatile), the
//! differences a replay reports, a probe's own expectation, and one-line descriptions.

use std::collections::BTreeSet;

use pare_runtime::Container;

use crate::run::{http_probe, run_probe};
use crate::{ProbeOptions, ProbeOutcome, ProbeRecord, ProbeSpec, VolatileField, proto};

/// Re-runs idempotent probes (GET/HEAD HTTP requests) once and marks the fields that changed
/// as volatile, so that replays do not flag a page that prints the time.
pub fn mark_volatile(container: &dyn Container, records: &mut [ProbeRecord], opts: &ProbeOptions) {
    for rec in records.iter_mut() {
        let idempotent = matches!(&rec.spec, ProbeSpec::Http { method, .. } if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD"));
        if !idempotent || rec.outcome.error.is_some() {
            continue;
        }
        let again = http_probe(container, &rec.spec, opts).0;
        let mut volatile = Vec::new();
        if again.body_digest != rec.outcome.body_digest {
            volatile.push(VolatileField::Body);
        }
        for (name, v) in &rec.outcome.headers {
            if again.headers.get(name) != Some(v) {
                volatile.push(VolatileField::Header(name.clone()));
            }
        }
        rec.outcome.volatile = volatile;
    }
}

/// Whether a differing field may be excused as volatile (it legitimately changes between two
/// runs of the same image): the body and kept headers. Status, exit code, connectivity and
/// errors never are.
pub fn may_be_volatile(field: &str) -> bool {
    VolatileField::parse(field).is_some()
}

/// Marks as volatile the fields that differ between `records` and the outcomes of the same
/// probes in another run of the same image (`other[i]` answers `records[i]`). Some answers
/// are stable within one container but not across containers — a page showing the start time
/// or the hostname — and only a second run can tell. A verifier can replay the recorded
/// probes against a fresh run of the original image, call this, then compare the candidate.
pub fn mark_volatile_across(records: &mut [ProbeRecord], other: &[ProbeOutcome]) {
    for (rec, again) in records.iter_mut().zip(other) {
        let Err(diff) = compare(&rec.outcome, again) else {
            continue;
        };
        for m in diff.mismatches {
            if let Some(field) = VolatileField::parse(&m.field) {
                if !rec.outcome.volatile.contains(&field) {
                    rec.outcome.volatile.push(field);
                }
            }
        }
    }
}

/// One field that differs between a recorded outcome and a replayed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `status`, `header:content-type`, `body`, `exit_code`, `connected` or `error`.
    pub field: String,
    /// The recorded value, as shown to a reader.
    pub expected: String,
    /// The replayed value, as shown to a reader.
    pub actual: String,
}

/// Why two outcomes are not equivalent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.mismatches.iter().map(|m| format!("{}: expected {}, got {}", m.field, m.expected, m.actual)).collect::<Vec<_>>().join("; "))]
pub struct Difference {
    /// Every field that differs.
    pub mismatches: Vec<Mismatch>,
}

fn show<T: std::fmt::Debug>(v: &Option<T>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "nothing".into(),
    }
}

/// Compares a replayed outcome with the recorded one. Compared: HTTP status, the kept
/// headers, body digest and length (unless recorded as volatile), exit code, TCP
/// connectivity, the fields of a protocol handshake (`field:NAME`), and whether the probe could run at all. Timing is never compared.
pub fn compare(expected: &ProbeOutcome, actual: &ProbeOutcome) -> Result<(), Difference> {
    let mut m = Vec::new();
    let mut diff = |field: &str, e: String, a: String| {
        m.push(Mismatch {
            field: field.into(),
            expected: e,
            actual: a,
        })
    };
    match (&expected.error, &actual.error) {
        (None, Some(a)) => diff("error", "no error".into(), format!("{a:?}")),
        (Some(e), None) => diff("error", format!("{e:?}"), "no error".into()),
        _ => {}
    }
    if expected.http_status != actual.http_status {
        diff(
            "status",
            show(&expected.http_status),
            show(&actual.http_status),
        );
    }
    let volatile = |f: &VolatileField| expected.volatile.contains(f);
    let names: BTreeSet<&String> = expected
        .headers
        .keys()
        .chain(actual.headers.keys())
        .collect();
    for name in names {
        let field = VolatileField::Header(name.clone());
        if volatile(&field) {
            continue;
        }
        let field = field.to_string();
        let (e, a) = (expected.headers.get(name), actual.headers.get(name));
        if e != a {
            diff(&field, show(&e), show(&a));
        }
    }
    if !volatile(&VolatileField::Body)
        && (expected.body_digest != actual.body_digest || expected.body_len != actual.body_len)
    {
        let fmt = |d: &Option<String>, l: &Option<u64>| match (d, l) {
            (Some(d), Some(l)) => format!("{d} ({l} bytes)"),
            (Some(d), None) => d.clone(),
            _ => "nothing".into(),
        };
        diff(
            "body",
            fmt(&expected.body_digest, &expected.body_len),
            fmt(&actual.body_digest, &actual.body_len),
        );
    }
    if expected.exit_code != actual.exit_code {
        diff(
            "exit_code",
            show(&expected.exit_code),
            show(&actual.exit_code),
        );
    }
    let names: BTreeSet<&String> = expected.fields.keys().chain(actual.fields.keys()).collect();
    for name in names {
        let (e, a) = (expected.fields.get(name), actual.fields.get(name));
        if e != a {
            diff(&format!("field:{name}"), show(&e), show(&a));
        }
    }
    if expected.connected != actual.connected {
        diff(
            "connected",
            show(&expected.connected),
            show(&actual.connected),
        );
    }
    if m.is_empty() {
        Ok(())
    } else {
        Err(Difference { mismatches: m })
    }
}

/// Checks a spec's own expectation (`expect_status`) against an outcome.
pub fn check_expectation(spec: &ProbeSpec, outcome: &ProbeOutcome) -> Result<(), Difference> {
    if let ProbeSpec::Http {
        expect_status: Some(want),
        ..
    } = spec
    {
        if outcome.http_status != Some(*want) {
            return Err(Difference {
                mismatches: vec![Mismatch {
                    field: "status".into(),
                    expected: want.to_string(),
                    actual: show(&outcome.http_status),
                }],
            });
        }
    }
    Ok(())
}

/// One replayed probe.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The probe and its recorded outcome.
    pub record: ProbeRecord,
    /// What the replay got.
    pub actual: ProbeOutcome,
    /// Whether that matches the recorded outcome ([`compare`]).
    pub result: Result<(), Difference>,
}

impl Replay {
    /// The replay matched.
    pub fn ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// Runs the recorded probes again against `container` (in order; a `Job` record waits for the
/// exit) and compares each outcome with the recorded one.
pub fn replay(
    container: &dyn Container,
    records: &[ProbeRecord],
    opts: &ProbeOptions,
) -> Vec<Replay> {
    records
        .iter()
        .map(|rec| {
            let actual = run_probe(container, &rec.spec, opts).outcome;
            let result = compare(&rec.outcome, &actual);
            Replay {
                record: rec.clone(),
                actual,
                result,
            }
        })
        .collect()
}

/// A short one-line description of a probe, for summaries: `GET :8080/second`, `tcp :6379`.
pub fn describe(spec: &ProbeSpec) -> String {
    match spec {
        ProbeSpec::Http {
            port,
            method,
            path,
            https,
            ..
        } => {
            format!(
                "{method} {}:{port}{path}",
                if *https { "https" } else { "http" }
            )
        }
        ProbeSpec::Tcp { port } => format!("tcp :{port}"),
        ProbeSpec::Exec { argv } => format!("exec {}", argv.join(" ")),
        ProbeSpec::HostExec { command } => format!("host-exec {command}"),
        ProbeSpec::Job => "job (run to completion)".into(),
        ProbeSpec::Protocol { port, protocol } => format!("{} :{port}", protocol.name()),
    }
}

/// A short description of an outcome: `200 text/html 1234 B`, `connected`, `exit 0`.
pub fn describe_outcome(o: &ProbeOutcome) -> String {
    if let Some(e) = &o.error {
        return format!("error: {e}");
    }
    let mut parts = Vec::new();
    if let Some(s) = o.http_status {
        parts.push(s.to_string());
    }
    if let Some(ct) = o.headers.get("content-type") {
        parts.push(ct.split(';').next().unwrap_or(ct).to_string());
    }
    if let Some(l) = o.headers.get("location") {
        parts.push(format!("-> {l}"));
    }
    if let Some(c) = o.exit_code {
        parts.push(format!("exit {c}"));
    }
    if let Some(c) = o.connected {
        parts.push(if c {
            "connected".into()
        } else {
            "refused".into()
        });
    }
    if let Some(n) = o.body_len {
        parts.push(format!("{n} B"));
    }
    if !o.fields.is_empty() {
        parts.push(proto::summary(&o.fields));
    }
    parts.join(" ")
}
