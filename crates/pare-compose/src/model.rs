//! The Compose model pare runs: loaded from a file, interpolated, validated by `compose_spec`,
//! and reduced to the settings pare supports. Anything else is an error naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use compose_spec::service::healthcheck::{Healthcheck as SpecHealth, Test};
use compose_spec::service::volumes::Mount as SpecMount;
use compose_spec::service::{Condition as SpecCondition, Service as SpecService};
use compose_spec::{ListOrMap, ShortOrLong};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::ComposeError;
use crate::interpolate::{self, Vars};

/// Service keys pare runs with.
const SUPPORTED: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "user",
    "working_dir",
    "ports",
    "expose",
    "volumes",
    "tmpfs",
    "networks",
    "depends_on",
    "healthcheck",
    "secrets",
    "configs",
    "profiles",
];
/// Service keys that do not change what a service runs or needs: accepted with a notice.
const NOT_APPLIED: &[&str] = &[
    "restart",
    "container_name",
    "labels",
    "logging",
    "stop_grace_period",
    "stop_signal",
    "pull_policy",
    "build",
    "hostname",
];
const TOP_LEVEL: &[&str] = &[
    "version", "name", "services", "volumes", "networks", "secrets", "configs",
];

/// When a dependency counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

/// A published port: `[HOST_IP:][HOST:]CONTAINER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
    pub container: u16,
}

/// A mount of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountSpec {
    /// A named volume (`name`) or an anonymous one (`None`).
    Volume {
        name: Option<String>,
        target: String,
        read_only: bool,
    },
    /// A host path, made absolute against the project directory.
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
    },
}

impl MountSpec {
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
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
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
    pub name: String,
    pub image: String,
    /// Overrides the image's ENTRYPOINT (and then drops its CMD, as Docker does).
    pub entrypoint: Option<Vec<String>>,
    /// Overrides the image's CMD.
    pub command: Option<Vec<String>>,
    /// `KEY=VALUE`: env_file entries, then `environment` over them.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub published: Vec<Published>,
    /// Container ports from `expose` (and the container side of `ports`).
    pub expose: Vec<u16>,
    pub mounts: Vec<MountSpec>,
    /// Networks joined, with extra aliases (the service name is always one).
    pub networks: Vec<(String, Vec<String>)>,
    pub depends_on: Vec<(String, Condition)>,
    pub healthcheck: Option<Health>,
    pub profiles: Vec<String>,
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
    pub name: String,
    pub file: PathBuf,
    pub dir: PathBuf,
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

impl Project {
    /// Loads `file`: `.env` beside it, the environment over it, interpolation, validation.
    pub fn load(file: &Path, opts: &LoadOptions) -> Result<Project, ComposeError> {
        let text = std::fs::read_to_string(file).map_err(|source| ComposeError::Io {
            path: file.to_path_buf(),
            source,
        })?;
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let mut vars = Vars::new();
        let dotenv = dir.join(".env");
        if let Ok(t) = std::fs::read_to_string(&dotenv) {
            let (v, bad) = interpolate::parse_env_file(&t);
            if let Some(line) = bad.first() {
                return Err(ComposeError::EnvFile {
                    path: dotenv,
                    line: *line,
                });
            }
            vars.extend(v);
        }
        match &opts.env {
            Some(v) => vars.extend(v.clone()),
            None => vars.extend(std::env::vars()),
        }
        Self::parse(&text, file, &dir, &vars, &opts.profiles)
    }

    /// Parses the text of a compose file whose relative paths are against `dir`.
    pub fn parse(
        text: &str,
        file: &Path,
        dir: &Path,
        vars: &Vars,
        profiles: &[String],
    ) -> Result<Project, ComposeError> {
        let invalid = |message: String| ComposeError::Invalid {
            file: file.to_path_buf(),
            message,
        };
        let mut doc: Value =
            serde_yaml::from_str(text).map_err(|e| invalid(format!("not YAML: {e}")))?;
        interpolate::interpolate_value(&mut doc, vars, "").map_err(|source| {
            ComposeError::Interpolate {
                file: file.to_path_buf(),
                source,
            }
        })?;
        let mut notices = Vec::new();
        let top = doc
            .as_mapping()
            .ok_or_else(|| invalid("the top level is not a mapping".into()))?;
        for k in top.keys().filter_map(Value::as_str) {
            if !TOP_LEVEL.contains(&k) && !k.starts_with("x-") {
                return Err(ComposeError::Unsupported {
                    file: file.to_path_buf(),
                    key: k.to_string(),
                });
            }
        }
        if let Some(services) = top.get("services").and_then(Value::as_mapping) {
            for (name, svc) in services {
                let name = name.as_str().unwrap_or_default();
                for k in svc
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, _)| k.as_str())
                {
                    if SUPPORTED.contains(&k) || k.starts_with("x-") {
                        continue;
                    }
                    if NOT_APPLIED.contains(&k) {
                        notices.push(format!(
                            "services.{name}.{k}: accepted, not applied by pare"
                        ));
                        continue;
                    }
                    return Err(ComposeError::Unsupported {
                        file: file.to_path_buf(),
                        key: format!("services.{name}.{k}"),
                    });
                }
            }
        }
        for (section, what) in [("volumes", "volume"), ("networks", "network")] {
            for (name, def) in top
                .get(section)
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
            {
                for (k, _) in def.as_mapping().into_iter().flatten() {
                    let k = k.as_str().unwrap_or_default();
                    if !(k.starts_with("x-") || k == "driver" && what == "network") {
                        return Err(ComposeError::Unsupported {
                            file: file.to_path_buf(),
                            key: format!("{section}.{}.{k}", name.as_str().unwrap_or_default()),
                        });
                    }
                }
            }
        }
        let spec: compose_spec::Compose =
            serde_yaml::from_value(doc).map_err(|e| invalid(e.to_string()))?;

        let mut active: Vec<String> = profiles.to_vec();
        if let Some(p) = vars.get("COMPOSE_PROFILES") {
            active.extend(
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        let mut files: BTreeMap<(bool, String), PathBuf> = BTreeMap::new();
        for (name, s) in &spec.secrets {
            match &s {
                compose_spec::Resource::Compose(s) => match &s.source {
                    compose_spec::secret::Source::File(p) => {
                        files.insert((true, name.to_string()), dir.join(p));
                    }
                    compose_spec::secret::Source::Environment(_) => {
                        return Err(ComposeError::Unsupported {
                            file: file.to_path_buf(),
                            key: format!("secrets.{name}.environment"),
                        });
                    }
                },
                compose_spec::Resource::External { .. } => {
                    return Err(ComposeError::Unsupported {
                        file: file.to_path_buf(),
                        key: format!("secrets.{name}.external"),
                    });
                }
            }
        }
        for (name, c) in &spec.configs {
            match &c {
                compose_spec::Resource::Compose(c) => match &c.source {
                    compose_spec::config::Source::File(p) => {
                        files.insert((false, name.to_string()), dir.join(p));
                    }
                    _ => {
                        return Err(ComposeError::Unsupported {
                            file: file.to_path_buf(),
                            key: format!("configs.{name} (only file: configs are supported)"),
                        });
                    }
                },
                compose_spec::Resource::External { .. } => {
                    return Err(ComposeError::Unsupported {
                        file: file.to_path_buf(),
                        key: format!("configs.{name}.external"),
                    });
                }
            }
        }

        let mut services = BTreeMap::new();
        let mut inactive = Vec::new();
        for (name, svc) in spec.services {
            let name = name.to_string();
            let svc_profiles: Vec<String> = svc.profiles.iter().map(|p| p.to_string()).collect();
            if !svc_profiles.is_empty() && !svc_profiles.iter().any(|p| active.contains(p)) {
                inactive.push(name);
                continue;
            }
            let s = convert(&name, svc, svc_profiles, dir, vars, &files)
                .map_err(|m| invalid(format!("services.{name}: {m}")))?;
            services.insert(name, s);
        }
        // Every dependency must be a defined, active service.
        for s in services.values() {
            for (dep, _) in &s.depends_on {
                if !services.contains_key(dep) {
                    return Err(ComposeError::UnknownDependency {
                        service: s.name.clone(),
                        dependency: dep.clone(),
                        inactive: inactive.contains(dep),
                    });
                }
            }
        }
        let name = spec
            .name
            .map(|n| n.to_string())
            .or_else(|| vars.get("COMPOSE_PROJECT_NAME").cloned())
            .unwrap_or_else(|| {
                dir.file_name()
                    .map(|n| n.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_else(|| "project".into())
            });
        Ok(Project {
            name,
            file: file.to_path_buf(),
            dir: dir.to_path_buf(),
            services,
            inactive,
            notices,
        })
    }
}

fn split_command(c: compose_spec::service::Command) -> Result<Vec<String>, String> {
    match c {
        compose_spec::service::Command::List(v) => Ok(v),
        compose_spec::service::Command::String(s) => {
            shlex::split(&s).ok_or_else(|| format!("cannot split {s:?} into words"))
        }
    }
}

fn env_pairs(l: ListOrMap, vars: &Vars) -> Vec<String> {
    let mut out = Vec::new();
    match l {
        ListOrMap::List(list) => {
            for item in list {
                match item.split_once('=') {
                    Some(_) => out.push(item),
                    // `- KEY` takes the value from the environment, or is left out.
                    None => {
                        if let Some(v) = vars.get(&item) {
                            out.push(format!("{item}={v}"));
                        }
                    }
                }
            }
        }
        ListOrMap::Map(m) => {
            for (k, v) in m {
                match v {
                    Some(v) => out.push(format!("{k}={v}")),
                    None => {
                        if let Some(v) = vars.get(k.as_str()) {
                            out.push(format!("{k}={v}"));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Sets `KEY=VALUE` in `env`, replacing an earlier value of KEY.
pub(crate) fn set_env(env: &mut Vec<String>, kv: String) {
    let key = kv
        .split_once('=')
        .map_or(kv.as_str(), |(k, _)| k)
        .to_string();
    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
    env.push(kv);
}

fn convert(
    name: &str,
    svc: SpecService,
    profiles: Vec<String>,
    dir: &Path,
    vars: &Vars,
    files: &BTreeMap<(bool, String), PathBuf>,
) -> Result<Service, String> {
    let image = svc.image.as_ref().map(ToString::to_string).ok_or(
        "no image: pare runs built images (build the image first, then name it in image:)",
    )?;
    let mut env = Vec::new();
    if let Some(ef) = svc.env_file {
        for f in ef.into_list() {
            let (path, required) = match f {
                ShortOrLong::Short(p) => (p, true),
                ShortOrLong::Long(c) => (c.path, c.required),
            };
            let path = dir.join(path);
            match std::fs::read_to_string(&path) {
                Ok(t) => {
                    let (v, bad) = interpolate::parse_env_file(&t);
                    if let Some(line) = bad.first() {
                        return Err(format!(
                            "env_file {}: line {line} is not KEY=VALUE",
                            path.display()
                        ));
                    }
                    for (k, v) in v {
                        set_env(&mut env, format!("{k}={v}"));
                    }
                }
                Err(e) if required => return Err(format!("env_file {}: {e}", path.display())),
                Err(_) => {}
            }
        }
    }
    for kv in env_pairs(svc.environment, vars) {
        set_env(&mut env, kv);
    }
    let mut published = Vec::new();
    for p in compose_spec::service::ports::into_long_iter(svc.ports) {
        if p.protocol.as_ref().is_some_and(|pr| pr.as_str() != "tcp") {
            return Err(format!(
                "ports: only TCP ports are supported ({} is not)",
                p.target
            ));
        }
        published.push(Published {
            host_ip: p.host_ip.map(|ip| ip.to_string()),
            host_port: p.published.and_then(|r| r.into_iter().next()),
            container: p.target,
        });
    }
    let mut expose = Vec::new();
    for e in svc.expose {
        for port in e.range {
            if !expose.contains(&port) {
                expose.push(port);
            }
        }
    }
    let mut mounts = Vec::new();
    for m in compose_spec::service::volumes::into_long_iter(svc.volumes) {
        mounts.push(match m {
            SpecMount::Volume(v) => MountSpec::Volume {
                name: v.source.map(|s| s.to_string()),
                target: v.common.target.as_path().display().to_string(),
                read_only: v.common.read_only,
            },
            SpecMount::Bind(b) => MountSpec::Bind {
                source: dir.join(b.source.as_path()),
                target: b.common.target.as_path().display().to_string(),
                read_only: b.common.read_only,
            },
            SpecMount::Tmpfs(t) => MountSpec::Tmpfs {
                target: t.common.target.as_path().display().to_string(),
            },
            other => {
                return Err(format!(
                    "volumes: {} mounts are not supported",
                    other.kind()
                ));
            }
        });
    }
    if let Some(t) = svc.tmpfs {
        for p in t.into_list() {
            mounts.push(MountSpec::Tmpfs {
                target: p.as_path().display().to_string(),
            });
        }
    }
    for (secret, list) in [(true, svc.secrets), (false, svc.configs)] {
        let what = if secret { "secrets" } else { "configs" };
        for item in list {
            let (source, target) = match item {
                ShortOrLong::Short(s) => (s.to_string(), None),
                ShortOrLong::Long(l) => (l.source.to_string(), l.target),
            };
            let host = files
                .get(&(secret, source.clone()))
                .ok_or_else(|| format!("{what}: {source} is not defined at the top level"))?;
            let target = match target {
                Some(t) if t.is_absolute() => t.display().to_string(),
                Some(t) if secret => format!("/run/secrets/{}", t.display()),
                Some(t) => format!("/{}", t.display()),
                None if secret => format!("/run/secrets/{source}"),
                None => format!("/{source}"),
            };
            mounts.push(MountSpec::Bind {
                source: host.clone(),
                target,
                read_only: true,
            });
        }
    }
    let mut networks = Vec::new();
    match svc.network_config {
        None => networks.push(("default".to_string(), Vec::new())),
        Some(compose_spec::service::NetworkConfig::Networks(n)) => match n {
            ShortOrLong::Short(set) => {
                networks.extend(set.into_iter().map(|n| (n.to_string(), Vec::new())));
            }
            ShortOrLong::Long(map) => {
                for (n, cfg) in map {
                    let aliases = cfg
                        .map(|c| c.aliases.iter().map(ToString::to_string).collect())
                        .unwrap_or_default();
                    networks.push((n.to_string(), aliases));
                }
            }
        },
        Some(_) => return Err("network_mode is not supported (services join networks)".into()),
    }
    let depends_on = match svc.depends_on {
        ShortOrLong::Short(set) => set
            .into_iter()
            .map(|d| (d.to_string(), Condition::ServiceStarted))
            .collect(),
        ShortOrLong::Long(map) => map
            .into_iter()
            .map(|(d, dep)| {
                (
                    d.to_string(),
                    match dep.condition {
                        SpecCondition::ServiceStarted => Condition::ServiceStarted,
                        SpecCondition::ServiceHealthy => Condition::ServiceHealthy,
                        SpecCondition::ServiceCompletedSuccessfully => {
                            Condition::ServiceCompletedSuccessfully
                        }
                    },
                )
            })
            .collect(),
    };
    let healthcheck = match svc.healthcheck {
        None | Some(SpecHealth::Disable) => None,
        Some(SpecHealth::Command(c)) => {
            let test = match c.test {
                // compose_spec keeps the argv of `[CMD, …]` without the CMD.
                Some(Test::Command(v)) => std::iter::once("CMD".to_string()).chain(v).collect(),
                Some(Test::ShellCommand(s)) => vec!["CMD-SHELL".into(), s],
                None => Vec::new(),
            };
            Some(Health {
                test,
                interval: c.interval,
                timeout: c.timeout,
                retries: c.retries.map(|r| u32::try_from(r).unwrap_or(u32::MAX)),
                start_period: c.start_period,
            })
        }
    };
    let x_pare = match svc.extensions.iter().find(|(k, _)| k.as_str() == "x-pare") {
        Some((_, v)) => serde_yaml::from_value::<XPare>(v.clone()).map_err(|e| {
            format!("x-pare: {e} (keys: probes, includes, excludes, continue-after)")
        })?,
        None => XPare::default(),
    };
    for (k, _) in &svc.extensions {
        if k.as_str().starts_with("x-pare") && k.as_str() != "x-pare" {
            return Err(format!(
                "{}: unknown pare extension (did you mean x-pare?)",
                k.as_str()
            ));
        }
    }
    Ok(Service {
        name: name.to_string(),
        image,
        entrypoint: svc.entrypoint.map(split_command).transpose()?,
        command: svc.command.map(split_command).transpose()?,
        env,
        user: svc.user.map(|u| u.to_string()),
        working_dir: svc.working_dir.map(|w| w.as_path().display().to_string()),
        published,
        expose,
        mounts,
        networks,
        depends_on,
        healthcheck,
        profiles,
        x_pare,
    })
}
