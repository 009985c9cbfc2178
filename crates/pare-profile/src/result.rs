//! What a profiling run gives back: the profile, where its artifacts went, phase timings,
//! and the human summary.

use std::path::PathBuf;
use std::time::Duration;

use pare_trace::{AccessKind, AppState, ProbeRecord, Profile};

use crate::unanswered;

/// Where the artifacts were written.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// `OUTPUT/profile.json`: the whole [`Profile`].
    pub profile_json: PathBuf,
    /// `OUTPUT/seccomp.json`: a Docker seccomp profile allowing the syscalls seen.
    pub seccomp_json: PathBuf,
    /// `OUTPUT/apparmor.profile`: an AppArmor profile allowing the files and ports seen.
    pub apparmor_profile: PathBuf,
    /// The AppArmor profile's name.
    pub apparmor_name: String,
}

/// Phase durations.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Parsing the reference, finding the sensor, choosing the runtime, opening the image and
    /// (embedded runtime) extracting its root filesystem. Zero from [`run_profile`](crate::run_profile),
    /// which starts with the image already open.
    pub prepare: Duration,
    /// Planning the run and starting the container under the sensor.
    pub start: Duration,
    /// The readiness wait: until the ports answer, the ready sign is seen, or the app exits.
    pub ready: Duration,
    /// Running the probes (user's or default).
    pub probes: Duration,
    /// After `--continue-after` is satisfied: until the app exited (SIGTERM, then a 10 s grace).
    pub stop: Duration,
    /// Removing the container and the extracted root filesystem.
    pub cleanup: Duration,
    /// The untraced second run (see `ProfileOptions::stability_run`).
    pub stability: Duration,
    /// Start + readiness of that untraced run, when it waited for ports: set against
    /// `start + ready` of the traced run, the sensor's cost on the app's start-up.
    pub untraced_startup: Option<Duration>,
    /// Wall time of the whole profiling run, from the first phase to the written artifacts.
    pub total: Duration,
}

impl Timings {
    /// Container start until the ports answer, under the sensor.
    pub fn traced_startup(&self) -> Duration {
        self.start + self.ready
    }
}

/// The outcome of a profiling run.
#[derive(Debug, Clone)]
pub struct ProfileResult {
    /// What the run saw: the image, the sensor's report, the probe answers and how it got ready.
    pub profile: Profile,
    /// Where `profile`, the seccomp and the AppArmor profile were written.
    pub artifacts: Artifacts,
    /// How long each phase took.
    pub timings: Timings,
    /// How the readiness wait ended, for the summary.
    pub readiness: String,
}

impl ProfileResult {
    /// Probes whose own expectation (`expect_status`) failed or that could not run.
    pub fn failed_probes(&self) -> Vec<&ProbeRecord> {
        self.profile
            .probes
            .iter()
            .filter(|r| self.probe_problem(r).is_some())
            .collect()
    }

    /// Why a probe failed: it could not run, its own expectation failed, or it got no answer
    /// on a port not declared closed (see [`unanswered`]).
    pub fn probe_problem(&self, r: &ProbeRecord) -> Option<String> {
        let closed = self
            .profile
            .run
            .as_ref()
            .map(|x| x.expected_closed.as_slice())
            .unwrap_or_default();
        if let Some(why) = unanswered(r, closed) {
            return Some(why);
        }
        // On a port declared closed, a refusal or an error is the expected answer.
        let declared = r.spec.port().is_some_and(|p| closed.contains(&p));
        if let (Some(e), false) = (&r.outcome.error, declared) {
            return Some(e.clone());
        }
        pare_probe::check_expectation(&r.spec, &r.outcome)
            .err()
            .map(|d| d.to_string())
    }

    /// A human summary: counts, executables, probes and artifact paths.
    pub fn summary(&self) -> String {
        let p = &self.profile;
        let s = &p.sensor;
        let count = |k: AccessKind| s.files.values().filter(|f| f.kinds.contains(&k)).count();
        let stat_only = s
            .files
            .values()
            .filter(|f| {
                !f.kinds.is_empty()
                    && f.kinds
                        .iter()
                        .all(|k| matches!(k, AccessKind::Stat | AccessKind::Readlink))
            })
            .count();
        let found = s.files.values().filter(|f| f.found).count();
        let mut out = String::new();
        out.push_str(&format!(
            "image     {} ({})\n",
            p.image.reference,
            short_digest(&p.image.config_digest)
        ));
        out.push_str(&format!(
            "runtime   {}, tracing: ptrace{}, ran `{}` as uid {}\n",
            p.runtime,
            if s.fanotify { " + fanotify" } else { " only" },
            s.command.join(" "),
            s.uid
        ));
        out.push_str(&format!("readiness {}\n", self.readiness));
        if let Some(e) = &s.exit {
            out.push_str(&format!(
                "exit      {}{}\n",
                e.code,
                e.signal
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "files     {} paths ({} present, {} missing): {} opened, {} written, {} created, {} executed, {} stat-only\n",
            s.files.len(),
            found,
            s.files.values().filter(|f| f.missing && !f.found).count(),
            count(AccessKind::Open),
            count(AccessKind::Write),
            count(AccessKind::Create),
            count(AccessKind::Exec),
            stat_only
        ));
        let mut execs: Vec<&str> = s.execs.iter().map(|e| e.path.as_str()).collect();
        execs.sort_unstable();
        execs.dedup();
        out.push_str(&format!(
            "execs     {} ({})\n",
            s.execs.len(),
            execs.join(", ")
        ));
        out.push_str(&format!("syscalls  {} distinct\n", s.syscalls.len()));
        for n in &s.notices {
            out.push_str(&format!("notice    {n}\n"));
        }
        out.push_str(&format!("probes    {}\n", p.probes.len()));
        for r in &p.probes {
            let problem = self.probe_problem(r);
            let bad = problem.is_some();
            out.push_str(&format!(
                "  {} {:<40} {}\n",
                if bad { "✗" } else { "✓" },
                pare_probe::describe(&r.spec),
                if r.outcome.volatile.is_empty() {
                    pare_probe::describe_outcome(&r.outcome)
                } else {
                    format!(
                        "{} (varies: {})",
                        pare_probe::describe_outcome(&r.outcome),
                        pare_trace::VolatileField::join(&r.outcome.volatile)
                    )
                }
            ));
            if let Some(why) = problem {
                out.push_str(&format!("      {why}\n"));
            }
        }
        if let Some(run) = &p.run {
            for f in &run.findings {
                out.push_str(&format!("finding   {f}\n"));
            }
            if let Some(state) = &run.after_probes {
                out.push_str(&format!(
                    "after     the probes, the app {}\n",
                    match state {
                        AppState::Running => "was still running".to_string(),
                        AppState::Exited(e) => pare_probe::describe_exit(e),
                    }
                ));
            }
        }
        let t = &self.timings;
        if let Some(plain) = t.untraced_startup {
            let traced = t.traced_startup();
            out.push_str(&format!(
                "start-up  {:.2}s traced, {:.2}s untraced (sensor {:+.2}s)\n",
                traced.as_secs_f64(),
                plain.as_secs_f64(),
                traced.as_secs_f64() - plain.as_secs_f64()
            ));
        }
        out.push_str(&format!(
            "time      {:.1}s (prepare {:.1}s, start {:.1}s, ready {:.1}s, probes {:.1}s, stop {:.1}s, cleanup {:.1}s, stability run {:.1}s)\n",
            t.total.as_secs_f64(),
            t.prepare.as_secs_f64(),
            t.start.as_secs_f64(),
            t.ready.as_secs_f64(),
            t.probes.as_secs_f64(),
            t.stop.as_secs_f64(),
            t.cleanup.as_secs_f64(),
            t.stability.as_secs_f64()
        ));
        let a = &self.artifacts;
        out.push_str(&format!("wrote     {}\n", a.profile_json.display()));
        out.push_str(&format!(
            "          {}  (docker run --security-opt seccomp={})\n",
            a.seccomp_json.display(),
            a.seccomp_json.display()
        ));
        out.push_str(&format!(
            "          {}  (apparmor_parser -r {}; docker run --security-opt apparmor={})\n",
            a.apparmor_profile.display(),
            a.apparmor_profile.display(),
            a.apparmor_name
        ));
        out
    }
}

fn short_digest(d: &str) -> &str {
    let end = d.char_indices().nth(19).map(|(i, _)| i).unwrap_or(d.len());
    &d[..end]
}
