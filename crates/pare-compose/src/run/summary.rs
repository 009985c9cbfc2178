//! What a run leaves: per-service outcomes, `summary.json` and its text, and
//! `compose.slim.yaml`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{ComposeOptions, RunError, file_err};
use crate::model::Project;

/// Per-service outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOutcome {
    /// The service.
    pub service: String,
    /// Its original image.
    pub image: String,
    /// The slim image's tag (build only).
    pub slim: Option<String>,
    /// Its `report.json` (build) or `profile.json` (profile only).
    pub report: PathBuf,
    /// The original's size, as `docker images` shows it.
    pub source_size: Option<u64>,
    /// The slim image's size.
    pub slim_size: Option<u64>,
    /// `None` when not verified.
    pub verified: Option<bool>,
    /// Problems found while verifying (probe differences, unhealthy services).
    pub problems: Vec<String>,
    /// Seconds its trace (and slimming) took.
    pub seconds: f64,
}

/// The project summary (`summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The project name.
    pub project: String,
    /// The compose file.
    pub file: PathBuf,
    /// Each target, in start order.
    pub services: Vec<ServiceOutcome>,
    /// Dependencies that ran untraced.
    pub dependencies: Vec<String>,
    /// `compose.slim.yaml` (not when only profiling).
    pub override_file: Option<PathBuf>,
    /// Keys accepted but not applied, from loading.
    pub notices: Vec<String>,
    /// Seconds tracing and slimming took (the targets at the same time).
    pub trace_seconds: f64,
    /// Seconds from the first verification's start to the last one's end (verifications
    /// start while other targets are still being slimmed, so this overlaps `trace_seconds`).
    pub verify_seconds: f64,
    /// Seconds the whole run took.
    pub total_seconds: f64,
}

impl Summary {
    /// Whether every verified service passed.
    pub fn ok(&self) -> bool {
        self.services.iter().all(|s| s.verified != Some(false))
    }

    /// The summary as text: one line per target with its sizes, its problems, then the untraced dependencies, the override file and the times.
    pub fn render(&self) -> String {
        let mut out = format!("project   {} ({})\n", self.project, self.file.display());
        for n in &self.notices {
            out.push_str(&format!("notice    {n}\n"));
        }
        for s in &self.services {
            let size =
                |b: Option<u64>| b.map_or("?".into(), |b| format!("{:.1} MB", b as f64 / 1e6));
            out.push_str(&format!(
                "{} {:<10} {} -> {} ({} -> {}) {:.1}s\n",
                match s.verified {
                    Some(true) => "✓",
                    Some(false) => "✗",
                    None => "·",
                },
                s.service,
                s.image,
                s.slim.as_deref().unwrap_or("(profile only)"),
                size(s.source_size),
                size(s.slim_size),
                s.seconds
            ));
            for p in &s.problems {
                out.push_str(&format!("    {p}\n"));
            }
            out.push_str(&format!("    report {}\n", s.report.display()));
        }
        if !self.dependencies.is_empty() {
            out.push_str(&format!("untraced  {}\n", self.dependencies.join(", ")));
        }
        if let Some(f) = &self.override_file {
            out.push_str(&format!(
                "override  {}  (docker-compose -f {} -f {} up)\n",
                f.display(),
                self.file.display(),
                f.display()
            ));
        }
        out.push_str(&format!(
            "time      {:.1}s (trace+slim {:.1}s, verify {:.1}s)\n",
            self.total_seconds, self.trace_seconds, self.verify_seconds
        ));
        out
    }
}

/// `compose.slim.yaml`: per slimmed service its slim image and the seccomp profile of its
/// trace. Paths are absolute, so the file works from anywhere next to the original.
pub fn override_yaml(outcomes: &[ServiceOutcome], artifacts: &Path) -> String {
    let mut out = String::from(
        "# Written by pare build --compose: the slim images, each with the seccomp profile of\n# its trace. Use: docker-compose -f compose.yaml -f compose.slim.yaml up\nservices:\n",
    );
    let abs = std::fs::canonicalize(artifacts).unwrap_or_else(|_| artifacts.to_path_buf());
    for o in outcomes {
        let Some(slim) = &o.slim else { continue };
        let seccomp = abs.join(&o.service).join("seccomp.json");
        out.push_str(&format!(
            "  {}:\n    image: {}\n    security_opt:\n      - seccomp:{}\n",
            yaml_str(&o.service),
            yaml_str(slim),
            seccomp.display()
        ));
    }
    out
}

fn yaml_str(s: &str) -> String {
    serde_yaml::to_string(s)
        .map(|t| t.trim_end().to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// How long the phases took.
pub(super) struct Seconds {
    pub(super) trace: f64,
    pub(super) verify: f64,
    /// When the run started.
    pub(super) start: Instant,
}

/// Writes `compose.slim.yaml` (unless only profiling) and `summary.json`.
pub(super) fn write(
    project: &Project,
    opts: &ComposeOptions,
    outcomes: Vec<ServiceOutcome>,
    dependencies: Vec<String>,
    seconds: Seconds,
) -> Result<Summary, RunError> {
    let override_file = if opts.profile_only {
        None
    } else {
        let path = opts.artifacts.join("compose.slim.yaml");
        let text = override_yaml(&outcomes, &opts.artifacts);
        std::fs::write(&path, text).map_err(file_err(&path))?;
        Some(std::fs::canonicalize(&path).unwrap_or(path))
    };
    let summary = Summary {
        project: project.name.clone(),
        file: project.file.clone(),
        services: outcomes,
        dependencies,
        override_file,
        notices: project.notices.clone(),
        trace_seconds: seconds.trace,
        verify_seconds: seconds.verify,
        total_seconds: seconds.start.elapsed().as_secs_f64(),
    };
    let path = opts.artifacts.join("summary.json");
    let json = serde_json::to_vec_pretty(&summary).map_err(|source| RunError::Json {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&path, json).map_err(file_err(&path))?;
    Ok(summary)
}
