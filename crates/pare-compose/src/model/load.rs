//! Loading a project: `.env`, the environment, interpolation, validation by `compose_spec`,
//! the top-level and service keys pare supports, profiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pare_reference::{ImageRef, ReferenceError};
use serde_yaml::Value;

use super::convert::convert;
use super::{LoadOptions, Project};
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
/// A port range that ends before it starts (`ports: ["18-0:80"]`, `expose: ["9-1"]`, a long
/// port's `published: 18-0`): compose_spec 0.3 parses it without the check its own
/// `Range::new` makes, then overflows computing its size (a panic with overflow checks).
fn backward_port_range(top: &serde_yaml::Mapping) -> Result<(), String> {
    let services = top.get("services").and_then(Value::as_mapping);
    for (name, svc) in services.into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        for key in ["ports", "expose"] {
            let list = svc.get(key).and_then(Value::as_sequence);
            for item in list.into_iter().flatten() {
                let text = match item {
                    Value::Mapping(m) => m.get("published").and_then(Value::as_str),
                    other => other.as_str(),
                };
                let Some(text) = text else { continue };
                for part in text.split([':', '/']) {
                    let Some((a, b)) = part.split_once('-') else {
                        continue;
                    };
                    if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>())
                        && a > b
                    {
                        return Err(format!(
                            "services.{name}.{key}: the port range {part} ends before it starts"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Takes each service's `image:` out of the document, checked by pare-reference (pare's one
/// image reference grammar), keyed by service name. Why not leave it to compose_spec: 0.3
/// takes a name's first part for a registry only when it holds a dot, so it refuses
/// `localhost:5000/shop/app:2` and `registry:5000/app`, which Docker and Compose accept (a first
/// part with a `.` or a `:`, or `localhost`). A non-string `image:` is left for compose_spec
/// to refuse.
fn take_images(doc: &mut Value) -> Result<BTreeMap<String, String>, String> {
    let mut images = BTreeMap::new();
    let services = doc.get_mut("services").and_then(Value::as_mapping_mut);
    for (name, svc) in services.into_iter().flatten() {
        let (Some(name), Some(svc)) = (name.as_str(), svc.as_mapping_mut()) else {
            continue;
        };
        let Some(Value::String(image)) = svc.get("image") else {
            continue;
        };
        let image = image.clone();
        ImageRef::parse(&format!("docker-daemon:{image}")).map_err(|e| match e {
            ReferenceError::Invalid { reason, .. } => {
                format!("services.{name}.image: `{image}`: {reason}")
            }
            other => format!("services.{name}.image: {other}"),
        })?;
        svc.remove("image");
        images.insert(name.to_string(), image);
    }
    Ok(images)
}

const TOP_LEVEL: &[&str] = &[
    "version", "name", "services", "volumes", "networks", "secrets", "configs",
];

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
            message: crate::one_line(&message),
            source: None,
        };
        let unsupported = |key: String| ComposeError::Unsupported {
            file: file.to_path_buf(),
            key: crate::one_line(&key),
        };
        let mut doc: Value =
            serde_yaml::from_str(text).map_err(|source| ComposeError::NotYaml {
                file: file.to_path_buf(),
                source,
            })?;
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
                return Err(unsupported(k.to_string()));
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
                    return Err(unsupported(format!("services.{name}.{k}")));
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
                        return Err(unsupported(format!(
                            "{section}.{}.{k}",
                            name.as_str().unwrap_or_default()
                        )));
                    }
                }
            }
        }
        backward_port_range(top).map_err(invalid)?;
        let mut images = take_images(&mut doc).map_err(invalid)?;
        let spec: compose_spec::Compose =
            serde_yaml::from_value(doc).map_err(|source| ComposeError::Shape {
                file: file.to_path_buf(),
                source,
            })?;

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
                        return Err(unsupported(format!("secrets.{name}.environment")));
                    }
                },
                compose_spec::Resource::External { .. } => {
                    return Err(unsupported(format!("secrets.{name}.external")));
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
                        return Err(unsupported(format!(
                            "configs.{name} (only file: configs are supported)"
                        )));
                    }
                },
                compose_spec::Resource::External { .. } => {
                    return Err(unsupported(format!("configs.{name}.external")));
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
            let s = convert(
                &name,
                svc,
                images.remove(&name),
                svc_profiles,
                dir,
                vars,
                &files,
            )
            .map_err(|bad| ComposeError::Invalid {
                file: file.to_path_buf(),
                message: format!("services.{name}: {}", bad.message),
                source: bad.source,
            })?;
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
