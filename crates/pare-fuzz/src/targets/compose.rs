//! A Compose project, loaded as `pare build --compose` loads it, ordered, and turned into what
//! pare runs: each service's run over an image and its probe file.
//!
//! The input is up to three documents separated by lines `----`: `compose.yaml`, the `.env`
//! beside it, and `api.env` (for `env_file:`). They are written to a fresh directory and
//! loaded with [`Project::load`] (`.env`, `${VAR:-default}` interpolation, validation by
//! `compose_spec`, conversion), with the profile `debug` active and a fixed environment (so
//! a run does not depend on the fuzzer's). Then the `depends_on` order (cycles are errors),
//! every service as a target with its dependencies, and per service its [`RunOverride`](pare_profile::RunOverride)
//! applied over an image's run and its probe file parsed as pare-build parses it.

use std::path::Path;

use pare_compose::{LoadOptions, Project, interpolate, order};
use pare_profile::ImageRun;

const SEPARATOR: &str = "\n----\n";

/// The environment the project sees (over its `.env`).
fn environment() -> interpolate::Vars {
    [
        ("TAG", "1"),
        ("EMPTY", ""),
        ("NAME", "web"),
        ("PORT", "8000"),
        ("NESTED", "${TAG}"),
        ("DOLLAR", "$$"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// pare's own errors in the chain (`a: b: c`, as the CLI prints it) must each be one line;
/// a third-party cause (serde_yaml, compose_spec, I/O) is folded onto the line by the CLI.
fn one_line_chain(e: &(dyn std::error::Error + 'static)) {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<pare_compose::ComposeError>()
            || e.is::<interpolate::InterpolateError>()
            || e.is::<pare_probe::ProbeError>()
        {
            crate::one_line(e);
        }
        cur = e.source();
    }
}

/// The body: the project the input describes (see the module docs) loaded, ordered and
/// converted. Errors, with their causes, must be one line.
pub fn run(data: &[u8]) {
    let Some(dir) = tempfile::Builder::new()
        .prefix("pare-fuzz-compose-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .ok()
    else {
        return;
    };
    let file = dir.path().join("compose.yaml");
    // Bytes, not text: a compose file that is not UTF-8 must be an error too.
    let mut parts = split(data);
    let compose = parts.next().unwrap_or_default();
    if std::fs::write(&file, compose).is_err() {
        return;
    }
    for (name, part) in [".env", "api.env"].into_iter().zip(parts) {
        if std::fs::write(dir.path().join(name), part).is_err() {
            return;
        }
    }
    let opts = LoadOptions {
        profiles: vec!["debug".into()],
        env: Some(environment()),
    };
    match Project::load(&file, &opts) {
        Ok(project) => use_project(&project),
        Err(e) => one_line_chain(&e),
    }
}

/// The input's documents, split at the separator (at most three).
fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let sep = SEPARATOR.as_bytes();
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
    .take(3)
}

/// What `pare build --compose` does with a loaded project before it starts anything.
fn use_project(project: &Project) {
    let _ = serde_json::to_string(project);
    let order = match order::start_order(project) {
        Ok(o) => o,
        Err(e) => return one_line_chain(&e),
    };
    let all = order::targets(project, &[]).unwrap_or_default();
    if let Err(e) = order::targets(project, &["no-such-service".into()]) {
        one_line_chain(&e);
    }
    let base = ImageRun {
        entrypoint: vec!["/entrypoint".into()],
        cmd: vec!["serve".into()],
        env: vec!["PATH=/usr/bin".into(), "TAG=0".into()],
        user: String::new(),
        workdir: String::new(),
        exposed: vec!["8000/tcp".into()],
        tcp_ports: vec![8000],
    };
    // Each target's dependencies are a walk of the project: the first 64 (a file of
    // thousands of chained services would make the run quadratic).
    for name in all.iter().take(64) {
        let _ = order::dependencies_in_order(project, name, &order);
        let Some(svc) = project.services.get(name) else {
            continue;
        };
        let mut run = base.clone();
        pare_compose::run::run_override(svc).apply(&mut run);
        let _ = svc.healthcheck.as_ref().and_then(|h| h.argv());
        match pare_compose::run::probe_file_text(svc) {
            Ok(text) => {
                let path = Path::new("probes.yaml");
                if let Err(e) = pare_probe::parse_probes(&text, path, svc.ports().first().copied())
                {
                    one_line_chain(&e);
                }
            }
            Err(e) => one_line_chain(&e),
        }
    }
}
