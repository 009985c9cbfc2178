//! What pare reads from a service: how its image runs as the service, and the probes of a
//! target.

use std::path::PathBuf;

use pare_profile::{ImageRun, RunOverride};
use pare_reference::ImageRef;

use super::RunError;
use crate::ComposeError;
use crate::model::Service;

/// What the service changes over its image.
pub fn run_override(svc: &Service) -> RunOverride {
    RunOverride {
        entrypoint: svc.entrypoint.clone(),
        command: svc.command.clone(),
        env: svc.env.clone(),
        user: svc.user.clone(),
        workdir: svc.working_dir.clone(),
        ports: svc.ports(),
    }
}

/// The slim image's tag for target `svc`: pare-build's own (`NAME.slim:TAG`, `None`), unless
/// another target runs the same image (`shared`): then `NAME.slim-SERVICE:TAG`, so that the
/// second one loaded does not take the first one's tag (and its verification its image).
pub(super) fn slim_tag(svc: &Service, shared: bool) -> Option<String> {
    if !shared {
        return None;
    }
    let tag = pare_build::default_tag(&ImageRef::DockerDaemon {
        name: svc.image.clone(),
    });
    let (name, version) = pare_reference::split_tag(&tag);
    Some(format!(
        "{name}-{}:{}",
        svc.name.to_ascii_lowercase(),
        version.unwrap_or("latest")
    ))
}

/// How `image` runs as `svc`.
pub(super) fn image_run(image: &str, svc: &Service) -> Result<ImageRun, RunError> {
    let src = pare_source::open(
        &ImageRef::DockerDaemon {
            name: image.to_string(),
        },
        &pare_source::OpenOptions::default(),
    )?;
    let mut run = ImageRun::from_config(&src.image().config);
    run_override(svc).apply(&mut run);
    Ok(run)
}

/// The probes for a target: its `x-pare` probes (else a TCP connect per port, or waiting for
/// a job), then its healthcheck as an exec probe. As probe-file YAML.
pub fn probe_file_text(svc: &Service) -> Result<String, ComposeError> {
    use serde_yaml::{Mapping, Value};
    let mut list: Vec<Value> = match &svc.x_pare.probes {
        Some(Value::Sequence(s)) => s.clone(),
        Some(Value::Mapping(m)) => match m.get("probes") {
            Some(Value::Sequence(s)) => s.clone(),
            _ => Vec::new(),
        },
        Some(_) | None => Vec::new(),
    };
    if list.is_empty() {
        for p in svc.ports() {
            let mut m = Mapping::new();
            m.insert("kind".into(), "tcp".into());
            m.insert("port".into(), Value::Number(p.into()));
            list.push(Value::Mapping(m));
        }
    }
    if let Some(argv) = svc.healthcheck.as_ref().and_then(|h| h.argv()) {
        let mut m = Mapping::new();
        m.insert("kind".into(), "exec".into());
        m.insert(
            "argv".into(),
            Value::Sequence(argv.into_iter().map(Value::String).collect()),
        );
        list.push(Value::Mapping(m));
    }
    if list.is_empty() {
        let mut m = Mapping::new();
        m.insert("kind".into(), "job".into());
        list.push(Value::Mapping(m));
    }
    serde_yaml::to_string(&Value::Sequence(list)).map_err(|source| ComposeError::Shape {
        file: PathBuf::from(format!("services.{}.x-pare.probes", svc.name)),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::slim_tag;
    use crate::interpolate::Vars;
    use crate::model::Project;

    #[test]
    fn targets_sharing_an_image_get_a_slim_tag_each() {
        let dir = tempfile::tempdir().unwrap();
        let p = Project::parse(
            "services:\n  Web:\n    image: registry.example/shop/app:2\n  worker:\n    image: app\n",
            Path::new("compose.yaml"),
            dir.path(),
            &Vars::new(),
            &[],
        )
        .unwrap();
        let (web, worker) = (&p.services["Web"], &p.services["worker"]);
        assert_eq!(slim_tag(web, false), None, "pare-build's own");
        assert_eq!(
            slim_tag(web, true).as_deref(),
            Some("registry.example/shop/app.slim-web:2")
        );
        assert_eq!(
            slim_tag(worker, true).as_deref(),
            Some("app.slim-worker:latest")
        );
    }
}
