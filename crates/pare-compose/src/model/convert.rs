//! One `compose_spec` service converted to the [`Service`] pare runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use compose_spec::service::healthcheck::{Healthcheck as SpecHealth, Test};
use compose_spec::service::volumes::Mount as SpecMount;
use compose_spec::service::{Condition as SpecCondition, Service as SpecService};
use compose_spec::{ListOrMap, ShortOrLong};

use super::{Condition, Health, MountSpec, Published, Service, XPare};
use crate::interpolate::{self, Vars};

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
fn set_env(env: &mut Vec<String>, kv: String) {
    let key = kv
        .split_once('=')
        .map_or(kv.as_str(), |(k, _)| k)
        .to_string();
    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
    env.push(kv);
}

/// Why a service cannot be run: in words, with the cause when reading a file or decoding
/// YAML failed.
pub(super) struct Bad {
    /// What is wrong, with the key at fault.
    pub(super) message: String,
    /// The I/O or YAML error behind it.
    pub(super) source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl From<String> for Bad {
    fn from(message: String) -> Self {
        Bad {
            message,
            source: None,
        }
    }
}

impl From<&str> for Bad {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

pub(super) fn convert(
    name: &str,
    svc: SpecService,
    image: Option<String>,
    profiles: Vec<String>,
    dir: &Path,
    vars: &Vars,
    files: &BTreeMap<(bool, String), PathBuf>,
) -> Result<Service, Bad> {
    let image = image.ok_or(
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
                        )
                        .into());
                    }
                    for (k, v) in v {
                        set_env(&mut env, format!("{k}={v}"));
                    }
                }
                Err(e) if required => {
                    return Err(Bad {
                        message: format!("env_file {}", path.display()),
                        source: Some(e.into()),
                    });
                }
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
            return Err(
                format!("ports: only TCP ports are supported ({} is not)", p.target).into(),
            );
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
                return Err(format!("volumes: {} mounts are not supported", other.kind()).into());
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
        Some(_) => {
            return Err(Bad::from(
                "network_mode is not supported (services join networks)",
            ));
        }
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
        Some((_, v)) => serde_yaml::from_value::<XPare>(v.clone()).map_err(|e| Bad {
            message: "x-pare (keys: probes, includes, excludes, continue-after)".into(),
            source: Some(e.into()),
        })?,
        None => XPare::default(),
    };
    for (k, _) in &svc.extensions {
        if k.as_str().starts_with("x-pare") && k.as_str() != "x-pare" {
            return Err(format!(
                "{}: unknown pare extension (did you mean x-pare?)",
                k.as_str()
            )
            .into());
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
