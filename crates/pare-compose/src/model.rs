//! The Compose model pare runs: loaded from a file, interpolated, validated by `compose_spec`,
//! and reduced to the settings pare supports. Anything else is an error naming the key.
//!
//! The types are here; [`Project::load`] and [`Project::parse`] are in `model/load.rs`, the
//! per-service conversion from `compose_spec` in `model/convert.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::interpolate::Vars;

mod convert;
mod load;

/// When a dependency counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `service_started`: the container is running.
    ServiceStarted,
    /// `service_healthy`: its healthcheck passes.
    ServiceHealthy,
    /// `service_completed_successfully`: it exited with 0.
    ServiceCompletedSuccessfully,
}

/// A published port: `[HOST_IP:][HOST:]CONTAINER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The host address bound (all when `None`).
    pub host_ip: Option<String>,
    /// The host port (`None`: none fixed).
    pub host_port: Option<u16>,
    /// The container port.
    pub container: u16,
}

/// A mount of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountSpec {
    /// A named volume (`name`) or an anonymous one (`None`).
    Volume {
        /// The volume name (`None`: anonymous).
        name: Option<String>,
        /// Where it is mounted in the container.
        target: String,
        /// Mounted read-only (`:ro`).
        read_only: bool,
    },
    /// A host path, made absolute against the project directory.
    Bind {
        /// The host path.
        source: PathBuf,
        /// Where it is mounted in the container.
        target: String,
        /// Mounted read-only (`:ro`).
        read_only: bool,
    },
    /// A tmpfs.
    Tmpfs {
        /// Where it is mounted in the container.
        target: String,
    },
}

impl MountSpec {
    /// Where it is mounted in the container.
    pub fn target(&self) -> &str {
        match self {
            MountSpec::Volume { target, .. }
            | MountSpec::Bind { target, .. }
            | MountSpec::Tmpfs { target } => target,
        }
    }
}

/// A healthcheck: `test` as Docker takes it (`CMD …`, `CMD-SHELL …`, `NONE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The check, as Docker takes it (`CMD …`, `CMD-SHELL …`, `NONE`).
    pub test: Vec<String>,
    /// Time between checks.
    pub interval: Option<Duration>,
    /// Time one check may take.
    pub timeout: Option<Duration>,
    /// Failures in a row before unhealthy.
    pub retries: Option<u32>,
    /// Start-up time during which failures do not count.
    pub start_period: Option<Duration>,
}

impl Health {
    /// The command the check runs, as an argv (`None` for `NONE`).
    pub fn argv(&self) -> Option<Vec<String>> {
        match self.test.split_first()? {
            (k, rest) if k == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            (k, rest) if k == "CMD-SHELL" && !rest.is_empty() => {
                Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
            }
            _ => None,
        }
    }
}

/// pare's per-service settings: `x-pare:` in the service.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct XPare {
    /// Probes, in the probe-file format (`kind: http|tcp|exec|host-exec|job`).
    #[serde(default)]
    pub probes: Option<Value>,
    /// Globs to keep (`--include-path`).
    #[serde(default)]
    pub includes: Vec<String>,
    /// Globs to drop (`--exclude`).
    #[serde(default)]
    pub excludes: Vec<String>,
    /// `--continue-after`: probe, exit, signal or seconds.
    #[serde(default)]
    pub continue_after: Option<String>,
}

/// One service as pare runs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// The service name (its key under `services:`).
    pub name: String,
    /// The image it runs (it must be in the daemon).
    pub image: String,
    /// Overrides the image's ENTRYPOINT (and then drops its CMD, as Docker does).
    pub entrypoint: Option<Vec<String>>,
    /// Overrides the image's CMD.
    pub command: Option<Vec<String>>,
    /// `KEY=VALUE`: env_file entries, then `environment` over them.
    pub env: Vec<String>,
    /// Overrides the image's USER.
    pub user: Option<String>,
    /// Overrides the image's WORKDIR.
    pub working_dir: Option<String>,
    /// Published ports (`ports:`).
    pub published: Vec<Published>,
    /// Container ports from `expose` (and the container side of `ports`).
    pub expose: Vec<u16>,
    /// Volumes, binds and tmpfs mounts.
    pub mounts: Vec<MountSpec>,
    /// Networks joined, with extra aliases (the service name is always one).
    pub networks: Vec<(String, Vec<String>)>,
    /// Services it waits for, and for what.
    pub depends_on: Vec<(String, Condition)>,
    /// Its healthcheck (`None` when not given or disabled).
    pub healthcheck: Option<Health>,
    /// The profiles it belongs to (always active when empty).
    pub profiles: Vec<String>,
    /// pare's own settings (`x-pare:`).
    pub x_pare: XPare,
}

impl Service {
    /// Every container TCP port the service offers: published, then exposed.
    pub fn ports(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.published.iter().map(|p| p.container).collect();
        for p in &self.expose {
            if !v.contains(p) {
                v.push(*p);
            }
        }
        v
    }
}

/// A loaded project.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// The project name (`name:`, else the directory's).
    pub name: String,
    /// The compose file.
    pub file: PathBuf,
    /// The project directory: relative paths are against it.
    pub dir: PathBuf,
    /// The active services, by name.
    pub services: BTreeMap<String, Service>,
    /// Services left out because none of their profiles is active.
    pub inactive: Vec<String>,
    /// Keys accepted but not applied, one line each.
    pub notices: Vec<String>,
}

/// How to load a project.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Active profiles (`--profile`), besides `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// Variables over the environment and `.env` (tests; `None` entries unset a variable).
    pub env: Option<Vars>,
}
