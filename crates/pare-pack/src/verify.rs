//! `pare pack --verify-cmd/--http-probe`: run the packed image and check that it answers,
//! through pare-runtime (docker for an image loaded into the daemon, else the embedded
//! runtime on the image's own extracted files, as `pare build` verifies) and pare-probe.

use std::time::Duration;

use pare_probe::{ProbeOptions, Readiness};
use pare_reference::ImageRef;
use pare_runtime::{RunSource, RunSpec};
use pare_runtime::{Runtime, SharedRuntime};
use pare_trace::ProbeSpec;
use pare_write::Output;

use crate::{PackError, PackReport, io_err};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Check {
    /// A command (split on whitespace) the image runs instead of its own CMD, which must
    /// exit 0 within the timeout: `/usr/local/bin/app --version`.
    pub verify_cmd: Option<String>,
    /// `PORT[/PATH]`: an HTTP GET that must answer with a status below 400.
    pub http_probe: Option<String>,
    /// `docker` or `embedded` (default: docker for `docker-daemon:`, else embedded).
    pub runtime: Option<String>,
    /// How long the app may take to listen (or the command to finish).
    pub timeout: Duration,
    /// The program's cancellation token (the runtimes register their containers themselves).
    pub cancel: pare_runtime::Cancel,
}

/// How the check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The command exited 0, or the probe answered with a status below 400.
    pub ok: bool,
    /// What was checked and what it answered.
    pub detail: String,
}

/// `PORT[/PATH]` → (port, `/PATH`).
pub fn parse_http_probe(s: &str) -> Result<(u16, String), PackError> {
    let (port, path) = s.split_once('/').unwrap_or((s, ""));
    let port = port.parse::<u16>().map_err(|_| PackError::Flag {
        flag: "--http-probe",
        value: s.to_string(),
        reason: "expected PORT[/PATH], e.g. 8080/health".into(),
    })?;
    Ok((port, format!("/{path}")))
}

fn image_ref(output: &Output) -> ImageRef {
    match output.clone() {
        Output::Oci { dir, tag } => ImageRef::Oci { dir, tag },
        Output::OciArchive { path, tag } => ImageRef::OciArchive { path, tag },
        Output::DockerArchive { path, tag } => ImageRef::DockerArchive {
            path,
            reference: tag,
        },
        Output::Daemon { tag } => ImageRef::DockerDaemon { name: tag },
        Output::Registry { name } => ImageRef::Registry { name },
    }
}

/// Runs the packed image and checks it; `None` when nothing was asked.
pub fn check(
    check: &Check,
    output: &Output,
    report: &PackReport,
) -> Result<Option<Verdict>, PackError> {
    if check.verify_cmd.is_none() && check.http_probe.is_none() {
        return Ok(None);
    }
    let http = check
        .http_probe
        .as_deref()
        .map(parse_http_probe)
        .transpose()?;
    let is_daemon = matches!(output, Output::Daemon { .. });
    let choice = check
        .runtime
        .clone()
        .unwrap_or_else(|| if is_daemon { "docker" } else { "embedded" }.to_string());
    let image = image_ref(output);
    let runtime = choice
        .parse()
        .and_then(|kind| pare_runtime::detect(Some(kind), &check.cancel))
        .map_err(|source| PackError::Runtime {
            image: image.to_string(),
            source: Box::new(source),
        })?;
    let work = check
        .cancel
        .temp_dir("pare-pack-verify-")
        .map_err(io_err(std::env::temp_dir()))?;
    let source = if runtime.name() == "docker" {
        let Output::Daemon { tag } = output else {
            return Err(PackError::Flag {
                flag: "--runtime",
                value: choice,
                reason:
                    "docker runs images in the daemon: write with --output docker-daemon:NAME:TAG"
                        .into(),
            });
        };
        RunSource::Daemon(tag.clone())
    } else {
        let dir = work.path().join("rootfs");
        std::fs::create_dir(&dir).map_err(io_err(&dir))?;
        let source =
            pare_source::open(&image, &Default::default()).map_err(|source| PackError::Source {
                reference: image.to_string(),
                source: Box::new(source),
            })?;
        pare_layerfs::extract(source.as_ref(), &dir).map_err(|source| PackError::Layers {
            reference: image.to_string(),
            source: Box::new(source),
        })?;
        RunSource::Rootfs(dir)
    };
    let mut spec = RunSpec {
        source,
        command: report
            .entrypoint
            .iter()
            .chain(&report.cmd)
            .cloned()
            .collect(),
        env: report.env.clone(),
        user: report.user.clone(),
        workdir: "/".into(),
        ports: report.ports.clone(),
        sensor: None,
        hostname: "pare-pack".into(),
    };
    let mut details = Vec::new();
    let mut ok = true;
    if let Some(cmd) = &check.verify_cmd {
        let mut run = spec.clone();
        run.command = cmd.split_whitespace().map(str::to_string).collect();
        run.ports.clear();
        let (good, detail) = run_to_exit(&runtime, &run, check.timeout, &image)?;
        ok &= good;
        details.push(format!("`{cmd}` {detail}"));
    }
    if let Some((port, path)) = http {
        if !spec.ports.contains(&port) {
            spec.ports.push(port);
        }
        let (good, detail) = http_get(&runtime, &spec, port, &path, check.timeout, &image)?;
        ok &= good;
        details.push(detail);
    }
    Ok(Some(Verdict {
        ok,
        detail: details.join("; "),
    }))
}

fn start(
    runtime: &SharedRuntime,
    spec: &RunSpec,
    image: &ImageRef,
) -> Result<Box<dyn pare_runtime::Container>, PackError> {
    Runtime::start(runtime.as_ref(), spec).map_err(|source| PackError::Runtime {
        image: image.to_string(),
        source: Box::new(source),
    })
}

/// The last line the container printed, for a failure's detail.
fn last_line(c: &dyn pare_runtime::Container) -> String {
    let (out, err) = c.logs().unwrap_or_default();
    let text = if err.is_empty() { out } else { err };
    String::from_utf8_lossy(&text)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

/// Runs `spec` until it exits; good on exit 0.
fn run_to_exit(
    runtime: &SharedRuntime,
    spec: &RunSpec,
    timeout: Duration,
    image: &ImageRef,
) -> Result<(bool, String), PackError> {
    let c = start(runtime, spec, image)?;
    let waited = c.wait(timeout);
    let result = match waited {
        Ok(Some(exit)) if exit.code == 0 => Ok((true, "exited 0".to_string())),
        Ok(Some(exit)) => Ok((
            false,
            format!("exited {}: {:?}", exit.code, last_line(c.as_ref())),
        )),
        Ok(None) => Ok((false, format!("still running after {}s", timeout.as_secs()))),
        Err(source) => Err(PackError::Runtime {
            image: image.to_string(),
            source: Box::new(source),
        }),
    };
    let _ = c.stop(Duration::from_secs(2));
    let _ = c.cleanup();
    result
}

/// Runs `spec`, waits for `port` and GETs `path`; good on a status below 400.
fn http_get(
    runtime: &SharedRuntime,
    spec: &RunSpec,
    port: u16,
    path: &str,
    timeout: Duration,
    image: &ImageRef,
) -> Result<(bool, String), PackError> {
    let c = start(runtime, spec, image)?;
    let result = (|| {
        let ready = pare_probe::wait_ready(c.as_ref(), &[port], timeout).map_err(|source| {
            PackError::Probe {
                image: image.to_string(),
                source: Box::new(source),
            }
        })?;
        if !matches!(ready, Readiness::Ready) {
            return Ok((
                false,
                format!("{ready}; last output: {:?}", last_line(c.as_ref())),
            ));
        }
        let probe = ProbeSpec::Http {
            port,
            method: "GET".into(),
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
            https: false,
            expect_status: None,
        };
        let r = pare_probe::run_probe(c.as_ref(), &probe, &ProbeOptions::default());
        let good = r.outcome.http_status.is_some_and(|s| s < 400);
        Ok((
            good,
            format!(
                "GET :{port}{path} → {}",
                pare_probe::describe_outcome(&r.outcome)
            ),
        ))
    })();
    let _ = c.stop(Duration::from_secs(2));
    let _ = c.cleanup();
    result
}
