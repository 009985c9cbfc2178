//! Compose projects as pare targets: `pare build --compose compose.yaml [SERVICE…]`.
//!
//! ```text
//! compose.yaml + .env ─► interpolate ─► compose_spec (validate) ─► Project (what pare supports)
//!   ─► order (depends_on, cycles) ─► per target: fresh network + volumes, dependencies started
//!      untraced in order (conditions honoured), the target traced and slimmed (pare-build)
//!   ─► verify: the project up again with every slim image in place, probes replayed,
//!      healthchecks passing ─► compose.slim.yaml, per-service report.json, summary.json
//! ```

#![deny(missing_docs)]

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
    /// Reading the compose file.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `.env` line that is not `KEY=VALUE`.
    #[error("{path}: line {line} is not KEY=VALUE")]
    EnvFile {
        /// The `.env` file.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
    },
    /// The file is not a valid Compose file (or a value pare cannot use).
    #[error("{file}: {message}")]
    Invalid {
        /// The compose file (or the key at fault).
        file: PathBuf,
        /// What is wrong, in words, with the YAML path at fault (`the top level is not a
        /// mapping`, `services.web: ports: only TCP ports are supported (53 is not)`).
        message: String,
        /// The I/O or YAML error behind it (an `env_file` that cannot be read, an `x-pare`
        /// that does not decode).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The file is not YAML.
    #[error("{file}: not YAML")]
    NotYaml {
        /// The compose file.
        file: PathBuf,
        /// The YAML parser's error, with its line and column.
        #[source]
        source: serde_yaml::Error,
    },
    /// The YAML does not have the Compose specification's shape (a wrong type, an unknown
    /// field in a typed section), or pare's own probe list for a service could not be
    /// written as YAML.
    #[error("{file}")]
    Shape {
        /// The compose file, or the YAML path of the probe list (`services.NAME.x-pare.probes`).
        file: PathBuf,
        /// The YAML (de)serializer's error.
        #[source]
        source: serde_yaml::Error,
    },
    /// A `${VAR}` that cannot be interpolated.
    #[error("{file}")]
    Interpolate {
        /// The compose file.
        file: PathBuf,
        /// Which variable, where, and why.
        #[source]
        source: interpolate::InterpolateError,
    },
    /// A key pare does not run with.
    #[error("{file}: {key}: not supported by pare")]
    Unsupported {
        /// The compose file.
        file: PathBuf,
        /// The key, as a YAML path (a top-level key, or `services.NAME.KEY`).
        key: String,
    },
    /// A service named on the command line that the project does not define.
    #[error("no service named {name:?} (services: {known})")]
    UnknownService {
        /// The name given.
        name: String,
        /// The services defined, comma-separated.
        known: String,
    },
    /// A `depends_on` entry naming no active service.
    #[error("service {service} depends on {dependency}, which is {}", if *inactive { "in an inactive profile" } else { "not defined" })]
    UnknownDependency {
        /// The service.
        service: String,
        /// What it depends on.
        dependency: String,
        /// The dependency exists, in a profile that is not active.
        inactive: bool,
    },
    /// `depends_on` goes round.
    #[error("depends_on cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The services of the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
}

/// `s` with line breaks escaped (`\\n`): a key or value quoted from the file keeps the error
/// on one line.
pub(crate) fn one_line(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
