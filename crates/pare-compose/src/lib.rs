//! Compose projects as pare targets: `pare build --compose compose.yaml [SERVICE…]`.
//!
//! ```text
//! compose.yaml + .env ─► interpolate ─► compose_spec (validate) ─► Project (what pare supports)
//!   ─► order (depends_on, cycles) ─► per target: fresh network + volumes, dependencies started
//!      untraced in order (conditions honoured), the target traced and slimmed (pare-build)
//!   ─► verify: the project up again with every slim image in place, probes replayed,
//!      healthchecks passing ─► compose.slim.yaml, per-service report.json, summary.json
//! ```

use std::path::PathBuf;

pub mod interpolate;
pub mod model;
pub mod order;
pub mod run;

pub use run::{ComposeOptions, RunError, ServiceOutcome, Summary};

pub use model::{Condition, LoadOptions, MountSpec, Project, Service, XPare};

/// Errors of a compose run. Each names the file, service, key or port involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line} is not KEY=VALUE")]
    EnvFile { path: PathBuf, line: usize },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("{file}")]
    Interpolate {
        file: PathBuf,
        #[source]
        source: interpolate::InterpolateError,
    },
    #[error("{file}: {key}: not supported by pare")]
    Unsupported { file: PathBuf, key: String },
    #[error("no service named {name:?} (services: {known})")]
    UnknownService { name: String, known: String },
    #[error("service {service} depends on {dependency}, which is {}", if *inactive { "in an inactive profile" } else { "not defined" })]
    UnknownDependency {
        service: String,
        dependency: String,
        inactive: bool,
    },
    #[error("depends_on cycle: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
}

#[cfg(test)]
mod tests;
